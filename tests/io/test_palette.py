"""Class colours: recognisable land-cover names get their fixed colour, the rest the sequence."""

import pytest

from watergee.io.palette import NEGATED, SEQUENCE, class_colours, named_colour

BLUE, GREEN, RED = (0, 92, 230), (0, 128, 0), (230, 0, 0)


@pytest.mark.parametrize(
    ("name", "colour"),
    [
        ("water", BLUE), ("Open Water", BLUE), ("Water bodies", BLUE), ("sea and ocean", BLUE),
        ("Lakes", BLUE), ("forest", GREEN), ("Broad-leaved forest", GREEN), ("Trees", GREEN),
        ("built-up", RED), ("Urban fabric", RED), ("artificial surfaces", RED),
        ("not water", NEGATED), ("Non-water", NEGATED), ("nonwater", NEGATED),
        ("grassland", (163, 230, 77)), ("Arable land", (255, 220, 90)),
        ("Inland marshes", (77, 204, 204)), ("bare soil", (204, 178, 140)),
        ("land", (235, 225, 200)), ("cloud", (190, 190, 190)),
        ("class 7", None), ("tundra", None), ("seven", None), ("none", None), ("No data", None),
        ("Cloud shadows", (90, 90, 90)), ("Sea ice", (230, 240, 255)),
        ("Non-irrigated arable land", (255, 220, 90)), ("Fruit trees", (255, 220, 90)),
    ],
)  # fmt: skip
def test_a_class_named_like_a_common_land_cover_gets_its_fixed_colour(name, colour):
    assert named_colour(name) == colour


def test_an_unrecognised_class_takes_the_sequence_by_its_code_whatever_else_is_in_the_map():
    assert class_colours({9: "tundra", 1: "water", 4: "class 4", 23: ""}) == {
        1: BLUE, 4: SEQUENCE[4], 9: SEQUENCE[9], 23: SEQUENCE[11]
    }  # fmt: skip
    assert class_colours({9: "tundra"}) == {9: SEQUENCE[9]}
    assert len(set(SEQUENCE)) == len(SEQUENCE)


def test_classes_sharing_a_named_colour_are_told_apart_by_brightness_in_code_order():
    colours = class_colours({311: "Broad-leaved forest", 312: "Coniferous forest",
                             313: "Mixed forest", 512: "Water bodies"})  # fmt: skip
    assert colours == {311: GREEN, 312: (0, 90, 0), 313: (0, 166, 0), 512: BLUE}
