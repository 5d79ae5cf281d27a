namespace HybridBatch.Core

// Filled in by the Retry work.
