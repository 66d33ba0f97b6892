"""What every command shares: option types, the error-to-exit-code decorator, logging,
progress and the run summary. Imports nothing heavy: `watergee --help` must stay instant."""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from watergee.core.runner import Outcome, RunReport

#: Exit codes, as documented in the README.
EXIT_FAILED = 1  # at least one tile failed (or gathering the results did)
EXIT_USAGE = 2  # nothing ran: bad option, settings, tile list, output folder, cluster
EXIT_SIGNAL = {2: 130, 15: 143}  # SIGINT, SIGTERM

Tiles = Annotated[
    Path,
    typer.Option(
        "--tiles",
        "-t",
        help="Tile list: one .SAFE or band folder per line (relative to the list), # comments.",
    ),
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder (one subfolder per tile).")]
Config = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings (see configs/).")
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override one setting (a YAML value), e.g. --set resample.method=cubic."
    ),
]
Workers = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Local Dask worker processes.")
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Use a running Dask scheduler at this address instead."),
]
ClusterKind = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Where tiles run: local, scheduler, slurm or slurm-runner (see cluster.* settings).",
    ),
]
Force = Annotated[
    bool, typer.Option("--force", help="Redo tiles even when their outputs are current.")
]

F = TypeVar("F", bound=Callable[..., Any])


class OneLineErrors(TyperGroup):
    """Usage errors (a bad choice, a missing option, an unparsable number) as one line on
    stderr with exit 2, like every other error: batch logs get a line to grep, not a box."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:  # Typer's (vendored) click errors derive from it
            context = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":  # Typer printed the help already
                sys.exit(EXIT_USAGE)
            where = context.command_path.partition(" ")[2] if context is not None else ""
            message = " ".join(exc.format_message().replace("Value error, ", "").split())
            typer.echo(f"watergee: error: {where + ': ' if where else ''}{message}", err=True)
            sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"watergee: error: {message}", err=True)
    return typer.Exit(code)


def exits(func: F) -> F:
    """Turn watergee's errors into one line on stderr and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from watergee.core.errors import WatergeeError

        try:
            return func(*args, **kwargs)
        except WatergeeError as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


class _MainThreadOnly(logging.Filter):
    """Worker threads of an in-process cluster log too; their lines reach the terminal once,
    replayed by the runner, never twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == threading.main_thread().ident


def configure_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    root = logging.getLogger("watergee")
    for handler in [h for h in root.handlers if getattr(h, "_watergee_console", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._watergee_console = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_MainThreadOnly())
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    root.propagate = False


def is_quiet() -> bool:
    root = logging.getLogger("watergee")
    levels = [h.level for h in root.handlers if getattr(h, "_watergee_console", False)]
    return bool(levels) and min(levels) >= logging.ERROR


def progress_printer(total: int, label: str):
    """A progress bar on a terminal; one line per tile in batch logs (sbatch, CI)."""
    import contextlib

    if is_quiet():
        return contextlib.nullcontext(), lambda outcome: None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        task = progress.add_task(label, total=total)

        def advance(outcome: Outcome) -> None:
            progress.advance(task)

        return progress, advance

    done = 0

    def report(outcome: Outcome) -> None:
        nonlocal done
        done += 1
        typer.echo(
            f"{label} [{done}/{total}] {outcome.tile} {outcome.status} ({outcome.seconds:.1f} s)",
            err=True,
        )

    return contextlib.nullcontext(), report


def print_summary(report: RunReport) -> None:
    total = len(report.outcomes)
    if report.interrupted is not None:
        typer.echo(
            f"interrupted: {report.count('done')} done, {report.count('not started')} not started",
            err=True,
        )
    typer.echo(
        f"{report.stage}: {total} tile{'s' if total != 1 else ''}: "
        f"{report.count('done')} done, {report.count('skipped')} skipped, "
        f"{report.count('failed')} failed in {report.seconds:.1f} s"
    )
    if report.failures:
        typer.echo("failed:", err=True)
        for failure in report.failures:
            typer.echo(f"  {failure.tile}  {failure.stage}  {failure.error}", err=True)
        if report.failed_list:
            typer.echo(
                f"failed tiles listed in {report.failed_list} (pass it as --tiles)", err=True
            )
    if report.finish_error:
        typer.echo(f"{report.stage}: gathering results failed: {report.finish_error}", err=True)
    if report.log_file and (
        report.failures or report.finish_error or report.interrupted is not None
    ):
        typer.echo(f"log: {report.log_file}", err=True)


def exit_code(report: RunReport) -> int:
    if report.interrupted is not None:
        return EXIT_SIGNAL.get(report.interrupted, 128 + report.interrupted)
    return 0 if report.ok else EXIT_FAILED
