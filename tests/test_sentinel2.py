import numpy as np
import pytest

from tests.conftest import coded_bands, write_band_folder
from watergee.core.errors import MissingBandError, TileInputError
from watergee.sentinel2 import STACK_ORDER, band_files, read_scaling, tile_id


def test_stack_order_is_the_documented_one():
    assert STACK_ORDER == ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12")


def test_l2a_safe_bands_are_taken_at_native_resolution(demo_tiles):
    safe = next(t for t in demo_tiles if t.source.suffix == ".SAFE")
    files = band_files(safe.source, ["B02", "B08", "B05", "B12"])
    assert files["B02"].parent.name == "R10m" and files["B02"].name.endswith("_B02_10m.jp2")
    assert files["B08"].parent.name == "R10m"
    assert files["B05"].parent.name == "R20m" and files["B12"].parent.name == "R20m"
    assert tile_id(safe.source) == "T33UUV_20230720T101559"


def test_baseline_offset_read_from_product_metadata(demo_tiles):
    safe = next(t for t in demo_tiles if t.source.suffix == ".SAFE")
    scaling = read_scaling(safe.source, 10000, "auto")
    assert scaling.source == "MTD_MSIL2A.xml"
    assert scaling.scale_offset("B03") == pytest.approx((1e-4, -0.1))
    folder = next(t for t in demo_tiles if t.source.suffix != ".SAFE")
    plain = read_scaling(folder.source, 10000, "auto")
    assert plain.scale_offset("B03") == (1e-4, 0.0) and "no product metadata" in plain.source
    fixed = read_scaling(folder.source, 10000, -1000)
    assert fixed.scale_offset("B11") == pytest.approx((1e-4, -0.1))


def test_l1c_metadata_radio_offset(tmp_path):
    (tmp_path / "MTD_MSIL1C.xml").write_text(
        "<r><QUANTIFICATION_VALUE>10000</QUANTIFICATION_VALUE>"
        '<RADIO_ADD_OFFSET band_id="2">-1000</RADIO_ADD_OFFSET>'
        '<RADIO_ADD_OFFSET band_id="11">-1000</RADIO_ADD_OFFSET></r>'
    )
    scaling = read_scaling(tmp_path, 10000, "auto")
    assert scaling.offsets["B03"] == -1000 and scaling.offsets["B11"] == -1000
    assert scaling.offsets["B02"] == 0


def test_missing_bands_are_listed(tmp_path):
    bands = coded_bands(16)
    del bands["B11"], bands["B05"]
    write_band_folder(tmp_path, bands)
    with pytest.raises(MissingBandError, match=rf"^{tmp_path}: missing band\(s\) B05, B11$"):
        band_files(tmp_path, STACK_ORDER)


def test_band_given_twice_is_an_error(tmp_path):
    write_band_folder(tmp_path, {"B02": np.ones((16, 16), np.uint16)})
    write_band_folder(tmp_path, {"B02": np.ones((16, 16), np.uint16)}, suffix=".jp2")
    with pytest.raises(TileInputError, match="band B02 found more than once"):
        band_files(tmp_path, ["B02"])


def test_missing_or_non_folder_input(tmp_path):
    with pytest.raises(TileInputError, match="tile input not found"):
        band_files(tmp_path / "absent", ["B02"])
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(TileInputError, match=r"must be a \.SAFE folder or a band folder"):
        band_files(tmp_path / "file.txt", ["B02"])
