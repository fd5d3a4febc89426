"""The CNN + bidirectional LSTM classifier, sized for a few hundred clips and 2 CPU cores."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from ml.model_config import ModelConfig
from ml.preprocess import InputSpec

__all__ = ["HorizontalFlip", "ModelConfig", "average_models", "build_model"]

# Keras' default BatchNorm momentum (0.99) needs thousands of steps before its moving averages
# are usable; with a few hundred steps per fit evaluation outputs stayed constant.
BN_MOMENTUM = 0.9


def _frame_encoder(spec: InputSpec, config: ModelConfig) -> keras.Model:
    """Per-frame CNN: a strided stem, then depthwise-separable strided blocks, then pooling."""
    regulariser = keras.regularizers.L2(config.weight_decay)
    inputs = keras.Input(shape=(spec.height, spec.width, spec.channels))
    x = layers.Conv2D(
        config.widths[0],
        3,
        strides=2,
        padding="same",
        use_bias=False,
        kernel_regularizer=regulariser,
    )(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = layers.ReLU()(x)
    for width in config.widths[1:]:
        x = layers.SeparableConv2D(
            width,
            3,
            strides=2,
            padding="same",
            use_bias=False,
            depthwise_regularizer=regulariser,
            pointwise_regularizer=regulariser,
        )(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.ReLU()(x)
    # Max pooling keeps a small region of violent motion from being averaged away by a large
    # static scene; average pooling keeps the overall activity level.
    pooled = layers.Concatenate()(
        [layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)]
    )
    return keras.Model(inputs, pooled, name="frame_encoder")


def build_model(
    spec: InputSpec, config: ModelConfig | None = None, name: str = "cnn_bilstm"
) -> keras.Model:
    """Frame CNN applied to every time step, a BiLSTM over the sequence, a sigmoid head."""
    config = config or ModelConfig()
    inputs = keras.Input(shape=spec.shape, name="window")
    features = layers.TimeDistributed(_frame_encoder(spec, config), name="per_frame_cnn")(inputs)
    features = layers.Dropout(config.dropout)(features)
    sequence = layers.Bidirectional(
        layers.LSTM(
            config.lstm_units, kernel_regularizer=keras.regularizers.L2(config.weight_decay)
        ),
        name="bilstm",
    )(features)
    sequence = layers.Dropout(config.dropout)(sequence)
    output = layers.Dense(1, activation="sigmoid", name="violence")(sequence)
    return keras.Model(inputs, output, name=name)


@keras.saving.register_keras_serializable(package="abusewatch")
class HorizontalFlip(layers.Layer):  # type: ignore[misc]  # keras is untyped
    """Mirror windows left to right: (N, T, H, W, C) -> same shape, W reversed.

    Preprocessing (area resize, window-mean subtraction, frame differences) commutes with a
    mirror, so flipping the model input equals preprocessing mirrored frames.
    """

    def call(self, inputs: Any) -> Any:
        return keras.ops.flip(inputs, axis=3)


def average_models(
    spec: InputSpec, members: list[keras.Model], mirror: bool = False
) -> keras.Model:
    """One Keras model whose score is the mean of its members' scores (a seed ensemble).

    With ``mirror`` every member also scores the mirrored window (test-time augmentation; the
    training augmentation mirrors half the windows, so a fight is a fight either way round).
    Saved and loaded as a single file, so the runtime needs no notion of ensembles.
    """
    if len(members) == 1 and not mirror:
        return members[0]
    inputs = keras.Input(shape=spec.shape, name="window")
    views = [inputs, HorizontalFlip(name="mirror")(inputs)] if mirror else [inputs]
    outputs = [member(view) for member in members for view in views]
    mean = layers.Average(name="ensemble_mean")(outputs)
    suffix = "_mirror" if mirror else ""
    return keras.Model(inputs, mean, name=f"cnn_bilstm_x{len(members)}{suffix}")
