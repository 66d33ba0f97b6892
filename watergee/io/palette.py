"""Colours of class maps: a fixed, recognisable colour for a class named like a common land
cover (water blue, forest green, built-up red, ...) and a documented sequence for the rest, so
that one class looks the same in every tile, run and GIS tool."""

from __future__ import annotations

import re

RGB = tuple[int, int, int]

#: (colour, word beginnings a class name may contain), first match wins.
NAMED: tuple[tuple[RGB, str], ...] = (
    ((90, 90, 90), "shadow"),
    ((190, 190, 190), "cloud"),
    ((230, 240, 255), "snow ice glacier"),
    ((0, 92, 230), "water sea lake river reservoir lagoon ocean estuar"),
    ((77, 204, 204), "wetland marsh swamp bog peat mangrove fen"),
    ((255, 220, 90), "crop arable agricultur farm cultivated vineyard orchard fruit rice"),
    ((0, 128, 0), "forest tree wood broadleaf broad-leaved conifer"),
    ((140, 160, 40), "shrub scrub heath bush"),
    ((163, 230, 77), "grass pasture meadow herbaceous rangeland"),
    ((230, 0, 0), "built urban artificial settlement building road impervious industrial"),
    ((204, 178, 140), "bare rock sand soil barren beach dune quarry"),
    ((235, 225, 200), "land"),
)
#: A class named as the negation of a recognised one ("not water", "non-water").
NEGATED: RGB = (225, 225, 225)
#: Colours for classes whose names match nothing above: code n takes SEQUENCE[n % 12].
SEQUENCE: tuple[RGB, ...] = (
    (166, 77, 255), (255, 128, 0), (255, 77, 255), (128, 64, 0), (0, 200, 150), (120, 120, 255),
    (200, 0, 120), (160, 200, 255), (100, 60, 160), (255, 180, 180), (60, 100, 60),
    (180, 140, 0),
)  # fmt: skip
#: Several classes of one map matching the same name (four kinds of forest) are told apart by
#: brightness, in code order: x1, then these.
SHADES = (1.0, 0.7, 1.3, 0.5, 1.5)

_NEGATION = re.compile(r"^\s*(?:not|non|no)[\s_-]*(?P<word>[a-z-]+)\s*$")


def _match(text: str) -> RGB | None:
    for colour, words in NAMED:
        if any(re.search(rf"(?<![a-z]){re.escape(word)}", text) for word in words.split()):
            return colour
    return None


def named_colour(name: str) -> RGB | None:
    """The fixed colour of a class called `name`, or None when the name is not recognised."""
    text = name.lower()
    negation = _NEGATION.match(text)
    if negation and _match(negation["word"]) is not None:
        return NEGATED
    return _match(text)


def class_colours(names: dict[int, str]) -> dict[int, RGB]:
    """A colour for every class code: its name's colour, shaded when classes before it took the
    same one; else (an unrecognised or empty name) the sequence's colour for its code. Pass
    every class a map can hold (a model's, a table's), not only those present, so that tiles
    agree."""
    colours: dict[int, RGB] = {}
    taken: dict[RGB, int] = {}
    for code in sorted(names):
        colour = named_colour(names[code])
        if colour is None:
            colours[code] = SEQUENCE[code % len(SEQUENCE)]
            continue
        shade = SHADES[taken.get(colour, 0) % len(SHADES)]
        taken[colour] = taken.get(colour, 0) + 1
        colours[code] = tuple(min(255, round(c * shade)) for c in colour)  # type: ignore[assignment]
    return colours
