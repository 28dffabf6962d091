"""Registry cases for PReLU, Planar, Radial, LogitTransform and Squeeze (see bijector_cases/__init__.py).

Parameters are `tf.Variable`s of the dtype under test (so the kit checks gradients reaching them); inputs are
NumPy arrays in the forward (latent) domain. Edge inputs probe zero, large magnitudes and each bijector's
special points:
  PReLU, Planar, Squeeze: 0 and +-1e3.
  Radial: z0 itself (r = 0, where ||z - z0|| is not differentiable), points 1e-6 away from z0, and 1e3 away.
  LogitTransform: its forward domain is R, but float32 can only round-trip latents whose sigmoid has not
    saturated; the edges are 0 and the latent images of the data end points 0 and 1 (logit(alpha),
    logit(1 - alpha)), which is where real data lands. For alpha = 1e-6, logit(1 - 1e-6) = 13.8 is already
    past float32's resolution near 1 (1 - sigmoid(z) is then known only to ~6%), so that case uses -13.8
    (the image of data 0) and +-8 instead.
"""

import numpy as np
import tensorflow as tf

from bijector_cases import BijectorCase
from tfp_flows import LogitTransform, MaskedExp, Planar, PReLU, Radial, Squeeze


def _var(value, dtype, name):
    return tf.Variable(np.asarray(value), dtype=dtype, name=name)


def _normal(shape, scale=1.0, seed=0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float64)


def _logit(p):
    return float(np.log(p) - np.log1p(-p))


# ---- PReLU (elementwise) ------------------------------------------------------------------------------------


def _prelu_cases():
    x = _normal([5, 3], scale=2.0, seed=1)
    edges = [np.zeros([2, 3]), np.full([2, 3], 1e3), np.full([2, 3], -1e3)]
    return {
        "PReLU-alpha_0.2": BijectorCase(
            make=lambda dtype: PReLU(_var(0.2, dtype, "alpha"), validate_args=True),
            x=x,
            event_ndims=0,
            edge_inputs=edges,
        ),
        "PReLU-alpha_3.0-event_ndims_1": BijectorCase(
            make=lambda dtype: PReLU(_var(3.0, dtype, "alpha"), validate_args=True),
            x=x,
            event_ndims=1,
            edge_inputs=edges,
        ),
        "PReLU-batch_alpha_0.05_1_4": BijectorCase(
            make=lambda dtype: PReLU(_var([0.05, 1.0, 4.0], dtype, "alpha"), validate_args=True),
            x=x,
            event_ndims=0,
            edge_inputs=edges,
        ),
    }


# ---- Planar (event [D]) -------------------------------------------------------------------------------------


def _planar(w, u, b):
    return lambda dtype: Planar(_var(w, dtype, "w"), _var(u, dtype, "u"), _var(b, dtype, "b"), validate_args=True)


def _planar_cases():
    return {
        # w . u = -0.95: u_hat gives w . u_hat = softplus(-0.95) - 1 = -0.68, a contraction along w.
        "Planar-D2-contracting": BijectorCase(
            make=_planar([1.0, -0.5], [-0.8, 0.3], 0.1),
            x=_normal([6, 2], seed=2),
            event_ndims=1,
            edge_inputs=[np.zeros([2, 2]), np.full([2, 2], 1e3), np.array([[-1e3, 1e3]])],
        ),
        "Planar-D2-expanding": BijectorCase(
            make=_planar([0.7, 1.2], [1.5, 2.0], -0.3),
            x=_normal([6, 2], seed=3),
            event_ndims=1,
            edge_inputs=[np.zeros([2, 2]), np.full([2, 2], -1e3)],
        ),
        # u = -3 w: w . u far below -1, the case the reparametrisation u -> u_hat exists for.
        "Planar-D3-w_dot_u_below_minus_1": BijectorCase(
            make=_planar([0.5, -1.0, 0.8], [-1.5, 3.0, -2.4], 0.0),
            x=_normal([6, 3], seed=4),
            event_ndims=1,
            edge_inputs=[np.zeros([1, 3]), np.full([1, 3], 1e3)],
        ),
        # A batch of 2 flows broadcast against inputs of batch shape [4, 2].
        "Planar-D5-batch_2": BijectorCase(
            make=_planar(_normal([2, 5], seed=5), _normal([2, 5], seed=6), [0.3, -0.2]),
            x=_normal([4, 2, 5], seed=7),
            event_ndims=1,
            edge_inputs=[np.zeros([1, 2, 5]), np.full([1, 2, 5], 1e3)],
        ),
    }


# ---- Radial (event [D]) -------------------------------------------------------------------------------------


def _radial(z0, alpha, beta):
    return lambda dtype: Radial(
        _var(z0, dtype, "z0"), _var(alpha, dtype, "alpha"), _var(beta, dtype, "beta"), validate_args=True
    )


def _near(z0, offsets):
    z0 = np.asarray(z0, np.float64)
    return np.stack([z0 + d for d in offsets])


def _radial_cases():
    z0_2 = [0.5, -0.5]
    z0_3 = [0.0, 1.0, -1.0]
    return {
        "Radial-D2-contracting": BijectorCase(
            make=_radial(z0_2, 1.0, -0.7),
            x=_normal([6, 2], seed=8),
            event_ndims=1,
            edge_inputs=[_near(z0_2, [0.0, 1e-6, -1e-6]), _near(z0_2, [1e3, -1e3])],
        ),
        "Radial-D3-expanding": BijectorCase(
            make=_radial(z0_3, 0.5, 2.0),
            x=_normal([6, 3], seed=9),
            event_ndims=1,
            edge_inputs=[_near(z0_3, [0.0, 1e-6]), _near(z0_3, [1e3]), np.zeros([1, 3])],
        ),
        # beta close to its bound -alpha: nearly singular at z0 (log-det (D - 1) log(0.02) + log(0.02) there).
        "Radial-D2-near_singular": BijectorCase(
            make=_radial(z0_2, 0.5, -0.49),
            x=_normal([6, 2], seed=10),
            event_ndims=1,
            edge_inputs=[_near(z0_2, [0.0, 1e-6]), _near(z0_2, [1e3])],
        ),
        "Radial-D1": BijectorCase(
            make=_radial([0.3], 0.8, -0.5),
            x=_normal([6, 1], seed=11),
            event_ndims=1,
            edge_inputs=[np.array([[0.3], [0.3 + 1e-6], [-1e3]])],
        ),
        # A batch of 3 flows with their own z0, alpha, beta, against inputs of batch shape [2, 3].
        "Radial-D4-batch_3": BijectorCase(
            make=_radial(_normal([3, 4], seed=12), [0.3, 1.0, 2.0], [-0.25, 0.0, 5.0]),
            x=_normal([2, 3, 4], seed=13),
            event_ndims=1,
            edge_inputs=[_normal([3, 4], seed=12)[np.newaxis], np.full([1, 3, 4], 1e3)],
        ),
    }


# ---- LogitTransform (elementwise; forward domain R) ------------------------------------------------------------


def _latent_of_data(data, alpha):
    """Latents that are images of data in [0, 1]: logit(alpha + (1 - 2 alpha) data)."""
    p = alpha + (1.0 - 2.0 * alpha) * np.asarray(data, np.float64)
    return np.log(p) - np.log1p(-p)


def _logit_cases():
    rng = np.random.default_rng(16)
    return {
        # validate_args=False: the forward domain is all of R, including latents beyond the image of [0, 1]
        # (their forward values lie just outside [0, 1], which validate_args=True would reject as data).
        "LogitTransform-alpha_0.05": BijectorCase(
            make=lambda dtype: LogitTransform(alpha=0.05),
            x=_normal([5, 4], scale=2.0, seed=14),
            event_ndims=0,
            edge_inputs=[np.zeros([1, 4]), np.array([[_logit(0.05), _logit(0.95), -6.0, 6.0]])],
        ),
        "LogitTransform-alpha_1e-6-event_ndims_1": BijectorCase(
            make=lambda dtype: LogitTransform(alpha=1e-6),
            x=_normal([5, 4], scale=3.0, seed=15),
            event_ndims=1,
            edge_inputs=[np.zeros([1, 4]), np.array([[_logit(1e-6), -8.0, 8.0, 0.0]])],
        ),
        # validate_args=True and a variable alpha: latents are images of data strictly inside [0, 1] (the
        # validated inverse rejects forward values that rounding pushes a few ulps outside [0, 1]).
        "LogitTransform-alpha_variable_0.01-validated": BijectorCase(
            make=lambda dtype: LogitTransform(alpha=_var(0.01, dtype, "alpha"), validate_args=True),
            x=_latent_of_data(rng.uniform(0.0, 1.0, [3, 2, 2]), 0.01),
            event_ndims=2,
            edge_inputs=[np.zeros([1, 2, 2]), _latent_of_data([[[1e-3, 1.0 - 1e-3], [0.5, 1e-2]]], 0.01)],
        ),
    }


# ---- Squeeze (event [H, W, C]) --------------------------------------------------------------------------------


def _squeeze_cases():
    return {
        # Forward (depth-to-space) takes [4, 4, 4] latents to [8, 8, 1] data.
        "Squeeze-f2-4x4x4": BijectorCase(
            make=lambda dtype: Squeeze(2, validate_args=True),
            x=_normal([2, 4, 4, 4], seed=17),
            event_ndims=3,
            edge_inputs=[np.zeros([1, 4, 4, 4]), np.full([1, 4, 4, 4], 1e3)],
        ),
        "Squeeze-f2-no_batch-2x2x8": BijectorCase(
            make=lambda dtype: Squeeze(2),
            x=_normal([2, 2, 8], seed=18),
            event_ndims=3,
            edge_inputs=[np.zeros([2, 2, 8])],
        ),
        "Squeeze-f3-batch_2x2-1x2x9": BijectorCase(
            make=lambda dtype: Squeeze(3, validate_args=True),
            x=_normal([2, 2, 1, 2, 9], seed=19),
            event_ndims=3,
            edge_inputs=[np.full([1, 1, 1, 2, 9], -1e3)],
        ),
    }


def _masked_exp_cases():
    # A constant mask, no parameters: the kit checks the inverse, the log-det against autodiff and XLA.
    return {
        "MaskedExp-columns_0_2": BijectorCase(
            make=lambda dtype: MaskedExp([True, False, True], dtype=dtype),
            x=_normal([5, 3], seed=7),
            event_ndims=1,
            edge_inputs=[np.zeros([2, 3]), np.array([[-20.0, 1e3, 20.0]])],
        ),
        "MaskedExp-every_column-batch_3d": BijectorCase(
            make=lambda dtype: MaskedExp([True, True], dtype=dtype),
            x=_normal([2, 3, 2], scale=3.0, seed=8),
            event_ndims=1,
            edge_inputs=[np.zeros([1, 2]), np.full([1, 2], -30.0), np.full([1, 2], 30.0)],
        ),
    }


CASES = {
    **_masked_exp_cases(),
    **_prelu_cases(),
    **_planar_cases(),
    **_radial_cases(),
    **_logit_cases(),
    **_squeeze_cases(),
}
