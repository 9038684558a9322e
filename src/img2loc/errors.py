"""The one error base class of img2loc.

Every mistake a user can make (a missing file, a malformed cells.json, a bad flag value, an
unreachable server) raises a subclass of :class:`Img2locError` whose message says what to do.
The CLI catches this class alone and prints its message in one line; anything else is a bug
and shows its traceback. Lowest layer: imports nothing from the package.
"""

from __future__ import annotations


class Img2locError(Exception):
    """A problem the user can fix; the message says how (one line, no traceback)."""


class FormatError(Img2locError, ValueError):
    """A file img2loc reads is malformed: the message names the file and the field."""


class MissingFileError(Img2locError, FileNotFoundError):
    """A file img2loc needs is not there: the message names it and how to make it."""
