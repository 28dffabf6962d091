"""The shared mechanics of the masked couplings (tfp_flows/coupling.py): the slicing and
multiplicative mask paths agree, trailing parameter axes, one conditioner pass per log_prob, shape errors.

The block-conditioner protocol of the couplings (`block_split`, tfp_flows/coupling.py): a conditioner that
declares its mask's split gets the pass-through block and returns the transformed block's parameters; the
result is identical to the full-shape contract (`fn(x * mask)` -> full-shape parameters), which plain callables
keep; mismatched declarations are refused; the Keras coupling layers use the block path and compute exactly
what the full-width path computes (to rounding), with and without XLA.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases.couplings import BlockConditioner, ConvConditioner, DenseConditioner, ShiftOnly
from coupling_support import assert_same_bijection, forced_multiplicative, fresh, normal

import keras_models
from keras_models.layers import AdditiveCouplingLayer, AffineCouplingLayer, MaskedConditioner, MixtureCouplingLayer, mlp
from tfp_flows import AdditiveCoupling, AffineCoupling, LogisticMixtureCoupling, coupling, masks

# --- The slicing and the multiplicative mask paths -----------------------------------------------------------


def test_half_and_channel_masks_take_the_slicing_path_and_checkerboard_does_not():
    assert coupling.last_axis_split(masks.half(6)) == (3, True)
    assert coupling.last_axis_split(masks.half(7, parity=1)) == (3, False)
    assert coupling.last_axis_split(masks.channel(2, 3, 4, parity=1)) == (2, False)
    assert coupling.last_axis_split(masks.checkerboard(2, 2, 4)) is None


@pytest.mark.parametrize(
    "mask,shape,make_conditioner",
    [
        (masks.half(6), (4, 6), lambda: DenseConditioner(6, 2, tf.float32, seed=17)),
        (masks.half(5, parity=1), (4, 5), lambda: DenseConditioner(5, 2, tf.float32, seed=18)),
        (masks.channel(2, 2, 4, parity=1), (3, 2, 2, 4), lambda: ConvConditioner(4, 2, tf.float32, seed=19)),
    ],
    ids=["half", "half-odd-parity1", "channel-parity1"],
)
@pytest.mark.parametrize("bound", ["tanh", "sigmoid", None])
def test_slicing_and_multiplicative_paths_agree(monkeypatch, mask, shape, make_conditioner, bound):
    conditioner = make_conditioner()
    sliced = AffineCoupling(mask, conditioner, log_scale_bound=bound)
    multiplied = forced_multiplicative(monkeypatch, lambda: AffineCoupling(mask, conditioner, log_scale_bound=bound))
    assert sliced._split is not None and multiplied._split is None  # the two paths really differ
    assert_same_bijection(multiplied, sliced, normal(shape, 20), event_ndims=len(mask.shape), rtol=1e-6, atol=1e-6)


def test_additive_slicing_and_multiplicative_paths_agree(monkeypatch):
    shift_fn = ShiftOnly(ConvConditioner(4, 1, tf.float32, seed=21))
    mask = masks.channel(2, 2, 4)
    sliced = AdditiveCoupling(mask, shift_fn)
    multiplied = forced_multiplicative(monkeypatch, lambda: AdditiveCoupling(mask, shift_fn))
    assert_same_bijection(multiplied, sliced, normal((2, 2, 2, 4), 22), event_ndims=3, rtol=1e-6, atol=1e-6)


class ComponentShiftCoupling(coupling.MaskedCoupling):
    """A test coupling whose parameter has a trailing component axis (as the mixture coupling's do):
    y = x + sum_k shift[..., k] * (k + 1) on the transformed entries."""

    def __init__(self, mask, num_components=3):
        self._num_components = num_components
        super().__init__(mask=mask, validate_args=False, parameters=dict(mask=mask), name="component_shift")

    def _conditioner_params(self, x_masked, conditional_input=None):
        k = tf.range(1, self._num_components + 1, dtype=x_masked.dtype)
        return (tf.math.sin(x_masked[..., tf.newaxis] * k + tf.reduce_sum(x_masked, -1, keepdims=True)[..., None]),)

    def _transform(self, x, params):
        k = tf.range(1, self._num_components + 1, dtype=x.dtype)
        return x + tf.reduce_sum(params[0] * k, axis=-1), tf.zeros_like(x)

    def _untransform(self, y, params):
        k = tf.range(1, self._num_components + 1, dtype=y.dtype)
        return y - tf.reduce_sum(params[0] * k, axis=-1), tf.zeros_like(y)


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)], ids=["unbatched", "batch3", "batch2x3"])
@pytest.mark.parametrize("parity", [0, 1])
def test_parameters_with_trailing_axes_are_sliced_on_the_event_axis(monkeypatch, shape, parity):
    mask = masks.half(5, parity)
    sliced = ComponentShiftCoupling(mask)
    multiplied = forced_multiplicative(monkeypatch, lambda: ComponentShiftCoupling(mask))
    assert sliced._split is not None
    x = normal(shape, 24)
    assert_same_bijection(multiplied, sliced, x, event_ndims=1, rtol=1e-6, atol=1e-6)
    y = sliced.forward(fresh(x)).numpy()
    np.testing.assert_array_equal(y[..., mask == 1], x[..., mask == 1])
    assert np.all(np.abs(y[..., mask == 0] - x[..., mask == 0]) > 0)


# --- The conditioner is run once per log_prob ----------------------------------------------------------------


def test_log_prob_runs_the_conditioner_once():
    calls = []
    conditioner = DenseConditioner(4, 2, tf.float32, seed=27)

    def counting(x):
        calls.append(1)
        return conditioner(x)

    flow = tfp.distributions.TransformedDistribution(
        tfp.distributions.MultivariateNormalDiag(tf.zeros(4)), AffineCoupling(masks.half(4), counting)
    )
    log_prob = flow.log_prob(fresh(normal((3, 4), 28)))
    assert np.all(np.isfinite(log_prob))
    assert len(calls) == 1


# --- Errors that name the argument ----------------------------------------------------------------------------


def test_coupling_rejects_input_of_the_wrong_event_shape():
    bijector = AffineCoupling(masks.half(4), lambda x: (x, x))
    with pytest.raises(ValueError, match="`x`.*event shape \\[4\\]"):
        bijector.forward(tf.zeros([2, 5]))
    with pytest.raises(ValueError, match="`y`"):
        bijector.inverse(tf.zeros([2, 3]))


def test_coupling_rejects_conditioner_output_of_the_wrong_shape():
    bijector = AffineCoupling(masks.half(4), lambda x: (x[..., :1], x))
    with pytest.raises(ValueError, match="conditioner output 0"):
        bijector.forward(tf.zeros([2, 4]))
    with pytest.raises(ValueError, match="pair"):
        AffineCoupling(masks.half(4), lambda x: x).forward(tf.zeros([2, 4]))


def test_coupling_validate_args_rejects_non_finite_conditioner_output():
    bijector = AffineCoupling(masks.half(4), lambda x: (x, x / 0.0), validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="shift_and_log_scale_fn"):
        bijector.forward(tf.ones([1, 4]))


class Recording:
    """Wraps a conditioner, records the shapes it is called with, and declares `block_split` (or not)."""

    def __init__(self, fn, block_split=None):
        self.fn, self.block_split, self.shapes = fn, block_split, []

    def __call__(self, x):
        self.shapes.append(x.shape.as_list())
        return self.fn(x)


class FullShape:
    """The full-shape contract around a block conditioner: slice the pass-through block out of x * mask, pad the
    parameters with zeros on it (no `block_split`, so the coupling takes its full-width path)."""

    def __init__(self, block_fn, mask):
        self.block_fn = block_fn
        self.index, self.pass_first = coupling.last_axis_split(mask)

    def __call__(self, x_masked):
        x_pass = x_masked[..., : self.index] if self.pass_first else x_masked[..., self.index :]
        num_pass = x_pass.shape[-1]  # zeros to pad on the last event axis
        outputs = self.block_fn(x_pass)
        single = not isinstance(outputs, (tuple, list))
        padded = []
        for p in (outputs,) if single else outputs:
            paddings = [[0, 0]] * p.shape.rank
            axis = x_masked.shape.rank - 1  # the last event axis; any parameter axes follow it
            paddings[axis] = [num_pass, 0] if self.pass_first else [0, num_pass]
            padded.append(tf.pad(p, paddings))
        return padded[0] if single else tuple(padded)


def assert_identical(a, b, x, event_ndims):
    """Forward, inverse and both log-dets bitwise equal, on fresh tensors."""
    y = a.forward(fresh(x)).numpy()
    np.testing.assert_array_equal(b.forward(fresh(x)), y, err_msg="forward")
    np.testing.assert_array_equal(a.inverse(fresh(y)), b.inverse(fresh(y)), err_msg="inverse")
    np.testing.assert_array_equal(
        a.forward_log_det_jacobian(fresh(x), event_ndims),
        b.forward_log_det_jacobian(fresh(x), event_ndims),
        err_msg="fldj",
    )
    np.testing.assert_array_equal(
        a.inverse_log_det_jacobian(fresh(y), event_ndims),
        b.inverse_log_det_jacobian(fresh(y), event_ndims),
        err_msg="ildj",
    )


MASKS = {
    "half": masks.half(6),
    "half-odd-parity1": masks.half(7, parity=1),
    "channel": masks.channel(2, 2, 3),
    "channel-parity1": masks.channel(2, 2, 4, parity=1),
}


def _batch_shape(mask):
    return (3,) + mask.shape


@pytest.mark.parametrize("mask_id", sorted(MASKS))
@pytest.mark.parametrize("bound", ["tanh", "sigmoid", None])
def test_affine_block_conditioner_gets_blocks_and_matches_the_full_shape_contract(mask_id, bound):
    mask = MASKS[mask_id]
    network = BlockConditioner(mask, 2, tf.float32, seed=1)
    block = Recording(network, network.block_split)
    full = Recording(FullShape(network, mask))
    ours = AffineCoupling(mask, block, log_scale_bound=bound)
    plain = AffineCoupling(mask, full, log_scale_bound=bound)
    assert ours._block_conditioner and not plain._block_conditioner
    x = normal(_batch_shape(mask), 2)
    assert_identical(ours, plain, x, event_ndims=mask.ndim)
    num_pass = int(mask.reshape(-1, mask.shape[-1])[0].sum())
    assert {tuple(s[1:]) for s in block.shapes} == {mask.shape[:-1] + (num_pass,)}  # the pass-through block
    assert {tuple(s[1:]) for s in full.shapes} == {mask.shape}  # the documented contract: x * mask


@pytest.mark.parametrize("mask_id", ["half-odd-parity1", "channel"])
def test_additive_block_conditioner_matches_the_full_shape_contract(mask_id):
    mask = MASKS[mask_id]
    network = BlockConditioner(mask, 1, tf.float32, seed=3)
    block = Recording(lambda x: network(x)[0], network.block_split)
    ours = AdditiveCoupling(mask, block)
    plain = AdditiveCoupling(mask, FullShape(lambda x: network(x)[0], mask))
    assert ours._block_conditioner and not plain._block_conditioner
    assert_identical(ours, plain, normal(_batch_shape(mask), 4), event_ndims=mask.ndim)
    assert block.shapes and all(s[-1] < mask.shape[-1] for s in block.shapes)


def test_mixture_block_conditioner_with_trailing_axes_matches_the_full_shape_contract():
    mask, k = masks.half(5, parity=1), 3
    network = BlockConditioner(mask, 2 + 3 * k, tf.float32, seed=5)

    def params(x_pass):  # (a, b, logits, locs, log_scales) of the transformed block, components last
        out = network(x_pass)
        stack = lambda pieces: tf.stack(pieces, axis=-1)  # noqa: E731
        return out[0], out[1], stack(out[2 : 2 + k]), stack(out[2 + k : 2 + 2 * k]), stack(out[2 + 2 * k :])

    ours = LogisticMixtureCoupling(mask, Recording(params, network.block_split), k)
    plain = LogisticMixtureCoupling(mask, FullShape(params, mask), k)
    assert ours._block_conditioner
    x = normal((4, 5), 6)
    np.testing.assert_array_equal(ours.inverse(fresh(x)), plain.inverse(fresh(x)))
    np.testing.assert_array_equal(
        ours.inverse_log_det_jacobian(fresh(x), 1), plain.inverse_log_det_jacobian(fresh(x), 1)
    )
    np.testing.assert_array_equal(ours.forward(fresh(x)), plain.forward(fresh(x)))


def test_plain_callables_and_checkerboard_masks_keep_the_full_shape_contract():
    seen = Recording(lambda h: (tf.reverse(h, axis=[-1]), tf.zeros_like(h)))
    y = AffineCoupling(masks.half(4), seen).forward(tf.constant([[1.0, 2.0, 3.0, 4.0]])).numpy()
    np.testing.assert_array_equal(y, [[1.0, 2.0, 5.0, 5.0]])  # the documented example
    assert seen.shapes == [[1, 4]]
    explicit_none = Recording(seen.fn, block_split=None)
    AffineCoupling(masks.checkerboard(2, 2, 2), explicit_none).forward(tf.ones([1, 2, 2, 2]))
    assert explicit_none.shapes == [[1, 2, 2, 2]]


@pytest.mark.parametrize(
    "mask,declared,message",
    [
        (masks.half(6), (3, False), r"declares block_split \(3, False\) but the mask has block_split \(3, True\)"),
        (masks.half(6), (2, True), r"declares block_split \(2, True\)"),
        (masks.checkerboard(2, 2, 2), (1, True), "is not two contiguous blocks"),
        (masks.half(6), "yes", "`block_split` must be None or"),
        (masks.half(6), (3,), "`block_split` must be None or"),
    ],
)
def test_a_block_split_other_than_the_masks_is_refused(mask, declared, message):
    fn = Recording(lambda h: (h, h), block_split=declared)
    with pytest.raises(ValueError, match=message):
        AffineCoupling(mask, fn)
    with pytest.raises(ValueError, match=message):
        AdditiveCoupling(mask, Recording(lambda h: h, block_split=declared))


def test_block_parameters_of_the_wrong_shape_name_the_output():
    mask = masks.half(6)
    full_width = Recording(lambda h: (tf.zeros([2, 6]), tf.zeros([2, 6])), coupling.last_axis_split(mask))
    with pytest.raises(ValueError, match=r"conditioner output 0 must have the event shape \[3\]"):
        AffineCoupling(mask, full_width).forward(tf.zeros([2, 6]))


# --- Keras layers and models ----------------------------------------------------------------------------------


def test_masked_conditioner_takes_both_forms_and_agrees_on_the_transformed_entries():
    mask = masks.half(5)  # pass-through: the first 2 entries; transformed: the last 3
    conditioner = MaskedConditioner(None, mask, ((), (4,)))
    conditioner.network = mlp((8,), conditioner.network_output_channels)
    conditioner.build()
    for w in conditioner.network.weights:
        w.assign(normal(w.shape, 7))
    assert conditioner.block_split == (2, True)
    x = normal((2, 3, 5), 8)  # two batch axes
    full = conditioner(fresh(x * mask))
    block = conditioner(fresh(x[..., :2]))
    assert [p.shape.as_list() for p in full] == [[2, 3, 5], [2, 3, 5, 4]]
    assert [p.shape.as_list() for p in block] == [[2, 3, 3], [2, 3, 3, 4]]
    for f, b in zip(full, block):
        np.testing.assert_array_equal(f.numpy()[:, :, 2:], b)
        np.testing.assert_array_equal(f.numpy()[:, :, :2], 0.0)  # zeros on the pass-through entries


@pytest.mark.parametrize(
    "mask,declared",
    [
        (masks.half(6), (3, True)),
        (masks.half(6, parity=1), (3, False)),
        (masks.half(7), (3, True)),
        (masks.channel(2, 2, 4, parity=1), (2, False)),
        (masks.checkerboard(2, 2, 2), None),
        (masks.half(7, parity=1), (3, False)),
        (masks.channel(2, 2, 3, parity=1), (1, False)),
    ],
)
def test_masked_conditioner_declares_blocks_for_half_and_channel_masks(mask, declared):
    assert MaskedConditioner(None, mask).block_split == declared


@pytest.mark.parametrize("parity", [0, 1])
@pytest.mark.parametrize("size", [6, 7])
def test_masked_conditioner_network_sees_every_pass_through_entry_and_feeds_every_transformed_one(size, parity):
    """The parameters of the transformed entries depend on all pass-through entries and on nothing else, for
    odd sizes too, where the two blocks differ in size and either may come first."""
    mask = masks.half(size, parity=parity)
    conditioner = MaskedConditioner(None, mask, ((), ()))
    conditioner.network = mlp((16,), conditioner.network_output_channels)
    conditioner.build()
    for w in conditioner.network.weights:
        w.assign(normal(w.shape, 11))
    assert conditioner.pass_channels == int(mask.sum()) and conditioner.trans_channels == int((mask == 0).sum())
    x = tf.constant(normal((3, size), 12))
    with tf.GradientTape() as tape:
        tape.watch(x)
        params = tf.concat(conditioner(x * mask), axis=-1)  # [3, 2 * size]: shift then log-scale
    jacobian = tape.batch_jacobian(params, x).numpy()
    passes, transformed = mask == 1, mask == 0
    rows = np.concatenate([transformed, transformed])
    assert np.all(np.abs(jacobian[:, rows][:, :, passes]).max(axis=(0, 1)) > 0)  # every pass-through entry used
    np.testing.assert_array_equal(jacobian[:, :, transformed], 0.0)  # never the transformed entries themselves
    np.testing.assert_array_equal(jacobian[:, ~rows], 0.0)  # zeros on the pass-through entries' parameters


BLOCK_PATH_MODELS = {
    "RealNVP": (lambda: keras_models.RealNVP(event_shape=(7,), num_couplings=3, hidden_units=(8,)), (4, 7)),
    "RealNVP-image": (
        lambda: keras_models.RealNVP(event_shape=(4, 4, 2), width=4, num_blocks=1, num_scales=2),
        (2, 4, 4, 2),
    ),
    "NICE": (lambda: keras_models.NICE(event_shape=(6,), num_couplings=2, hidden_units=(8,)), (4, 6)),
    "Glow": (
        lambda: keras_models.Glow(event_shape=(8, 8, 3), num_levels=2, num_steps=1, hidden_channels=4),
        (2, 8, 8, 3),
    ),
    "FlowPlusPlus": (
        lambda: keras_models.FlowPlusPlus(event_shape=(6,), num_components=2, num_couplings=2, hidden_channels=8),
        (4, 6),
    ),
}


# Every model in a graph; under XLA one model: XLA compiles every preset's block path in the model checklist's
# trains check, and the kit compares block-path couplings eager against XLA (tests/bijector_cases).
@pytest.mark.parametrize(
    "model_name, xla",
    [(name, False) for name in BLOCK_PATH_MODELS] + [("RealNVP", True)],
    ids=[f"{name}-graph" for name in BLOCK_PATH_MODELS] + ["RealNVP-xla"],
)
@pytest.mark.slow_params("RealNVP-graph", "RealNVP-image-graph", "Glow-graph", "FlowPlusPlus-graph", "RealNVP-xla")
def test_models_use_the_block_path_and_compute_exactly_what_the_full_width_path_does(monkeypatch, model_name, xla):
    make, shape = BLOCK_PATH_MODELS[model_name]
    model = make()
    x = tf.constant(np.random.default_rng(9).uniform(0.05, 0.95, size=shape).astype(np.float32))
    model(x[:1])
    rng = np.random.default_rng(10)
    for w in model.trainable_weights:  # off the identity, so every coupling matters
        w.assign(w + 0.1 * rng.normal(size=w.shape).astype(np.float32))
    layers = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, (AffineCouplingLayer, AdditiveCouplingLayer, MixtureCouplingLayer))
    ]
    # Half and channel masks take the block path; checkerboard masks (RealNVP images) keep the full width.
    splits = [layer.conditioner.block_split is not None for layer in layers]
    assert any(splits) and [layer.bijector()._block_conditioner for layer in layers] == splits

    def outputs():
        log_prob = tf.function(model.log_prob, jit_compile=xla)(x)
        sample = tf.function(lambda: model.sample(3, seed=1), jit_compile=xla)()
        return log_prob.numpy(), sample.numpy()

    blocks = outputs()
    # Without the declaration the coupling builds x * mask at full width and slices padded parameters back: the
    # code path before the block protocol, and still the one of plain callables.
    monkeypatch.setattr(MaskedConditioner, "block_split", property(lambda self: None))
    assert not any(layer.bijector()._block_conditioner for layer in layers)
    full_width = outputs()
    assert np.all(np.isfinite(blocks[0]))
    # Same arithmetic, but two different graphs, which TensorFlow's graph optimizer and oneDNN may fuse and order
    # differently: an ulp or so apart, and not on every run (seen under load: 6e-8 relative, Flow++ log_prob).
    np.testing.assert_allclose(blocks[0], full_width[0], rtol=1e-6, atol=0, err_msg="log_prob")
    # Flow++ samples come from a root solve that stops within its position tolerance (~1e-6, eps^(7/8) in
    # float32), so an ulp upstream can move where it stops (seen: 1.6e-7); a wrong block path errs by O(0.1).
    np.testing.assert_allclose(blocks[1], full_width[1], rtol=1e-6, atol=1e-5, err_msg="sample")
