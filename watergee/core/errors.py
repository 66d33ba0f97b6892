"""One root exception; each subclass also inherits the built-in a caller would expect.

Only the CLI turns these into exit codes and one-line messages; library code raises them
with a message that already names the file and the cause.
"""

from __future__ import annotations


class WatergeeError(Exception):
    """Root of every error watergee raises on purpose."""


class ConfigError(WatergeeError, ValueError):
    """A configuration file or override is invalid (unknown key, wrong type, bad YAML)."""


class TileListError(WatergeeError, ValueError):
    """A tile list is missing, empty or names the same tile twice."""


class TileInputError(WatergeeError, OSError):
    """A tile's input is missing or unreadable (missing path, corrupt raster)."""


class MissingBandError(TileInputError):
    """A tile lacks a band that the stage needs."""


class UpstreamError(TileInputError):
    """A stage whose outputs this one reads last failed on the tile, or its outputs are stale."""


class SharedInputError(WatergeeError, FileNotFoundError):
    """A file that every tile of a run reads (model, labels, table) is missing: nothing runs."""


class GridMismatchError(WatergeeError, ValueError):
    """Rasters that must share one pixel grid do not."""


class OutputError(WatergeeError, OSError):
    """An output cannot be written (folder not writable, disk full)."""


class ModelError(WatergeeError, ValueError):
    """A model artifact is missing, incomplete, or does not fit the input."""


class ClusterError(WatergeeError, RuntimeError):
    """The Dask cluster could not be started or reached."""
