namespace HybridBatch.Properties

// Filled in by the JobStateMachine work.
