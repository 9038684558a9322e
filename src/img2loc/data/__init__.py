"""Photo sources, manifests and shards (no torch)."""
