"""The four 2-D test energies of Rezende & Mohamed (2015), "Variational Inference with Normalizing Flows",
Table 1: unnormalised targets p~(z) = exp(-U(z)) for variational inference (`keras_models.VariationalFlow`).

    U1(z) = 1/2 ((|z| - 2) / 0.4)^2 - log(exp(-1/2 ((z1 - 2) / 0.6)^2) + exp(-1/2 ((z1 + 2) / 0.6)^2))
    U2(z) = 1/2 ((z2 - w1(z)) / 0.4)^2
    U3(z) = -log(exp(-1/2 ((z2 - w1(z)) / 0.35)^2) + exp(-1/2 ((z2 - w1(z) + w2(z)) / 0.35)^2))
    U4(z) = -log(exp(-1/2 ((z2 - w1(z)) / 0.4)^2) + exp(-1/2 ((z2 - w1(z) + w3(z)) / 0.35)^2))

    w1(z) = sin(2 pi z1 / 4),  w2(z) = 3 exp(-1/2 ((z1 - 1) / 0.6)^2),  w3(z) = 3 sigmoid((z1 - 1) / 0.3)

z = [z1, z2] is the last axis: each energy maps [..., 2] to [...], in the dtype of z (float32 or float64). The
log-sums use `reduce_logsumexp`, so the energies stay finite far from the modes. The paper plots them on
[-4, 4]^2 (`PLOT_LIMITS`).

Example:
    >>> import numpy as np
    >>> from tfp_flows.datasets import energies
    >>> float(energies.u2(np.array([0.0, 0.0])))  # z2 = w1(z) = 0
    0.0
    >>> log_unnormalised_target = lambda z: -energies.ENERGIES["u1"](z)
"""

import math
from collections.abc import Callable

import tensorflow as tf

from . import _checks

__all__ = ["u1", "u2", "u3", "u4", "w1", "w2", "w3", "ENERGIES", "PLOT_LIMITS", "get_energy"]

PLOT_LIMITS = ((-4.0, 4.0), (-4.0, 4.0))


def w1(z: tf.Tensor) -> tf.Tensor:
    """w1(z) = sin(2 pi z1 / 4)."""
    return tf.sin(2.0 * math.pi * z[..., 0] / 4.0)


def w2(z: tf.Tensor) -> tf.Tensor:
    """w2(z) = 3 exp(-1/2 ((z1 - 1) / 0.6)^2)."""
    return 3.0 * tf.exp(-0.5 * tf.square((z[..., 0] - 1.0) / 0.6))


def w3(z: tf.Tensor) -> tf.Tensor:
    """w3(z) = 3 sigmoid((z1 - 1) / 0.3)."""
    return 3.0 * tf.sigmoid((z[..., 0] - 1.0) / 0.3)


def _neg_log_sum_exp(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """-log(exp(a) + exp(b)), stable."""
    return -tf.reduce_logsumexp(tf.stack([a, b], axis=-1), axis=-1)


def u1(z: tf.Tensor) -> tf.Tensor:
    """U1(z) = 1/2 ((|z| - 2) / 0.4)^2 - log(exp(-1/2 ((z1 - 2)/0.6)^2) + exp(-1/2 ((z1 + 2)/0.6)^2))."""
    z = _checks.check_points_2d(z, "z")
    ring = 0.5 * tf.square((tf.norm(z, axis=-1) - 2.0) / 0.4)
    left = -0.5 * tf.square((z[..., 0] - 2.0) / 0.6)
    right = -0.5 * tf.square((z[..., 0] + 2.0) / 0.6)
    return ring + _neg_log_sum_exp(left, right)


def u2(z: tf.Tensor) -> tf.Tensor:
    """U2(z) = 1/2 ((z2 - w1(z)) / 0.4)^2."""
    z = _checks.check_points_2d(z, "z")
    return 0.5 * tf.square((z[..., 1] - w1(z)) / 0.4)


def u3(z: tf.Tensor) -> tf.Tensor:
    """U3(z) = -log(exp(-1/2 ((z2 - w1)/0.35)^2) + exp(-1/2 ((z2 - w1 + w2)/0.35)^2))."""
    z = _checks.check_points_2d(z, "z")
    a = -0.5 * tf.square((z[..., 1] - w1(z)) / 0.35)
    b = -0.5 * tf.square((z[..., 1] - w1(z) + w2(z)) / 0.35)
    return _neg_log_sum_exp(a, b)


def u4(z: tf.Tensor) -> tf.Tensor:
    """U4(z) = -log(exp(-1/2 ((z2 - w1)/0.4)^2) + exp(-1/2 ((z2 - w1 + w3)/0.35)^2))."""
    z = _checks.check_points_2d(z, "z")
    a = -0.5 * tf.square((z[..., 1] - w1(z)) / 0.4)
    b = -0.5 * tf.square((z[..., 1] - w1(z) + w3(z)) / 0.35)
    return _neg_log_sum_exp(a, b)


ENERGIES = {"u1": u1, "u2": u2, "u3": u3, "u4": u4}


def get_energy(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The energy function called `name` ("u1".."u4", case-insensitive, so "U2" works)."""
    key = str(name).lower()
    if key not in ENERGIES:
        raise ValueError(f"`name` must be one of {sorted(ENERGIES)} (case-insensitive); received {name!r}")
    return ENERGIES[key]
