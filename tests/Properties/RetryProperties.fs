namespace HybridBatch.Properties

// Filled in by the RetryProperties work.
