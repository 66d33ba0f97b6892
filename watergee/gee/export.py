"""A trained network as one Earth Engine image expression, exact and compact.

A k x k convolution layer is a handful of operations whatever its width: the neighbourhood of
every input band as an array (`neighborhoodToArray`), those arrays stacked along a new third
axis (`toArray(2)`, giving per pixel a (k, k, C) array), that array flattened to named bands
whose names say their position, those bands in Keras' row-major (row, column, channel) order as
one column vector, and one per-pixel matrix product with the layer's kernel as a (C_out, k k C)
constant array. Bias and relu are per-band operations. A 1 x 1 layer skips the neighbourhood.
The published converter instead builds one convolution per (input band, output channel) pair.

Orientation. Keras' Conv2D is a cross-correlation: out[y, x] = sum over i, j of
in[y + i, x + j] * W[i, j], where row 0 of a raster is the first line GDAL reads (the northern
edge of a north-up image). Earth Engine documents that axis 0 of a neighbourhood array is the
image's Y axis and axis 1 its X axis, and computePixels returns rows in the same north-first
order as GDAL; element [i, j] is taken here as the pixel i rows below and j columns right of the
neighbourhood's first corner, so W[i, j] multiplies the same pixel as in Keras and no kernel is
flipped. `ee.Image.convolve` is not used because whether it flips a kernel is not documented.
`watergee gee selftest` checks this on the server against the local model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from watergee.gee.network import Step


def _ee():
    import ee

    return ee


def _constant(values: np.ndarray | list[float]) -> Any:
    """A constant image: one band per value for a list, one array band for a matrix."""
    ee = _ee()
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        return ee.Image.constant(values.tolist())
    return ee.Image.constant(ee.Array(values.tolist()))


def _column(image: Any, step: Step, names: list[str]) -> tuple[Any, list[str]]:
    """The layer's receptive field at every pixel as a (k k C, 1) array, in the row-major
    (row, column, channel) order of a Keras kernel; also the order as band names."""
    ee = _ee()
    k = step.kernel.shape[0]
    if k == 1:
        order = names
        flat = image.select(order)
    else:
        radius = k // 2
        rows, cols = [f"y{i}" for i in range(k)], [f"x{j}" for j in range(k)]
        stacked = image.select(names).neighborhoodToArray(ee.Kernel.square(radius, "pixels"))
        flat = stacked.toArray(2).arrayFlatten([rows, cols, names])
        order = [f"{r}_{c}_{n}" for r in rows for c in cols for n in names]
        flat = flat.select(order)
    return flat.toArray().toArray(1), order


def _convolution(image: Any, step: Step, names: list[str]) -> tuple[Any, list[str]]:
    column, _ = _column(image, step, names)
    k, _, c_in, c_out = step.kernel.shape
    weights = step.kernel.reshape(k * k * c_in, c_out).T  # (C_out, k k C_in), row-major
    outputs = [f"{step.name}_{o}" for o in range(c_out)]
    product = _constant(weights).matrixMultiply(column).arrayFlatten([outputs, ["v"]])
    result = product.add(_constant(step.bias)).rename(outputs)
    return _activate(result, step.activation), outputs


def _activate(image: Any, function: str) -> Any:
    ee = _ee()
    if function == "relu":
        return image.max(ee.Image.constant(0))
    if function == "softmax":  # exp(z - max z) / sum, per pixel over the bands
        shifted = image.subtract(image.reduce(ee.Reducer.max())).exp()
        return shifted.divide(shifted.reduce(ee.Reducer.sum()))
    return image


def network_image(
    steps: list[Step],
    features: Any,
    normalization: dict[str, list[float]] | None = None,
) -> tuple[Any, list[str]]:
    """The network's output bands over a features image whose bands are the model's channels
    in order; also the output band names.

    As in local classification, a pixel is predicted only where every band of its whole
    receptive field is valid: masked features are filled with 0 for the network (so no layer
    meets a masked neighbour) and the output is masked where the field was not complete."""
    ee = _ee()
    first = steps[0]
    halo = steps[-1].halo
    names = [f"in_{i}" for i in range(first.channels)]
    valid = features.mask().reduce(ee.Reducer.min())
    complete = valid.focalMin(halo, "square", "pixels") if halo else valid
    image = features.unmask(0).rename(names)
    if normalization is not None:
        image = image.subtract(_constant(normalization["mean"]))
        image = image.divide(_constant(normalization["std"])).rename(names)
    tensors: dict[str, tuple[Any, list[str]]] = {first.name: (image, names)}
    for step in steps[1:]:
        source, source_names = tensors[step.sources[0]]
        if step.kind == "conv":
            tensors[step.name] = _convolution(source, step, source_names)
        elif step.kind == "crop":  # re-centres a branch: on a whole image the same pixels
            tensors[step.name] = (source, source_names)
        elif step.kind == "concat":
            parts = [tensors[name] for name in step.sources]
            joined = _ee().Image.cat([p[0] for p in parts])
            tensors[step.name] = (joined, [n for p in parts for n in p[1]])
        else:
            tensors[step.name] = (_activate(source, step.activation), source_names)
    output, output_names = tensors[steps[-1].name]
    return output.updateMask(complete), output_names


def classified(probabilities: Any, classes: list[int]) -> Any:
    """The class code of the most probable output channel, as one uint8 band `class`."""
    index = probabilities.toArray().arrayArgmax().arrayFlatten([["class"]])
    return index.remap(list(range(len(classes))), classes).toUint8().rename("class")


def operation_count(image: Any) -> int:
    """Function calls in the serialised expression, each shared sub-expression once."""
    ee = _ee()
    encoded = ee.serializer.encode(image, for_cloud_api=True)

    def count(node: Any) -> int:
        if isinstance(node, dict):
            here = 1 if "functionInvocationValue" in node else 0
            return here + sum(count(v) for v in node.values())
        if isinstance(node, list):
            return sum(count(v) for v in node)
        return 0

    return count(encoded)
