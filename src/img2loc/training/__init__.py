"""Lightning task and datamodule (the shard reader lives here)."""
