"""Pictures: world maps of cells and predictions (matplotlib, offline outlines)."""
