namespace HybridBatch.Properties

// Filled in by the PlacementProperties work.
