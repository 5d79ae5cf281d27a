namespace HybridBatch.Core

// Filled in by the JobState work.
