"""Keras must run on its TensorFlow backend: the flows are TFP bijectors, which are TensorFlow code."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter drowns the progress bars

import keras

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras_models needs Keras on the TensorFlow backend (TFP bijectors are TensorFlow code); "
        f"KERAS_BACKEND is {keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow before importing keras."
    )
