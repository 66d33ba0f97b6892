"""`watergee model`: import and inspect model artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watergee.cli.options import exits

app = typer.Typer(help="Model artifacts: import, inspect.", no_args_is_help=True)


@app.command("import-water-gee")
@exits
def import_water_gee(
    source: Annotated[Path, typer.Argument(help="water_gee's Keras 2 HDF5 file (.h5).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
) -> None:
    """Turn a pixel CNN saved by the water_gee notebooks into a watergee model artifact."""
    from watergee.models.legacy import import_water_gee as import_model

    metadata = import_model(source, out)
    typer.echo(f"{out}: {metadata.kind}, channels {', '.join(metadata.channels)}")


@app.command("show")
@exits
def show(folder: Annotated[Path, typer.Argument(help="Model folder.")]) -> None:
    """Print a model artifact's metadata."""
    import json

    from watergee.models.artifact import read_metadata

    metadata = read_metadata(folder)
    typer.echo(json.dumps(metadata.model_dump(mode="json"), indent=2))
