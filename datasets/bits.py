"""Bits per dimension on the 8-bit scale, from a model's log-likelihood on preprocessed data.

Convention of this project: image data reach the model as x = (pixel + u) / L in [0, 1)^D (L = 256 levels,
`make_dataset`), and everything the model does to x afterwards (a logit transform, centring, ...) is part of its
own bijector chain, so `model.log_prob(x)` already counts those Jacobians. The density of the dequantized
pixels v = L x on [0, L)^D is p_v(v) = p_x(v / L) / L^D, hence

    bits/dim = -log2 p_v(v) / D = -(log p_x(x) - D log L) / (D log 2) = log2(L) - log p_x(x) / (D log 2),

which is 8 - log p_x / (D ln 2) for L = 256 (Dinh et al. 2017, RealNVP, section 4.1; Theis et al. 2016).
A model that is uniform on [0, 1]^D (log p_x = 0) scores exactly log2(L) = 8.

If some preprocessing y = f(x) is done OUTSIDE the model (the model sees y and returns log p_y(y)), pass its
log |det df/dx| as `preprocessing_log_det_jacobian`: log p_x(x) = log p_y(f(x)) + log |det df/dx|. For example,
a logit applied in the pipeline has log |det| = sum_i -log(x_i (1 - x_i)), summed over the D dimensions.

Example:
    >>> from tfp_flows.datasets import bits_per_dim
    >>> float(bits_per_dim(0.0, num_dims=64))  # the uniform model
    8.0
"""

import math

import tensorflow as tf

from tfp_flows.validation import check_int

__all__ = ["bits_per_dim"]


def bits_per_dim(
    log_prob: tf.Tensor, num_dims: int, preprocessing_log_det_jacobian: float = 0.0, num_levels: int = 256
) -> tf.Tensor:
    """Bits/dim of data on the `num_levels`-level scale from log-likelihoods (nats) of the preprocessed data.

    Args:
      log_prob: log-likelihood in nats of each example (any shape; a scalar mean works too), as computed by
        the model on x in [0, 1]^D.
      num_dims: D, the number of dimensions of one example (e.g. 28 * 28 * 1; `dataset_info(name).num_dims`).
      preprocessing_log_det_jacobian: log |det d(model input)/dx| of preprocessing done outside the model,
        broadcasting with `log_prob` (0 when the model gets x itself).
      num_levels: quantisation levels L of the original data (256 for 8-bit).

    Returns:
      Tensor of bits/dim with the shape of `log_prob` (float32 unless `log_prob` is float64).
      Average it over examples (averaging bits/dim equals converting the mean log-likelihood).
    """
    num_dims = check_int(num_dims, "num_dims")
    num_levels = check_int(num_levels, "num_levels")
    log_prob = tf.convert_to_tensor(log_prob)
    if not log_prob.dtype.is_floating:
        log_prob = tf.cast(log_prob, tf.float32)
    log_det = tf.cast(preprocessing_log_det_jacobian, log_prob.dtype)
    log_prob_x = log_prob + log_det
    return (math.log(num_levels) * num_dims - log_prob_x) / (num_dims * math.log(2.0))
