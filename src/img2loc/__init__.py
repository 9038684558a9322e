"""img2loc: tell where on Earth a photo was taken, from the pixels alone."""

__version__ = "0.1.0"
