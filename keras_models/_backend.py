"""Keras must run on its TensorFlow backend: the flows are TFP bijectors, which are TensorFlow code."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras_models needs Keras on the TensorFlow backend (TFP bijectors are TensorFlow code); "
        f"KERAS_BACKEND is {keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow before importing keras.")
