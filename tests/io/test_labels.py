"""The list of corrected labels a denoise run leaves for sample: re-running only the failed tiles
keeps the tiles of earlier runs; a tile that fails now leaves it."""

from pathlib import Path

from watergee.core import layout
from watergee.core.runner import Outcome
from watergee.core.tiles import Tile
from watergee.io.labels import label_raster_for, write_denoised_list


def _run(out: Path, statuses: dict[str, str]) -> list[str]:
    results = []
    for name, status in statuses.items():
        tile = Tile(name, out / f"{name}.tif")
        if status == "done":
            layout.denoised(out, tile).parent.mkdir(parents=True, exist_ok=True)
            layout.denoised(out, tile).write_bytes(b"raster")
        results.append((tile, Outcome(name, "denoise", status)))
    (target,) = write_denoised_list(results, None, out)
    return [line for line in target.read_text().splitlines() if not line.startswith("#")]


def test_a_rerun_of_the_failed_tiles_keeps_the_others(tmp_path):
    assert _run(tmp_path, {"a": "done", "b": "done", "c": "failed"}) == [
        "a/a_water_denoised.tif", "b/b_water_denoised.tif"]  # fmt: skip
    assert _run(tmp_path, {"c": "done"}) == [
        "a/a_water_denoised.tif", "b/b_water_denoised.tif", "c/c_water_denoised.tif"]  # fmt: skip
    assert _run(tmp_path, {"b": "failed"}) == ["a/a_water_denoised.tif", "c/c_water_denoised.tif"]
    found = label_raster_for(Tile("c", tmp_path / "c.tif"), layout.denoised_list(tmp_path))
    assert found == layout.denoised(tmp_path, Tile("c", tmp_path / "c.tif"))
