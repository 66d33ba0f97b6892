"""Residual networks: OSMLULC's patch classifier and a dense, valid-convolution variant.

`build_resnet` is a pre-activation bottleneck ResNet (He et al., 2016) as OSMLULC used it: depth
9n + 2 (29: three stages of three bottleneck blocks), k x k kernels (5), widths 16 / 64 / 128 /
256, stride 2 entering stages 2 and 3, global average pooling and a softmax over the classes.
It classifies one patch at a time.

`build_dense_resnet` uses only valid convolutions, pointwise layers and centre-cropped skips, so
that applied to a whole image it gives at every pixel exactly the answer of the patch of its
receptive field centred there: per-pixel classification of a tile costs one pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watergee.models.runtime import tensorflow

if TYPE_CHECKING:
    import keras


def build_resnet(
    patch: int, channels: int, classes: int, depth: int = 29, kernel: int = 5
) -> keras.Model:
    tensorflow()
    import keras
    from keras import layers

    if (depth - 2) % 9:
        raise ValueError(f"resnet depth must be 9n + 2 (29, 38, 47, ...), got {depth}")
    blocks = (depth - 2) // 9

    def bn_relu(x):
        return layers.Activation("relu")(layers.BatchNormalization()(x))

    inputs = keras.Input((patch, patch, channels), name="patches")
    x = bn_relu(layers.Conv2D(16, kernel, padding="same", kernel_initializer="he_normal")(inputs))
    width_in = 16
    for stage in range(3):
        for block in range(blocks):
            width_out = width_in * (4 if stage == 0 else 2)
            strides = 2 if stage > 0 and block == 0 else 1
            # Pre-activation; the stem's output is already activated for the very first block.
            y = x if stage == 0 and block == 0 else bn_relu(x)
            y = layers.Conv2D(width_in, 1, strides=strides, kernel_initializer="he_normal")(y)
            y = layers.Conv2D(width_in, kernel, padding="same", kernel_initializer="he_normal")(
                bn_relu(y)
            )
            y = layers.Conv2D(width_out, 1, kernel_initializer="he_normal")(bn_relu(y))
            if block == 0:
                x = layers.Conv2D(width_out, 1, strides=strides, kernel_initializer="he_normal")(x)
            x = layers.Add()([x, y])
        width_in = width_out
    x = layers.GlobalAveragePooling2D()(bn_relu(x))
    outputs = layers.Dense(classes, activation="softmax", kernel_initializer="he_normal")(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")


def dense_receptive_field(blocks: int) -> int:
    """Pixels of context (side) one output of `build_dense_resnet` sees: 3 + 2 per block."""
    return 3 + 2 * blocks


def build_dense_resnet(
    channels: int, classes: int, blocks: int = 4, width: int = 64
) -> keras.Model:
    """Pre-activation residual blocks (BN-ReLU-Conv3x3 valid-BN-ReLU-Conv1x1) whose skips are
    cropped by one pixel to meet the valid convolution; batch normalisation is pointwise at
    inference, so the network stays translation-exact."""
    tensorflow()
    import keras
    from keras import layers

    inputs = keras.Input((None, None, channels), name="features")
    x = layers.Conv2D(width, 3, kernel_initializer="he_normal", name="stem")(inputs)
    for i in range(blocks):
        y = layers.Activation("relu")(layers.BatchNormalization(name=f"block{i}_bn1")(x))
        y = layers.Conv2D(width, 3, kernel_initializer="he_normal", name=f"block{i}_conv3")(y)
        y = layers.Activation("relu")(layers.BatchNormalization(name=f"block{i}_bn2")(y))
        y = layers.Conv2D(width, 1, kernel_initializer="he_normal", name=f"block{i}_conv1")(y)
        x = layers.Add(name=f"block{i}_add")([layers.Cropping2D(1, name=f"block{i}_skip")(x), y])
    x = layers.Activation("relu")(layers.BatchNormalization(name="head_bn")(x))
    outputs = layers.Conv2D(classes, 1, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="dense_resnet")
