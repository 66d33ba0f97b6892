"""Maps one stage over many tiles on a Dask client, with resume and failure isolation.

The runner knows files and records, never rasters: a stage returns the paths it read and
wrote, and the runner fingerprints them. A failing tile becomes a recorded outcome (one-line
cause and traceback) while every other tile carries on.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from watergee import layout, manifest
from watergee.config import Settings, save_settings, section_hash
from watergee.errors import OutputError, WatergeeError
from watergee.stage import Stage
from watergee.tiles import Tile

if TYPE_CHECKING:
    from distributed import Client

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Outcome:
    tile: str
    stage: str
    status: Status
    seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None


@dataclass
class RunReport:
    stage: str
    settings_hash: str
    settings_file: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures


def one_line(exc: BaseException) -> str:
    """A single-line cause: our errors and OSErrors already name the file."""
    text = str(exc) if isinstance(exc, WatergeeError | OSError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def execute_tile(tile: Tile, stage: Stage, settings: Settings, out: Path, force: bool) -> Outcome:
    """Run `stage` on one tile unless its record says the outputs are complete and current.

    Never raises for a bad tile: the failure is returned (and recorded) instead.
    """
    started = time.perf_counter()
    record_path = layout.record(out, tile, stage.name)
    digest = section_hash(settings, stage.sections)
    if not force and manifest.is_current(record_path, digest):
        return Outcome(tile.id, stage.name, "skipped")
    common = {"stage": stage.name, "tile": tile.id, "source": str(tile.source)}
    try:
        result = stage.run(tile, settings, out)
        seconds = time.perf_counter() - started
        manifest.write_record(
            record_path,
            **common,
            status="done",
            settings_hash=digest,
            seconds=round(seconds, 3),
            inputs=[manifest.fingerprint(p) for p in result.inputs],
            outputs=[manifest.fingerprint(p) for p in result.outputs],
            info=result.info,
        )
        return Outcome(tile.id, stage.name, "done", seconds)
    except Exception as exc:
        seconds = time.perf_counter() - started
        message, trace = one_line(exc), traceback.format_exc()
        with contextlib.suppress(OSError):  # the outcome still carries the cause
            manifest.write_record(
                record_path,
                **common,
                status="failed",
                settings_hash=digest,
                seconds=round(seconds, 3),
                error=message,
                traceback=trace,
            )
        return Outcome(tile.id, stage.name, "failed", seconds, message, trace)


def prepare_output(out: Path) -> None:
    """Fail before any work starts when the output folder cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{out}: output folder not writable ({exc.strerror or exc})") from None


def run_stage(
    stage: Stage,
    tiles: Sequence[Tile],
    settings: Settings,
    out: Path,
    client: Client,
    force: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> RunReport:
    """Run `stage` over `tiles` on `client`; returns outcomes in tile-list order."""
    from distributed import as_completed

    started = time.perf_counter()
    prepare_output(out)
    report = RunReport(
        stage.name,
        section_hash(settings, stage.sections),
        str(save_settings(settings, out)),
    )
    token = secrets.token_hex(4)
    keys = [f"{stage.name}-{tile.id}-{token}" for tile in tiles]
    by_key = dict(zip(keys, tiles, strict=True))
    futures = client.map(
        execute_tile,
        list(tiles),
        key=keys,
        pure=False,
        stage=stage,
        settings=settings,
        out=out,
        force=force,
    )
    outcomes: dict[str, Outcome] = {}
    for future in as_completed(futures):
        tile = by_key[future.key]
        try:
            outcome = future.result()
        except Exception as exc:  # the worker died, or the task could not run at all
            outcome = Outcome(tile.id, stage.name, "failed", 0.0, f"task lost: {one_line(exc)}")
        outcomes[tile.id] = outcome
        if on_outcome is not None:
            on_outcome(outcome)
    report.outcomes = [outcomes[t.id] for t in tiles]
    if stage.finish is not None:
        stage.finish(tiles, settings, out)
    report.seconds = time.perf_counter() - started
    write_report(report, out)
    return report


def write_report(report: RunReport, out: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = layout.runs_dir(out) / f"{report.stage}-{stamp}-{secrets.token_hex(2)}.json"
    data = asdict(report)
    data.update({status: report.count(status) for status in ("done", "skipped", "failed")})
    manifest.write_json_atomic(path, data)
    return path
