"""Tile lists for job arrays: chunks that cover a list exactly once, and the tiles still to do."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from watergee.cli.main import app
from watergee.sentinel2 import read_tiles


def _listing(tmp_path, count: int):
    (tmp_path / "list").mkdir()
    names = [f"T33U{chr(65 + k)}A_20240101T100000" for k in range(count)]
    listing = tmp_path / "list" / "tiles.txt"
    listing.write_text("# a comment\n" + "\n".join(f"../in/{n}" for n in names) + "\n")
    return listing, names


def test_chunks_cover_the_list_once_in_order_with_absolute_paths(tmp_path):
    listing, names = _listing(tmp_path, 7)
    result = CliRunner().invoke(app, ["tiles", "split", str(listing), "--chunks", "3",
                                      "--folder", str(tmp_path / "chunks")])  # fmt: skip
    assert result.exit_code == 0, result.output
    paths = result.output.split()
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        "tiles-1-of-3.txt", "tiles-2-of-3.txt", "tiles-3-of-3.txt"
    ]  # fmt: skip
    chunks = [read_tiles(tmp_path / "chunks" / p.rsplit("/", 1)[1]) for p in paths]
    assert [len(c) for c in chunks] == [3, 2, 2]
    assert [t.id for c in chunks for t in c] == names
    assert all(t.source == (tmp_path / "in" / t.id).resolve() for c in chunks for t in c)

    one = CliRunner().invoke(app, ["tiles", "split", str(listing), "-n", "3", "-i", "2"])
    assert one.exit_code == 0 and one.output.strip().endswith("tiles-2-of-3.txt")
    assert [t.id for t in read_tiles(listing.parent / "tiles-2-of-3.txt")] == names[3:5]


def test_more_chunks_than_tiles_or_an_index_past_the_end_is_a_usage_error(tmp_path):
    listing, _ = _listing(tmp_path, 2)
    many = CliRunner().invoke(app, ["tiles", "split", str(listing), "--chunks", "3"])
    assert many.exit_code == 2 and "2 tiles cannot make 3 chunks" in many.output
    past = CliRunner().invoke(app, ["tiles", "split", str(listing), "-n", "2", "-i", "3"])
    assert past.exit_code == 2 and "only 2 chunks" in past.output


def test_pending_lists_failed_and_unrun_tiles_and_writes_nothing_when_all_are_done(
    tmp_path, demo_scene
):
    out = tmp_path / "work"
    run = CliRunner().invoke(app, ["resample", "-t", str(demo_scene), "-o", str(out),
                                   "--set", "cluster.processes=false"])  # fmt: skip
    assert run.exit_code == 0, run.output
    tiles = read_tiles(demo_scene)
    record = out / tiles[0].id / ".watergee" / "resample.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "status": "failed"}))
    args = ["tiles", "pending", str(demo_scene), "--stage", "resample", "--out", str(out)]
    pending = CliRunner().invoke(app, args)
    assert pending.exit_code == 0
    assert pending.stdout.split() == [str(tiles[0].source.resolve())]
    changed = CliRunner().invoke(app, [*args, "--set", "resample.method=cubic"])
    assert len(changed.stdout.split()) == len(tiles)  # other settings: every tile to redo
    record.write_text(json.dumps(data))
    retry = tmp_path / "retry.txt"
    none = CliRunner().invoke(app, [*args, "--write", str(retry)])
    assert none.exit_code == 0 and not retry.exists()
    wrong = CliRunner().invoke(app, [*args[:3], "--stage", "merge", "--out", str(out)])
    assert wrong.exit_code == 2 and "per-tile stage" in wrong.output
