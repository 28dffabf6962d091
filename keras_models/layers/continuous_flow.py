"""`ContinuousFlowLayer`: the Keras layer that owns a velocity field and builds `tfp_flows.ContinuousFlow` from it.

The bijector (TFP's FFJORD underneath) integrates dx/dt = v(x, t[, c]) from t = 0 (latent) to t = 1 (data); the
layer hands the solver a field that casts the network's output to the flow's dtype (`in_flow_dtype`: under a mixed
policy the MLP computes in float16/bfloat16, the ODE and its log-determinant in float32). `velocity(x, t, c)` is
the same field for flow-matching training, which never calls the solver.
"""

from keras_models.core.bijector_layer import BijectorLayer
from keras_models.core.precision import in_flow_dtype
from keras_models.layers.networks.velocity import VelocityField
from tfp_flows.continuous_flow import TRACES, ContinuousFlow
from tfp_flows.validation import check_int, check_number, check_one_of


class ContinuousFlowLayer(BijectorLayer):
    """One continuous flow step: a `VelocityField` and the solver settings of its `ContinuousFlow`.

    Args:
      velocity_field: the `VelocityField` (its `context_shape` makes the step conditional).
      trace: "exact" or "hutchinson" (`tfp_flows.continuous_flow`).
      num_probes, probe_seed: Hutchinson's probes per solve and their fixed seed.
      rtol, atol: DormandPrince's tolerances.
      max_num_steps: the solver's step budget (None: no limit).
    """

    def __init__(
        self,
        velocity_field: VelocityField,
        trace="exact",
        num_probes=1,
        probe_seed=0,
        rtol=1e-5,
        atol=1e-5,
        max_num_steps=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.velocity_field = velocity_field
        self.context_shape = velocity_field.context_shape
        self.trace = check_one_of(trace, "trace", TRACES, owner="ContinuousFlowLayer")
        self.num_probes = check_int(num_probes, "num_probes", owner="ContinuousFlowLayer")
        self.probe_seed = int(probe_seed)
        self.rtol = check_number(rtol, "rtol", minimum=0, strict=True, owner="ContinuousFlowLayer")
        self.atol = check_number(atol, "atol", minimum=0, strict=True, owner="ContinuousFlowLayer")
        self.max_num_steps = check_int(max_num_steps, "max_num_steps", allow_none=True, owner="ContinuousFlowLayer")

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] != self.velocity_field.event_size:
            raise ValueError(
                f"{self.name}: expected vector events of size {self.velocity_field.event_size}; received input "
                f"shape {tuple(input_shape)}"
            )
        self.velocity_field.build()
        self.built = True

    def velocity(self, x, t, c=None):
        """v(x, t[, c]) in the flow's dtype; t a scalar or one time per example."""
        return in_flow_dtype(self.velocity_field(x, t, c), self.variable_dtype)

    def bijector(self):
        if self.context_shape is None:

            def velocity_fn(t, x):
                return self.velocity(x, t)

        else:

            def velocity_fn(t, x, conditional_input=None):
                return self.velocity(x, t, conditional_input)

        return ContinuousFlow(
            velocity_fn,
            trace=self.trace,
            num_probes=self.num_probes,
            probe_seed=self.probe_seed,
            rtol=self.rtol,
            atol=self.atol,
            max_num_steps=self.max_num_steps,
            conditional=self.context_shape is not None,
            dtype=self.variable_dtype,
            name=self.name,
        )
