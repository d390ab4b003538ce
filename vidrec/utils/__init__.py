"""Small helpers shared by the engine: RNG state, environment report, atomic file writes."""
