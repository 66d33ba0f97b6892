"""`watergee tiles`: tile lists for job arrays — cut one into chunks, list what is still to do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watergee.cli.options import Config, Out, Sets, exits, fail
from watergee.core.registry import STAGES

app = typer.Typer(help="Tile lists for job arrays: split, pending.", no_args_is_help=True)

TileList = Annotated[Path, typer.Argument(help="Tile list (one tile input per line).")]


@app.command("split")
@exits
def split(
    tiles: TileList,
    chunks: Annotated[int, typer.Option("--chunks", "-n", min=1, help="How many chunks.")],
    index: Annotated[
        int | None,
        typer.Option("--index", "-i", min=1, help="Write only chunk I (1-based), e.g. "
                     "$SLURM_ARRAY_TASK_ID."),
    ] = None,
    folder: Annotated[
        Path | None,
        typer.Option("--folder", "-f", help="Where the chunk lists go; default: beside the list."),
    ] = None,
) -> None:  # fmt: skip
    """Cut a tile list into N contiguous chunks of absolute paths, one per array task, and
    print the path of each chunk written."""
    from watergee.core.tiles import split_tiles, write_tile_list
    from watergee.sentinel2 import read_tiles

    parts = split_tiles(read_tiles(tiles), chunks, str(tiles))
    if index is not None and index > chunks:
        raise fail(f"--index {index}: there are only {chunks} chunks")
    folder = folder or tiles.parent
    width = len(str(chunks))
    for number, part in enumerate(parts, start=1):
        if index is not None and number != index:
            continue
        path = folder / f"{tiles.stem}-{number:0{width}d}-of-{chunks}.txt"
        write_tile_list(part, path, f"chunk {number} of {chunks} of {tiles.resolve()}")
        typer.echo(str(path))


@app.command("pending")
@exits
def pending(
    tiles: TileList,
    stage: Annotated[str, typer.Option("--stage", "-s", help="The stage to check.")],
    out: Out,
    config: Config = None,
    set_: Sets = None,
    write: Annotated[
        Path | None, typer.Option("--write", "-w", help="Write the list here, not to stdout.")
    ] = None,
) -> None:
    """The tiles of a list whose outputs of a stage are not complete and current (failed,
    never run, or made with other settings): a list to resubmit."""
    from watergee.core.config import load_settings
    from watergee.core.runner import is_current
    from watergee.core.tiles import write_tile_list
    from watergee.sentinel2 import read_tiles

    if stage not in STAGES or STAGES[stage].unit != "tile":
        per_tile = ", ".join(n for n, s in STAGES.items() if s.unit == "tile")
        raise fail(f"--stage {stage}: choose a per-tile stage ({per_tile})")
    settings = load_settings(config, list(set_ or []))
    listed = read_tiles(tiles)
    out = out.expanduser().absolute()  # as the stage commands resolve it
    todo = [t for t in listed if not is_current(t, STAGES[stage], settings, out)]
    typer.echo(f"{tiles}: {len(todo)} of {len(listed)} tiles pending for {stage}", err=True)
    if write is not None:
        if todo:
            write_tile_list(todo, write, f"tiles pending for {stage} in {out}")
        else:
            write.unlink(missing_ok=True)  # nothing to resubmit: no list
    else:
        for tile in todo:
            typer.echo(str(tile.source.resolve()))
