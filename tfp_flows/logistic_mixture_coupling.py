"""PLACEHOLDER: being implemented (replace this whole file)."""
from tensorflow_probability import bijectors as tfb


class LogisticMixtureCoupling(tfb.Bijector):
    pass
