namespace HybridBatch.Core

// Filled in by the Resources work.
