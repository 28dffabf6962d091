"""PLACEHOLDER: being implemented (replace this whole file)."""
from tensorflow_probability import bijectors as tfb


class InvertibleConv1x1(tfb.Bijector):
    pass
