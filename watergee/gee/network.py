"""A Keras network read as a short list of steps that have Earth Engine counterparts.

Only what maps exactly onto per-pixel image operations is accepted: valid, unit-stride, odd
square convolutions (k x k or 1 x 1), symmetric crops that keep branches centred on the same
pixel, channel concatenations and relu / softmax / linear activations. On a whole image every
such step is "the same pixel's neighbourhood", so a crop that re-centres a branch is the
identity and the network becomes a chain of neighbourhood and per-pixel operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from watergee.core.errors import ModelError

ACTIVATIONS = ("relu", "softmax", "linear")


@dataclass(frozen=True)
class Step:
    """One layer. `kind` is input, conv, concat, crop or activation; `halo` is how many pixels
    of context the tensor has used up on each side since the input."""

    name: str
    kind: str
    sources: tuple[str, ...]
    halo: int
    kernel: np.ndarray | None = None  # (k, k, C_in, C_out), Keras' HWIO order
    bias: np.ndarray | None = None
    activation: str = "linear"
    channels: int = 0


def _activation(layer: Any, where: str) -> str:
    function = getattr(layer, "activation", None)
    name = getattr(function, "__name__", "linear")
    if name not in ACTIVATIONS:
        raise ModelError(f"{where}: activation {name!r} has no exact Earth Engine form here")
    return name


def _sources(layer: Any) -> tuple[str, ...]:
    tensors = layer.input if isinstance(layer.input, list) else [layer.input]
    return tuple(t._keras_history.operation.name for t in tensors)


def _conv(layer: Any, where: str, source: Step) -> Step:
    k = layer.kernel_size
    if layer.padding != "valid" or tuple(layer.strides) != (1, 1):
        raise ModelError(f"{where}: only valid convolutions of stride 1 can be exported")
    if tuple(layer.dilation_rate) != (1, 1) or getattr(layer, "groups", 1) != 1:
        raise ModelError(f"{where}: dilated or grouped convolutions cannot be exported")
    if k[0] != k[1] or k[0] % 2 == 0:
        raise ModelError(f"{where}: kernel {k[0]}x{k[1]} is not an odd square")
    if layer.data_format != "channels_last":
        raise ModelError(f"{where}: data format {layer.data_format} (channels_last expected)")
    weights = layer.get_weights()
    kernel = np.asarray(weights[0], np.float64)
    bias = np.asarray(weights[1], np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    return Step(layer.name, "conv", (source.name,), source.halo + k[0] // 2, kernel, bias,
                _activation(layer, where), kernel.shape[-1])  # fmt: skip


def read_network(model: Any, where: str) -> list[Step]:
    """The model's layers in order as steps; anything without an exact counterpart is refused
    with a message naming the layer (`where` names the model folder)."""
    steps: dict[str, Step] = {}
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{where}: a network with one input and one output is needed")
    for layer in model.layers:
        kind = type(layer).__name__
        at = f"{where}: layer {layer.name} ({kind})"
        if kind == "InputLayer":
            channels = int(layer.output.shape[-1])
            steps[layer.name] = Step(layer.name, "input", (), 0, channels=channels)
            continue
        sources = [steps[name] for name in _sources(layer)]
        if kind == "Conv2D":
            step = _conv(layer, at, sources[0])
        elif kind == "Cropping2D":
            (top, bottom), (left, right) = layer.cropping
            if not top == bottom == left == right:
                raise ModelError(f"{at}: only crops equal on all four sides keep the centre")
            step = Step(layer.name, "crop", (sources[0].name,), sources[0].halo + top,
                        channels=sources[0].channels)  # fmt: skip
        elif kind == "Concatenate":
            if layer.axis not in (-1, 3):
                raise ModelError(f"{at}: only concatenation along channels can be exported")
            if len({s.halo for s in sources}) != 1:
                halos = ", ".join(f"{s.name} {s.halo}" for s in sources)
                raise ModelError(f"{at}: inputs are not centred on the same pixel ({halos})")
            step = Step(layer.name, "concat", tuple(s.name for s in sources), sources[0].halo,
                        channels=sum(s.channels for s in sources))  # fmt: skip
        elif kind in ("Activation", "ReLU", "Softmax"):
            function = {"ReLU": "relu", "Softmax": "softmax"}.get(kind) or _activation(layer, at)
            if kind == "ReLU" and (layer.max_value is not None or float(layer.negative_slope)
                                   or float(layer.threshold)):  # fmt: skip
                raise ModelError(f"{at}: only the plain relu can be exported")
            step = Step(layer.name, "activation", (sources[0].name,), sources[0].halo,
                        activation=function, channels=sources[0].channels)  # fmt: skip
        else:
            supported = "Conv2D, Cropping2D, Concatenate, Activation/ReLU/Softmax"
            raise ModelError(f"{at} has no exact Earth Engine counterpart (supported: {supported})")
        steps[layer.name] = step
    output = model.outputs[0]._keras_history.operation.name
    if output != list(steps)[-1]:
        raise ModelError(f"{where}: the output layer {output} is not the last layer")
    return list(steps.values())


def pairwise_convolutions(steps: list[Step]) -> int:
    """How many single-band convolutions a converter needs that builds one kernel per
    (input band, output channel) pair, as the published water_gee notebook does."""
    return sum(s.kernel.shape[2] * s.kernel.shape[3] for s in steps if s.kind == "conv")
