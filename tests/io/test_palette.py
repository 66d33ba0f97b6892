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
        ("class 7", None), ("tundra", None), ("seven", None),
    ],
)  # fmt: skip
def test_a_class_named_like_a_common_land_cover_gets_its_fixed_colour(name, colour):
    assert named_colour(name) == colour


def test_unrecognised_classes_take_the_sequence_in_code_order_after_the_named_ones():
    colours = class_colours({9: "tundra", 1: "water", 4: "class 4", 2: "forest"}, [1, 2, 4, 9, 11])
    assert colours == {1: BLUE, 2: GREEN, 4: SEQUENCE[0], 9: SEQUENCE[1], 11: SEQUENCE[2]}
    assert len(set(SEQUENCE)) == len(SEQUENCE)
