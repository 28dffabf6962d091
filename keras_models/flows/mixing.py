"""What vector flows put between their steps (`mixing=` of `RealNVP`, `NSF` and `MAF`): one vocabulary.

None       the preset's own default: RealNVP alternates its half masks; NSF and MAF use their `permutation`
           argument ("reverse" unless told otherwise).
"reverse"  x[..., ::-1] between steps (a fixed permutation, no weights, log-det 0).
"random"   a fixed random permutation per step, drawn from `permutation_seed` (stored in the config).
"lu"       a learned invertible linear map W = P L U between steps (Kingma & Dhariwal 2018, sec. 3.2, Glow's
           1x1 convolution on vectors; Durkan et al. 2019's LU-linear layers between NSF steps):
               y = W x,   log|det W| = sum_d log|U_dd|,   U_dd = sign_d * exp(log_abs_d)
           with P and the signs fixed, L unit lower and U upper triangular trained, initialised from the LU
           factors of a random rotation (QR of a seeded Gaussian matrix), so every map starts with log-det 0.
           `keras_models.layers.InvertibleConv1x1Layer` owns the weights; `tfp_flows.InvertibleConv1x1`
           (the same map as `tfb.ScaleMatvecLU`) is built from them on every call.
"""

import numpy as np

from keras_models.layers import ActNormLayer, InvertibleConv1x1Layer, PermuteLayer
from tfp_flows.validation import check_one_of

MIXINGS = (None, "reverse", "random", "lu")
PERMUTATIONS = ("reverse", "random")


def resolve_mixing(mixing, permutation, owner):
    """The mixing to build from `mixing=` and a preset's older `permutation=` ("reverse" by default).

    `mixing=None` defers to `permutation`; an explicit `mixing` with a `permutation` other than "reverse" is a
    contradiction, so it raises rather than silently dropping one of them.
    """
    check_one_of(mixing, "mixing", MIXINGS, owner=owner)
    check_one_of(permutation, "permutation", PERMUTATIONS, owner=owner)
    if mixing is None:
        return permutation
    if permutation != "reverse":
        raise ValueError(
            f"{owner}: pass either `mixing` or `permutation`, not both; received mixing={mixing!r} and "
            f"permutation={permutation!r} (mixing={permutation!r} alone does what the permutation does)"
        )
    return mixing


def mixing_layer(mixing, size, index, rng, dtype):
    """The layer between step `index - 1` and step `index` of a vector flow of `size` dimensions.

    `rng` (a `numpy.random.Generator` seeded by the preset's `permutation_seed`) draws the random permutations
    and the seeds of the LU maps' initial rotations, so a model rebuilt from its config gets the same layers.
    """
    if mixing == "lu":
        seed = int(rng.integers(2**31))
        # One Adam step would otherwise move a size x size map by about `size` times the learning rate
        # (keras_models/layers/invertible_conv1x1.py): NaN on 784-D digits.
        return InvertibleConv1x1Layer(seed=seed, weight_scale=1.0 / size, dtype=dtype, name=f"lu_mixing_{index}")
    order = np.arange(size)[::-1] if mixing == "reverse" else random_order(size, rng)
    return PermuteLayer(order, dtype=dtype, name=f"permute_{index}")


def random_order(size: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly drawn permutation of `size` >= 2 indices other than the identity.

    Between two steps of one mask parity the identity would let the second step transform the same half as the
    first, a wasted step: at 2 dimensions half the draws would be it, so "random" there is the swap ("reverse").
    """
    while True:
        order = rng.permutation(size)
        if np.any(order != np.arange(size)):
            return order


def vector_steps(make_step, num_steps, *, size, mixing, seed, dtype, actnorm):
    """The layers of a vector flow of `num_steps` steps, data side first (what `FlowModel._set_flow_layers` takes).

    Step i is `make_step(i)`; on its data side an ActNorm named `actnorm_{i}` when `actnorm` is true, on its
    latent side the layer `mixing_layer(mixing, size, i, ...)` for i >= 1, drawn from a generator seeded by `seed`.
    The layers are made latent side first, step 0 first, so the seeded draws are those of a rebuilt model.
    """
    rng = np.random.default_rng(seed)
    latent_side_first = []
    for i in range(num_steps):
        if i:
            latent_side_first.append(mixing_layer(mixing, size, i, rng, dtype))
        latent_side_first.append(make_step(i))
        if actnorm:
            latent_side_first.append(ActNormLayer(dtype=dtype, name=f"actnorm_{i}"))
    return latent_side_first[::-1]
