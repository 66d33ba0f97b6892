"""The contract between stages and the runner: a stage is a plain function of one tile.

A stage is registered by name with the dotted path of its function ("module:function"),
resolved only when the stage runs, so that an optional stage whose libraries are missing can
never break `watergee --help`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watergee.core.errors import WatergeeError

if TYPE_CHECKING:
    from watergee.core.config import Settings
    from watergee.core.runner import Outcome
    from watergee.core.tiles import Tile


@dataclass(frozen=True)
class StageResult:
    """The files a stage read and wrote for one tile; the runner fingerprints both so that
    a re-run can tell whether the outputs are still complete and current. `inputs` must name
    every file read (upstream outputs, points files, centroids), or a change to one of them
    would go unnoticed."""

    inputs: list[Path]
    outputs: list[Path]
    info: dict[str, Any] = field(default_factory=dict)


StageFunction = Callable[["Tile", "Settings", Path], StageResult]
#: Runs once in the driver after every tile with each tile's outcome, e.g. to gather the
#: per-tile results of done and skipped tiles into one file; returns the files it wrote.
FinishFunction = Callable[[Sequence[tuple["Tile", "Outcome"]], "Settings", Path], Any]


@dataclass(frozen=True)
class Option:
    """A stage-specific command option that sets one setting with a typed value."""

    name: str  # the option, without dashes: --model
    setting: str  # the dotted setting it sets: classify.model
    kind: type  # Path or str
    help: str
    required: bool = False
    short: str | None = None
    choices: tuple[str, ...] = ()
    #: Required unless this other option is given (evaluate's --reference, --sample-design).
    required_unless: str | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    function: str  # "package.module:function"
    sections: tuple[str, ...]  # settings sections the stage reads: its settings hash
    summary: str  # one line, for `watergee --help`
    help: str = ""  # more, for `watergee NAME --help`
    finish: str | None = None  # "package.module:function" of a FinishFunction
    options: tuple[Option, ...] = ()
    #: Stages whose outputs this one reads, each with a condition on the settings
    #: (a dotted setting and the values for which it applies; None: always).
    upstream: tuple[tuple[str, tuple[str, tuple[Any, ...]] | None], ...] = ()
    #: The dotted setting naming the folder that holds the upstream outputs (default: --out).
    work: str | None = None
    #: The dotted setting whose value keeps a separate record per value (classify's mode).
    variant: str | None = None
    #: Dask resources one tile needs where the cluster offers them, e.g. {"GPU": 1}.
    resources: Mapping[str, float] = field(default_factory=dict)
    #: "tile": one task per tile; "run": one task for the whole tile list (a mosaic), whose
    #: unit is named by this dotted setting and has the tile list as its source.
    unit: str = "tile"
    #: The option whose file is the run's one unit in place of a tile list (evaluate's
    #: --classified); the stage then has no --tiles.
    source: str | None = None
    #: Its outputs exist only for tiles given as band folders (a raster tile is its own stack).
    folder_tiles_only: bool = False
    #: Whether the command line gets a command made from this entry (train has its own).
    command: bool = True
    #: Dotted settings naming a file or folder that every tile reads (a model, labels): one
    #: missing fails the run before any work, rather than every tile alike. A model folder
    #: ("*.model") must hold its model.json.
    needs: tuple[str, ...] = ()
    #: "module:function(settings)" run once in the driver before any tile: it reads those
    #: shared inputs (a table, a boundary, a model's metadata) and raises on a bad one.
    check: str | None = None

    def missing_input(self, settings: Settings) -> str | None:
        """Why an input every tile needs is not there, naming it and its setting; else None."""
        for dotted in self.needs:
            path = setting_value(settings, dotted)
            if path is None:
                continue
            if not Path(path).exists():
                return f"{path}: not found ({dotted})"
            if dotted.endswith(".model") and not (Path(path) / "model.json").is_file():
                return f"{path}: not a model folder, no model.json ({dotted})"
        if self.check is not None:
            try:
                resolve(self.check)(settings)
            except WatergeeError as exc:
                return str(exc)
        return None

    def resolve(self) -> StageFunction:
        return resolve(self.function)

    def resolve_finish(self) -> FinishFunction | None:
        return resolve(self.finish) if self.finish else None

    def record_name(self, settings: Settings) -> str:
        """The name of this stage's per-tile record: one per variant value."""
        if self.variant is None:
            return self.name
        value = setting_value(settings, self.variant)
        if isinstance(value, bool):  # a switch: evaluate, evaluate-sample-design
            switch = self.variant.split(".")[-1].replace("_", "-")
            return f"{self.name}-{switch}" if value else self.name
        return f"{self.name}-{value}"

    def work_folder(self, settings: Settings, out: Path) -> Path:
        """Where this stage finds the outputs of the stages before it."""
        folder = setting_value(settings, self.work) if self.work else None
        return Path(folder) if folder else out

    def upstream_stages(self, settings: Settings) -> list[str]:
        """The stages whose outputs this stage reads under these settings."""
        names = []
        for name, condition in self.upstream:
            if condition is None or setting_value(settings, condition[0]) in condition[1]:
                names.append(name)
        return names


def setting_value(settings: Settings, dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    return getattr(getattr(settings, section), key)


def resolve(target: str) -> Callable[..., Any]:
    """The object a "package.module:name" string names, imported now."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
