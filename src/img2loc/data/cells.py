"""``cells.json``: the one reader and writer of cell set files.

The cell set itself (:class:`~img2loc.geo.cells.CellSet`) lives in ``geo/``, which holds
no file plumbing: :meth:`CellSet.from_dict` validates a parsed document record by record,
and this module reads and writes the file. Every error names the file and the field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from img2loc.errors import FormatError, MissingFileError
from img2loc.files import atomic_write_text
from img2loc.geo.cells import CellSet

#: What to do about a bad stand-alone cell set.
REBUILD = "rebuild it with `img2loc cells build`"


def read_cell_document(path: str | os.PathLike[str], fix: str = REBUILD) -> dict[str, Any]:
    """The parsed JSON of a cells file (an object with a ``cells`` list), not yet validated."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise MissingFileError(
            f"no cell set at {p}; build one with `img2loc cells build`"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{p} is not valid JSON ({e}); {fix}") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{p}: expected a JSON object, got {type(doc).__name__}; {fix}")
    return doc


def cells_from_document(
    path: str | os.PathLike[str], doc: dict[str, Any], fix: str = REBUILD
) -> CellSet:
    """The cell set of a parsed cells file; a bad record names ``path`` and the field."""
    try:
        return CellSet.from_dict(doc)
    except ValueError as e:
        raise FormatError(f"{path}: {e}; {fix}") from None


def read_cells(path: str | os.PathLike[str]) -> CellSet:
    """A cell set written by :func:`write_cells` (or a model folder's ``cells.json``)."""
    return cells_from_document(path, read_cell_document(path))


def write_cells(cells: CellSet, path: str | os.PathLike[str], polygons: bool = True) -> None:
    """Write a cell set as JSON atomically (temp file + rename)."""
    atomic_write_text(path, json.dumps(cells.to_dict(polygons), separators=(",", ":")))
