namespace HybridBatch.Core

// Filled in by the Api work.
