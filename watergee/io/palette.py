"""Colours of class maps: a fixed, recognisable colour for a class named like a common land
cover (water blue, forest green, built-up red, ...) and a documented sequence for the rest, so
that one class looks the same in every tile, run and GIS tool."""

from __future__ import annotations

import re

RGB = tuple[int, int, int]

#: (colour, word beginnings a class name may contain), first match wins.
NAMED: tuple[tuple[RGB, str], ...] = (
    ((0, 92, 230), "water sea lake river reservoir lagoon ocean"),
    ((77, 204, 204), "wetland marsh swamp bog peat mangrove fen"),
    ((0, 128, 0), "forest tree wood broadleaf conifer"),
    ((140, 160, 40), "shrub scrub heath bush"),
    ((163, 230, 77), "grass pasture meadow herbaceous rangeland"),
    ((255, 220, 90), "crop arable agricultur farm cultivated vineyard orchard"),
    ((230, 0, 0), "built urban artificial settlement building road impervious industrial"),
    ((204, 178, 140), "bare rock sand soil barren beach dune quarry"),
    ((230, 240, 255), "snow ice glacier"),
    ((190, 190, 190), "cloud"),
    ((90, 90, 90), "shadow"),
    ((235, 225, 200), "land"),
)
#: A class named as the negation of another ("not water", "non-water").
NEGATED: RGB = (225, 225, 225)
#: Colours, in order, for classes whose names match nothing above (by ascending code).
SEQUENCE: tuple[RGB, ...] = (
    (166, 77, 255), (255, 128, 0), (255, 77, 255), (128, 64, 0), (0, 200, 150), (120, 120, 255),
    (200, 0, 120), (160, 200, 255), (100, 60, 160), (255, 180, 180), (60, 100, 60),
    (180, 140, 0),
)  # fmt: skip

_NEGATION = re.compile(r"^\s*(not\b|non[\s_-]?|no\s)")


def named_colour(name: str) -> RGB | None:
    """The fixed colour of a class called `name`, or None when the name is not recognised."""
    text = name.lower()
    if _NEGATION.match(text):
        return NEGATED
    for colour, words in NAMED:
        if any(re.search(rf"(?<![a-z]){word}", text) for word in words.split()):
            return colour
    return None


def class_colours(names: dict[int, str], codes: list[int] | None = None) -> dict[int, RGB]:
    """A colour for every class code (`codes`, default those named): named colours first,
    then the sequence in code order for the rest."""
    codes = sorted(set(codes if codes is not None else names))
    colours: dict[int, RGB] = {}
    unnamed = []
    for code in codes:
        colour = named_colour(names.get(code, ""))
        if colour is None:
            unnamed.append(code)
        else:
            colours[code] = colour
    for i, code in enumerate(unnamed):
        colours[code] = SEQUENCE[i % len(SEQUENCE)]
    return colours
