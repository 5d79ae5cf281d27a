namespace HybridBatch.Properties

// Filled in by the JobStateProperties work.
