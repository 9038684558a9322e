"""Shared fixtures of the viz tests."""

import pytest

from img2loc.viz import errors, maps


@pytest.fixture
def captured(monkeypatch):
    """The figures the plot functions would save (kept open for inspection, closed after)."""
    figs = []

    def keep(fig, path):
        figs.append(fig)
        return path

    for module in (maps, errors):  # errors.py draws through its own import of save_figure
        monkeypatch.setattr(module, "save_figure", keep)
    yield figs
    import matplotlib.pyplot as plt

    for f in figs:
        plt.close(f)
