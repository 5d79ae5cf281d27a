namespace HybridBatch.Core

// Filled in by the Placement work.
