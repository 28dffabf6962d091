"""`LogitLayer`: `tfp_flows.LogitTransform`, the logit preprocessing of [0, 1] data (RealNVP sec. 4.1), as a step."""

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer


class LogitLayer(BijectorLayer):
    """Preprocessing of [0, 1] data to R: z = logit(alpha + (1 - 2 alpha) x) (RealNVP sec. 4.1).

    It is made for data in [0, 1] (just outside, the density is finite but meaningless; below -alpha / (1 - 2
    alpha) or above 1 + alpha / (1 - 2 alpha) the inverse is NaN): `data_support` says so, and a `FlowModel`
    starting with this step checks the data whose density it takes against it (`FlowModel.support`).
    """

    data_support = (0.0, 1.0)

    def __init__(self, alpha=0.05, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def build(self, input_shape):
        self.built = True

    def bijector(self):
        return tfp_flows.LogitTransform(alpha=self.alpha)
