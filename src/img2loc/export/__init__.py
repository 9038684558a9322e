"""Export a training checkpoint to a model folder: ONNX (fp32 + compressed browser model),
cells with place names, preprocessing and a model card, each export checked for parity.

:mod:`img2loc.export.exporter` needs torch (the ``train`` extra); the folder layout,
compression and checks (:mod:`~img2loc.export.bundle`, :mod:`~img2loc.export.compress`)
need only onnx.
"""
