import pytest

from tests.conftest import coded_bands, write_band_folder
from watergee.core.errors import TileListError
from watergee.sentinel2 import parse_tiles, read_tiles


def test_comments_blank_lines_and_relative_paths(tmp_path):
    write_band_folder(tmp_path / "scenes" / "a", coded_bands(16), prefix="T33AAA_20240101T100000")
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "tiles.txt"
    listing.write_text(
        "# two tiles\n\n../scenes/a   # trailing comment\n"
        f"{tmp_path}/S2A_MSIL2A_20240105T101011_N0510_R022_T32UQD_20240105T130112.SAFE\n"
    )
    tiles = read_tiles(listing)
    assert [t.id for t in tiles] == ["T33AAA_20240101T100000", "T32UQD_20240105T101011"]
    assert tiles[0].source.resolve() == (tmp_path / "scenes" / "a").resolve()
    assert tiles[0].line == 3 and tiles[1].line == 4


def test_missing_input_is_kept_for_the_stage_to_report(tmp_path):
    tiles = parse_tiles("nowhere/T33ZZZ\n", tmp_path, "list.txt")
    assert tiles[0].id == "T33ZZZ" and not tiles[0].source.exists()


def test_empty_list_names_the_file(tmp_path):
    listing = tmp_path / "tiles.txt"
    listing.write_text("# nothing yet\n\n   \n")
    with pytest.raises(TileListError, match=rf"^{listing}: tile list is empty$"):
        read_tiles(listing)


def test_duplicate_tile_names_both_lines(tmp_path):
    text = "x/T33AAA\n# c\ny/T33AAA\n"
    with pytest.raises(TileListError, match=r"list.txt: line 3 names tile T33AAA again .*line 1"):
        parse_tiles(text, tmp_path, "list.txt")


def test_unreadable_list(tmp_path):
    with pytest.raises(TileListError, match="cannot read tile list"):
        read_tiles(tmp_path / "absent.txt")
