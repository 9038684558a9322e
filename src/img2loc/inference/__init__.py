"""Image loading, preprocessing and the onnxruntime predictor (no torch)."""
