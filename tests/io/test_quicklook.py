"""Quicklooks: the legend fits its labels."""


def test_the_quicklook_legend_is_wide_enough_for_its_longest_label(tmp_path):
    import numpy as np
    from PIL import Image, ImageFont

    from watergee.core.config import OutputSettings
    from watergee.io.quicklook import SWATCH, write_quicklook
    from watergee.io.raster import Window, class_band, create_geotiff, utm_grid

    names = {1: "water", 2: "Discontinuous urban fabric and industrial or commercial units"}
    band = class_band("class", names)  # coloured from the palette by create_geotiff
    path = tmp_path / "c.tif"
    grid = utm_grid(32633, (0, 0), 10, 20, 20)
    with create_geotiff(path, grid, [band], np.uint8, 255, OutputSettings()) as w:
        w.write(Window(0, 0, 20, 20), np.ones((20, 20), np.uint8))
    write_quicklook(path, tmp_path / "c.png")
    width = Image.open(tmp_path / "c.png").width
    assert width >= ImageFont.load_default().getlength(f"2 {names[2]}") + SWATCH + 10


def test_the_coarsest_overview_that_still_covers_the_quicklook_is_the_one_read(
    tmp_path,
):
    from osgeo import gdal

    from watergee.io.quicklook import _coarsest

    path = tmp_path / "stack.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 64, 64, 1, gdal.GDT_UInt16)
    ds.BuildOverviews("AVERAGE", [2, 4, 8])
    band = ds.GetRasterBand(1)
    assert [_coarsest(band, (s, s)).XSize for s in (64, 33, 32, 20, 16, 9, 8, 3)] == [
        64, 64, 32, 32, 16, 16, 8, 8,
    ]  # fmt: skip
    assert _coarsest(band, (16, 17)).XSize == 32  # both sides must be covered


def test_a_virtual_stack_of_jpeg2000_bands_gives_its_true_colour_from_a_wavelet_level(
    tmp_path, monkeypatch
):
    """Asked to average a virtual stack of JPEG2000 band files down, GDAL decodes every band at
    full resolution (10 s a band for a full tile): the true colour reads a reduced level, and
    looks as the full-resolution average does."""
    import numpy as np

    from watergee.io import quicklook
    from watergee.io.bandstack import virtual_stack
    from watergee.io.quicklook import TRUE_COLOUR, _coarsest, true_colour
    from watergee.io.raster import BandSpec, utm_grid, write_array

    grid = utm_grid(32633, (399960.0, 5800020.0), 10, 512, 512)
    rows, cols = np.mgrid[:512, :512]
    paths, planes = [], []
    for k, name in enumerate(TRUE_COLOUR):
        values = (500 + 3 * rows + (k + 1) * cols).astype(np.uint16)  # smooth ramps
        paths.append(tmp_path / f"T33UUU_20240101T000000_{name}.jp2")
        write_array(paths[-1], values, grid)
        planes.append(values.reshape(64, 8, 64, 8).mean(axis=(1, 3)))
    stack = virtual_stack(paths, grid, "bilinear", [BandSpec(n) for n in TRUE_COLOUR], 0)
    assert _coarsest(stack.GetRasterBand(1), (64, 64)).XSize < 512
    read = []  # the sides of what each band is read from

    def spy(band, size):
        level = _coarsest(band, size)
        read.append(level.XSize)
        return level

    monkeypatch.setattr(quicklook, "_coarsest", spy)
    image = true_colour(stack, (64, 64)).astype(int)
    assert len(read) == 3 and max(read) < 512
    for k, plane in enumerate(planes):
        low, high = np.percentile(plane, (2, 98))
        expected = np.clip((plane - low) / (high - low), 0, 1) * 255
        assert np.abs(image[:, :, k] - expected).max() <= 8
