"""The contract between stages and the runner: a stage is a plain function of one tile."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watergee.config import Settings
    from watergee.tiles import Tile


@dataclass(frozen=True)
class StageResult:
    """The files a stage read and wrote for one tile; the runner fingerprints both so that
    a re-run can tell whether the outputs are still complete and current."""

    inputs: list[Path]
    outputs: list[Path]
    info: dict[str, Any] = field(default_factory=dict)


StageFunction = Callable[["Tile", "Settings", Path], StageResult]
#: Runs once in the driver after every tile, e.g. to gather per-tile results into one file.
FinishFunction = Callable[[Sequence["Tile"], "Settings", Path], Any]


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFunction
    sections: tuple[str, ...]  # settings sections the stage reads: its settings hash
    summary: str
    finish: FinishFunction | None = None
