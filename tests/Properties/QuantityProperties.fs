namespace HybridBatch.Properties

// Filled in by the QuantityProperties work.
