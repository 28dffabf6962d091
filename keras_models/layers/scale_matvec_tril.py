"""`LowerTriangularAffineLayer`: h -> L h + b (`tfb.Shift` after `tfb.ScaleMatvecTriL`) with Keras-owned weights."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models.core.bijector_layer import BijectorLayer, softplus_inverse

tfb = tfp.bijectors

_DIAGONAL_FLOOR = 1e-5


class LowerTriangularAffineLayer(BijectorLayer):
    """h -> L h + b with L lower-triangular and a positive diagonal; starts near the identity.

    Weights: `shift` [D], `diagonal` [D] (raw, through softplus) and, for D > 1, `strictly_lower` [D (D - 1) / 2]
    (small random values, so the layers of a stack start different from each other).
    """

    def build(self, input_shape):
        size = int(input_shape[-1])
        self.size = size
        self.shift = self.add_weight(name="shift", shape=(size,), initializer="zeros")
        self.diagonal = self.add_weight(
            name="diagonal", shape=(size,), initializer=keras.initializers.Constant(softplus_inverse(1.0))
        )
        self.strictly_lower = None
        if size > 1:
            self.strictly_lower = self.add_weight(
                name="strictly_lower",
                shape=(size * (size - 1) // 2,),
                initializer=keras.initializers.RandomNormal(stddev=0.1),
            )
        self.built = True

    def scale_tril(self):
        diagonal = tf.math.softplus(self.diagonal.value) + _DIAGONAL_FLOOR
        scale = tf.linalg.diag(diagonal)
        if self.strictly_lower is not None:
            # fill_triangular gives a (D-1)x(D-1) lower triangle; one row above and one column to the right
            # of zeros make it the strictly lower part of a DxD matrix.
            lower = tfp.math.fill_triangular(self.strictly_lower.value)
            scale = scale + tf.pad(lower, [[1, 0], [0, 1]])
        return scale

    def bijector(self):
        return tfb.Chain([tfb.Shift(self.shift.value), tfb.ScaleMatvecTriL(self.scale_tril())], name="affine_tril")
