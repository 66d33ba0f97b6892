"""water_gee's pixel-based CNN, built from valid convolutions only.

Input 7 x 7 x C; Conv 3x3 16 relu; Conv 3x3 32 relu; concatenate the input's central 3 x 3;
Conv 3x3 64 relu; concatenate the input's central pixel; Conv 1x1 128 relu; Conv 1x1 to the
classes with softmax (38,514 parameters with 8 inputs and 2 classes). Because every layer is
valid, the same network applied to a whole tile gives, at every pixel with 3 pixels of context,
exactly the answer of the 7 x 7 patch centred there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watergee.models.runtime import tensorflow

if TYPE_CHECKING:
    import keras

PATCH = 7
HALO = PATCH // 2


def build_pixelcnn(channels: int, classes: int = 2, name: str = "pixelcnn") -> keras.Model:
    """The network on inputs of any size >= 7 x 7; outputs are (H - 6) x (W - 6)."""
    tensorflow()
    import keras
    from keras import layers

    inputs = keras.Input((None, None, channels), name="features")
    x = layers.Conv2D(16, 3, activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = layers.Concatenate(name="concat_centre3")([x, layers.Cropping2D(2, name="centre3")(inputs)])
    x = layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
    x = layers.Concatenate(name="concat_centre1")([x, layers.Cropping2D(3, name="centre1")(inputs)])
    x = layers.Conv2D(128, 1, activation="relu", name="conv4")(x)
    outputs = layers.Conv2D(classes, 1, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


#: Layer names of our network and of the water_gee HDF5 file, in the same order.
LEGACY_LAYERS = {
    "conv1": "conv2d",
    "conv2": "conv2d_1",
    "conv3": "conv2d_2",
    "conv4": "conv2d_3",
    "probabilities": "conv2d_4",
}
