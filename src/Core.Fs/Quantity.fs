namespace HybridBatch.Core

// Filled in by the Quantity work.
