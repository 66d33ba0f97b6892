"""`watergee sample`: the sample stage (its command is built from the registry in main) and
`sample validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watergee.cli.options import EXIT_FAILED, exits

app = typer.Typer(no_args_is_help=False)


@app.command("validate")
@exits
def validate(
    samples: Annotated[Path, typer.Argument(help="Sample set folder (with manifest.json).")],
    require: Annotated[
        list[int] | None, typer.Option(help="A class id that must have samples (repeatable).")
    ] = None,
) -> None:
    """Report a sample set per class and tile; exit 1 when a required class has none."""
    from watergee.sampleset import validate as validate_set

    lines, problems = validate_set(samples, list(require or []))
    for line in lines:
        typer.echo(line)
    for problem in problems:
        typer.echo(f"watergee: error: {problem}", err=True)
    if problems:
        raise typer.Exit(EXIT_FAILED)
