"""One module per stage; each a plain function (tile, settings, out) -> StageResult.

Stages never import each other: shared pieces live in the science and io modules. The
registry that names them is `watergee.core.registry`."""
