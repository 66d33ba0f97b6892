"""`watergee run`: the steps of a config's pipeline section on one cluster, with one table of
every unit's status at every step."""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from watergee.cli.connection import cluster_values, connector, serves_allocation
from watergee.cli.options import (
    EXIT_FAILED,
    EXIT_SIGNAL,
    ClusterKind,
    Force,
    Scheduler,
    Sets,
    Workers,
    exits,
    is_quiet,
    print_summary,
    progress_printer,
)

if TYPE_CHECKING:
    from watergee.core.pipeline import PipelineReport

#: Table cells on the terminal (the table file has the words in full).
SHORT = {"skipped": "skip", "failed": "FAIL", "blocked": "block", "not started": "stop", "": "."}
#: Above this many units the table goes to its file only; the terminal gets counts per step.
TABLE_ROWS = 40


@exits
def pipeline(
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="Settings plus a `pipeline:` section of steps (see configs/)."
        ),
    ],
    tiles: Annotated[
        Path | None, typer.Option("--tiles", "-t", help="Tile list (default: pipeline.tiles).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: pipeline.out).")
    ] = None,
    plan_only: Annotated[
        bool,
        typer.Option("--plan", help="Print each step as the command that runs it alone; run none."),
    ] = False,
    set_: Sets = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
    cluster: ClusterKind = None,
    force: Force = False,
) -> None:
    """Run the configured steps in order over the tile list on one cluster: each stage reads
    what the one before wrote, every step resumes, a tile that failed is blocked at the later
    steps, and a table shows every tile at every step."""
    from watergee.core.config import load_settings
    from watergee.core.pipeline import plan_pipeline, run_pipeline
    from watergee.core.runner import prepare_output, signals_raise
    from watergee.sentinel2 import read_tiles

    values = cluster_values(workers, scheduler, cluster)
    plan = plan_pipeline(config, tiles, out, list(set_ or []), values, read_tiles)
    if plan_only:
        for step in plan.steps:
            side = "  (side branch)" if step.side else ""
            typer.echo(f"# {step.number}: {step.label}{side}\n{shlex.join(step.command)}")
        return
    settings = load_settings(config, list(set_ or []), values)
    connect = connector(settings, plan.out, "run")
    with contextlib.ExitStack() as allocation:
        if settings.cluster.kind == "slurm-runner":
            if serves_allocation(settings, plan.out):
                return  # this task was the allocation's scheduler or a worker
            client = allocation.enter_context(connect(0))  # leaving ends the allocation
            connect = lambda _tasks: contextlib.nullcontext(client)  # noqa: E731
        prepare_output(plan.out)
        with signals_raise():
            report = run_pipeline(
                plan, connect, read_tiles, force,
                progress=lambda step, total: progress_printer(total, step.label),
                announce=_announce,
                finished=lambda step, result: print_summary(result),
            )  # fmt: skip
    _print_table(report)
    if report.interrupted is not None:
        raise typer.Exit(EXIT_SIGNAL.get(report.interrupted, 128 + report.interrupted))
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _announce(step, todo: int, blocked: int) -> None:
    if is_quiet():
        return
    held = f", {blocked} blocked by earlier failures" if blocked else ""
    typer.echo(f"step {step.number} {step.label}: {todo} to run{held}", err=True)


def _print_table(report: PipelineReport) -> None:
    from watergee.core.pipeline import products, table_rows

    rows = list(table_rows(report))[1:]
    if len(rows) <= TABLE_ROWS:
        typer.echo("steps: " + ", ".join(f"{s.number} {s.label}" for s in report.steps))
        rows = [["unit", *(str(s.number) for s in report.steps)]] + [
            [row[0], *(SHORT.get(cell, cell) for cell in row[1:])] for row in rows
        ]
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        for row in rows:
            cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            typer.echo("  ".join(cells).rstrip())
    else:
        statuses = ("done", "skipped", "failed", "blocked", "not started")
        for step in report.steps:
            counts = ", ".join(f"{report.count(step, s)} {s}" for s in statuses)
            typer.echo(f"{step.number}:{step.label}  {counts}")
    typer.echo(f"table: {report.table_file}")
    found = products(report)
    if found:
        typer.echo("products:")
        for path in found:
            typer.echo(f"  {path}")
    verdict = "complete" if report.ok else "incomplete: re-run the same command to resume"
    typer.echo(f"pipeline {verdict} ({report.seconds:.1f} s)")
