"""Mixed precision: the networks compute in the policy's compute dtype, the flow's maths in the variable dtype.

Under `keras.mixed_precision.set_global_policy("mixed_float16")` (or "mixed_bfloat16") Keras layers keep their
variables in float32 and compute in float16 (bfloat16). A flow is a sum of log-determinants and a base
log-density, numerically sensitive as a softmax is: Keras' guide runs such outputs in float32, and so do we
(Micikevicius et al. 2018, "Mixed precision training", sec. 3.3: reductions and losses in float32).

- The conditioner networks (Dense/Conv stacks, MADE, attention) keep the mixed policy: Keras casts their inputs
  to the compute dtype and their float32 variables to it on read, so their matmuls and convolutions run in
  float16. `in_flow_dtype` casts what they return to the variable dtype before it parametrises a bijector.
- The model, its steps (`BijectorLayer`), its base distribution and the dequantizer compute in the variable
  dtype (`ComputesInVariableDtype`): they keep the mixed policy (so `compile` applies Keras' loss scaling under
  mixed_float16, the policy reaches their networks and `.keras` files record it), but report the variable
  dtype as their `compute_dtype`. Keras then casts their inputs to float32 and opens no autocast scope around
  them, so the bijectors, the log-determinants, the base log-density and the loss run in float32.

Under a plain policy ("float32", "float64") the two dtypes are the same and nothing changes.
"""

import numpy as np
import tensorflow as tf


class ComputesInVariableDtype:
    """Mixin for a Keras layer or model whose own maths stays in its variable dtype under a mixed policy.

    `compute_dtype` is the policy's variable dtype (float32 under "mixed_float16"), which is what Keras casts the
    layer's inputs to and what decides whether `__call__` autocasts variables; sub-layers built with the
    layer's `dtype_policy` still compute in the policy's compute dtype.
    """

    @property
    def compute_dtype(self):
        return self.variable_dtype


def in_flow_dtype(outputs, dtype):
    """`outputs` (a tensor or a nest of them, a network's result) with every float tensor cast to `dtype`, the
    variable dtype of the network's policy (float32 under a mixed policy): what the bijectors compute in.

    A float16 output that overflowed (beyond 65504, as inputs far outside the data give) is saturated at the
    largest float16 instead of reaching the bijector as infinity: its parameters are bounded there anyway (tanh
    log-scales, softmax bins, floored mixture scales), and the log-density stays finite.
    """
    dtype = tf.as_dtype(dtype)
    half_max = float(np.finfo(np.float16).max)

    def cast(t):
        if not (tf.is_tensor(t) and t.dtype.is_floating and t.dtype != dtype):
            return t
        if t.dtype == tf.float16:
            t = tf.clip_by_value(t, -half_max, half_max)
        return tf.cast(t, dtype)

    return tf.nest.map_structure(cast, outputs)
