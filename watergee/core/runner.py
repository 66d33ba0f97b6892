"""Maps one stage over many tiles on a Dask client, with resume and failure isolation.

The runner knows files and records, never rasters: a stage returns the paths it read and
wrote, and the runner fingerprints them. A failing tile becomes a recorded outcome (one-line
cause, traceback, log lines) while every other tile carries on. Per run it writes a report, a
log with every tile's lines, and a tile list of the failed tiles, ready to pass back as
`--tiles`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from watergee.core import layout, records
from watergee.core.atomic import RUN_ID, sweep_partials
from watergee.core.config import Settings, save_settings, section_hash
from watergee.core.errors import OutputError, SharedInputError, UpstreamError, WatergeeError
from watergee.core.locks import LockWaitCancelled, remove_run_locks, tile_lock
from watergee.core.registry import STAGES
from watergee.core.stage import Stage, resolve
from watergee.core.tiles import Tile, write_tile_list

if TYPE_CHECKING:
    from distributed import Client

Status = Literal["done", "skipped", "failed", "not started"]
log = logging.getLogger(__name__)
#: The scoped environment (GDAL cache, threads) a tile runs in, on the worker.
TASK_ENVIRONMENT = "watergee.io.raster:gdal_environment"
#: Set while a run in this process is being interrupted: tasks running in this process (an
#: in-process cluster) stop waiting for locks and record nothing as failed.
INTERRUPTED = threading.Event()


@dataclass(frozen=True)
class Outcome:
    tile: str
    stage: str
    status: Status
    seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None
    log: tuple[str, ...] = ()  # the tile's log lines from the worker


@dataclass
class RunReport:
    stage: str
    run_id: str
    settings_hash: str
    settings_file: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    log_file: str | None = None
    failed_list: str | None = None
    finish_error: str | None = None
    finish_outputs: list[str] = field(default_factory=list)
    interrupted: int | None = None  # the signal that stopped the run
    report_file: str | None = None

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures and self.finish_error is None and self.interrupted is None


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while tiles were running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def one_line(exc: BaseException) -> str:
    """A single-line cause: our errors and OSErrors already name the file."""
    text = str(exc) if isinstance(exc, WatergeeError | OSError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


class _TileLog(logging.Handler):
    """Collects the log lines of the task running on this thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(self.format(record))


@contextlib.contextmanager
def _captured_log() -> Iterator[_TileLog]:
    root = logging.getLogger("watergee")
    handler = _TileLog()
    # INFO reaches the handlers from now on; they (the terminal's among them) choose what to
    # show. Never set back: tasks on other threads of this worker may be capturing too.
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def check_upstream(stage: Stage, tile: Tile, settings: Settings, out: Path) -> None:
    """Fail when a stage whose outputs this one reads last failed on the tile or is stale.
    A tile with no upstream record (inputs made elsewhere) passes."""
    work = stage.work_folder(settings, out)
    for name in stage.upstream_stages(settings):
        upstream = STAGES[name]
        if upstream.folder_tiles_only and tile.source.is_file():
            continue  # a raster tile is its own input: nothing of that stage is read
        path = layout.record(work, tile, upstream.record_name(settings))
        record = records.read_record(path)
        if record is None:
            continue
        digest = section_hash(settings, upstream.sections)
        origin = where_from(tile, upstream, settings, work)
        reason = records.staleness(record, digest, work, origin)
        if reason is not None:
            raise UpstreamError(f"{tile.id}: run `watergee {name}` first ({reason})")


def where_from(tile: Tile, stage: Stage, settings: Settings, out: Path) -> dict[str, str]:
    """Where the tile's inputs come from (its source, the folder of upstream outputs), as
    recorded: a record made from other places does not vouch for this run."""
    return {
        "source": records.portable(tile.source, out),
        "work": records.portable(stage.work_folder(settings, out), out),
    }


def execute_tile(
    tile: Tile, stage: Stage, settings: Settings, out: Path, force: bool, run_id: str = "norun"
) -> Outcome:
    """Run `stage` on one tile unless its record says the outputs are complete and current
    (and the stages it reads from are current too), under the tile's lock.

    Never raises for a bad tile: the failure is returned (and recorded) instead.
    """
    name = stage.record_name(settings)
    token = RUN_ID.set(run_id)
    try:
        with _captured_log() as captured:

            def waiting(holder: dict | None) -> None:
                who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "?"
                log.info("%s: waiting for another run on this tile (%s)", tile.id, who)

            try:
                with tile_lock(layout.lock(out, tile, name), run_id, waiting, INTERRUPTED.is_set):
                    outcome = _run_locked(tile, stage, settings, out, force, run_id)
            except LockWaitCancelled:
                outcome = Outcome(tile.id, name, "not started")
        return replace(outcome, log=tuple(captured.lines))
    finally:
        RUN_ID.reset(token)


def _worker_name() -> str | None:
    """The Dask worker running this task (where a tile ran, for the record)."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return None


def _run_locked(
    tile: Tile, stage: Stage, settings: Settings, out: Path, force: bool, run_id: str
) -> Outcome:
    """The part of `execute_tile` that runs under the tile's lock, failure record included."""
    started = time.perf_counter()
    name = stage.record_name(settings)
    record_path = layout.record(out, tile, name)
    digest = section_hash(settings, stage.sections)
    origin = where_from(tile, stage, settings, out)
    common = {"stage": name, "tile": tile.id, **origin, "run": run_id, "settings_hash": digest,
              "host": socket.gethostname(), "worker": _worker_name()}  # fmt: skip
    try:
        check_upstream(stage, tile, settings, out)
        record = records.read_record(record_path)
        if not force and records.staleness(record, digest, out, origin) is None:
            return Outcome(tile.id, name, "skipped")
        with resolve(TASK_ENVIRONMENT)(settings) as notes:
            result = stage.resolve()(tile, settings, out)
        for warning in notes.get("warnings", ()):
            log.warning("%s: %s", tile.id, warning)
        seconds = time.perf_counter() - started
        records.write_record(
            record_path,
            **common,
            status="done",
            seconds=round(seconds, 3),
            inputs=[records.fingerprint(p, out) for p in result.inputs],
            outputs=records.output_fingerprints(result.outputs, out),
            info={**result.info, **notes},
        )
        log.info("%s: done in %.1f s", tile.id, seconds)
        return Outcome(tile.id, name, "done", seconds)
    except Exception as exc:
        seconds = time.perf_counter() - started
        if INTERRUPTED.is_set():  # cancelled under our feet: not a failure of the tile
            return Outcome(tile.id, name, "not started", seconds)
        message, trace = one_line(exc), traceback.format_exc()
        with contextlib.suppress(OSError):  # the outcome still carries the cause
            records.write_record(
                record_path,
                **common,
                status="failed",
                seconds=round(seconds, 3),
                error=message,
                traceback=trace,
            )
        return Outcome(tile.id, name, "failed", seconds, message, trace)


def prepare_output(out: Path) -> None:
    """Fail before any work starts when the output folder cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{out}: output folder not writable ({exc.strerror or exc})") from None


def _offered_resources(client: Client) -> set[str]:
    """Resource names at least one worker of the cluster offers."""
    workers = client.scheduler_info().get("workers", {})
    return {name for w in workers.values() for name in (w.get("resources") or {})}


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread while the run waits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class RunLog:
    """The run's log file: one block per tile, tracebacks of failures included."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handle = path.open("a", encoding="utf-8")

    def write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
        self.handle.write(f"{stamp} {text}\n")
        self.handle.flush()

    def outcome(self, o: Outcome) -> None:
        cause = f": {o.error}" if o.error else ""
        self.write(f"{o.tile} {o.stage} {o.status} ({o.seconds:.1f} s){cause}")
        for line in o.log:
            self.handle.write(f"    {line}\n")
        if o.traceback:
            self.handle.write("".join(f"    {line}\n" for line in o.traceback.splitlines()))
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _replay(outcome: Outcome) -> None:
    """A tile's worker log lines on this process's handlers (the terminal with -v)."""
    tile_log = logging.getLogger("watergee.tile")
    for line in outcome.log:
        level_name, _, rest = line.partition(" ")
        tile_log.log(logging.getLevelName(level_name) if level_name.isupper() else 20, rest)


#: Opens a client for a number of tasks, e.g. `functools.partial(open_client, settings)`.
Connect = Callable[[int], contextlib.AbstractContextManager["Client"]]


def is_current(tile: Tile, stage: Stage, settings: Settings, out: Path) -> bool:
    """Whether a worker would skip the tile: its record is current and so are the records of
    the stages it reads. Read without the tile's lock: a tile found stale is decided again,
    under the lock, on the worker."""
    try:
        check_upstream(stage, tile, settings, out)
    except UpstreamError:
        return False
    record = records.read_record(layout.record(out, tile, stage.record_name(settings)))
    digest = section_hash(settings, stage.sections)
    origin = where_from(tile, stage, settings, out)
    return records.staleness(record, digest, out, origin) is None


def _run_on_cluster(
    stage: Stage,
    tiles: Sequence[Tile],
    settings: Settings,
    out: Path,
    client: Client,
    force: bool,
    run_id: str,
    settle: Callable[[Tile, Outcome], None],
) -> None:
    """Map the tiles over the cluster and settle each outcome as it arrives; on Interrupted
    cancel what still runs (and re-raise)."""
    from distributed import as_completed

    resources = dict(stage.resources)
    if resources and not set(resources) <= _offered_resources(client):
        resources = {}  # no worker offers them: any worker runs the stage
    keys = [f"{stage.name}-{tile.id}-{run_id}" for tile in tiles]
    by_key = dict(zip(keys, tiles, strict=True))
    futures = client.map(
        execute_tile,
        list(tiles),
        key=keys,
        pure=False,
        resources=resources or None,
        stage=stage,
        settings=settings,
        out=out,
        force=force,
        run_id=run_id,
    )
    try:
        for future in as_completed(futures):
            tile = by_key[future.key]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died, or the task could not run at all
                cause = f"task lost: {one_line(exc)}"
                outcome = Outcome(tile.id, stage.record_name(settings), "failed", 0.0, cause)
            settle(tile, outcome)
    except Interrupted:
        with contextlib.suppress(Exception):
            client.cancel(futures, force=True)
        raise


def run_stage(
    stage: Stage,
    tiles: Sequence[Tile],
    settings: Settings,
    out: Path,
    client: Client | Connect,
    force: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> RunReport:
    """Run `stage` over `tiles` on `client`; returns outcomes in tile-list order.

    The driver reads the records first: tiles whose outputs are current are skipped here, and
    when `client` is a `Connect` the cluster starts only if some tile has work (and is gone
    when this returns). On SIGINT / SIGTERM it stops scheduling, cancels what runs and returns
    the report with `interrupted` set; once the workers are gone the caller calls
    `conclude_interrupted` (and owns the exit code).
    """
    started = time.perf_counter()
    prepare_output(out)
    INTERRUPTED.clear()
    run_id = secrets.token_hex(4)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime())
    base = f"{stage.name}-{stamp}-{run_id}"
    run_log = RunLog(layout.logs_dir(out) / f"{base}.log")
    report = RunReport(
        stage.name,
        run_id,
        section_hash(settings, stage.sections),
        str(save_settings(settings, out)),
        log_file=str(run_log.path),
    )
    run_log.write(f"{stage.name}: {len(tiles)} tiles, output {out}, run {run_id}")
    outcomes: dict[str, Outcome] = {}

    def settle(tile: Tile, outcome: Outcome) -> None:
        outcomes[tile.id] = outcome
        run_log.outcome(outcome)
        _replay(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    todo = []
    for tile in tiles:
        if not force and is_current(tile, stage, settings, out):
            settle(tile, Outcome(tile.id, stage.record_name(settings), "skipped"))
        else:
            todo.append(tile)
    if todo and (missing := stage.missing_input(settings)):
        run_log.write(f"{stage.name}: {missing}")
        run_log.close()
        raise SharedInputError(missing)
    if todo:
        connect = (lambda _: contextlib.nullcontext(client)) if hasattr(client, "map") else client
        try:
            with signals_raise(), connect(len(todo)) as connected:  # type: ignore[operator]
                _run_on_cluster(stage, todo, settings, out, connected, force, run_id, settle)
        except Interrupted as stop:
            INTERRUPTED.set()
            report.interrupted = stop.signum
            run_log.write(f"interrupted by {signal.Signals(stop.signum).name}")
    report.outcomes = [
        outcomes.get(t.id) or Outcome(t.id, stage.record_name(settings), "not started")
        for t in tiles
    ]
    finish = stage.resolve_finish()
    if finish is not None and report.interrupted is None:
        try:
            written = finish(list(zip(tiles, report.outcomes, strict=True)), settings, out)
            report.finish_outputs = [str(p) for p in written or []]
        except Exception as exc:
            report.finish_error = one_line(exc)
            run_log.write(f"finish failed: {report.finish_error}\n{traceback.format_exc()}")
    report.seconds = time.perf_counter() - started
    failed = [t for t, o in zip(tiles, report.outcomes, strict=True) if o.status == "failed"]
    if failed and stage.unit == "tile":  # a run's one unit is no tile to list again
        report.failed_list = str(
            write_failed_list(failed, layout.runs_dir(out) / f"{base}-failed.txt")
        )
    run_log.write(
        f"{stage.name}: {report.count('done')} done, {report.count('skipped')} skipped, "
        f"{report.count('failed')} failed in {report.seconds:.1f} s"
    )
    run_log.close()
    report.report_file = str(write_report(report, layout.runs_dir(out) / f"{base}.json"))
    return report


def conclude_interrupted(report: RunReport, tiles: Sequence[Tile], out: Path) -> RunReport:
    """After an interrupted run's workers are gone: remove its partial files and locks, count
    as done the tiles whose records say this run finished them, and rewrite the report."""
    state = [layout.tile_dir(out, t) / layout.STATE_DIR for t in tiles]
    sweep_partials((layout.tile_dir(out, t) for t in tiles), report.run_id)
    remove_run_locks([s for s in state if s.is_dir()], report.run_id)
    outcomes = []
    for tile, outcome in zip(tiles, report.outcomes, strict=True):
        if outcome.status == "not started":
            record = records.read_record(layout.record(out, tile, outcome.stage)) or {}
            if record.get("run") == report.run_id and record.get("status") == "done":
                outcome = Outcome(tile.id, outcome.stage, "done", record.get("seconds", 0.0))
        outcomes.append(outcome)
    report.outcomes = outcomes
    if report.report_file:
        write_report(report, Path(report.report_file))
    return report


def completed(tiles: Sequence[Tile], stage: str = "sample") -> list[tuple[Tile, Outcome]]:
    """Tiles paired with a done outcome: for calling a finish function outside a run."""
    return [(tile, Outcome(tile.id, stage, "done")) for tile in tiles]


def write_failed_list(tiles: Sequence[Tile], path: Path) -> Path:
    """A tile list of `tiles` (absolute paths), ready to pass back as --tiles."""
    return write_tile_list(list(tiles), path, "tiles that failed; re-run with --tiles THIS_FILE")


def write_report(report: RunReport, path: Path) -> Path:
    data = asdict(report)
    counts = ("done", "skipped", "failed", "not started")
    data.update({status.replace(" ", "_"): report.count(status) for status in counts})
    records.write_json_atomic(path, data)
    return path
