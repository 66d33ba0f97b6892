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
