"""Bad input is answered clearly: one table of (call, exception type, message pattern).

Every pattern names the argument and says what was expected and what was received (or which values broke the
rule). Static problems raise ValueError/TypeError at once; value checks inside TFP bijectors under
`validate_args=True` raise `tf.errors.InvalidArgumentError` (TFP's convention for run-time assertions) with a
message that names the argument.
"""

import functools
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_cases import CASES as MODEL_CASES

import tfp_flows
from keras_models import NICE, FlowModel, FlowPlusPlus, Glow, RealNVP
from keras_models.core import NonFiniteInputError, OutOfSupportError, check_finite_batches
from keras_models.flows.dequantization import VariationalDequantizer
from keras_models.flows.presets import PRESETS, preset_class
from keras_models.train import run
from tfp_flows.datasets import dataset_info, make_dataset

InvalidArgument = tf.errors.InvalidArgumentError
NAN, INF = float("nan"), float("inf")


@functools.cache
def model():
    """A tiny compiled 2-D RealNVP shared by the cases (none of them changes it)."""
    flow = RealNVP((2,), num_couplings=2, hidden_units=(4,))
    flow.compile(optimizer="adam")
    return flow


@functools.cache
def unit_model():
    """A tiny compiled model of 8-bit data scaled to [0, 1] (num_bits=8): its support is [0, 1]."""
    flow = NICE((2,), num_couplings=2, hidden_units=(4,), num_bits=8)
    flow.compile(optimizer="adam")
    return flow


@functools.cache
def dequantizer():
    layer = VariationalDequantizer(num_couplings=1, hidden_channels=4)
    layer.build((None, 2, 2, 1))
    return layer


@functools.cache
def conditional_model():
    """A tiny compiled conditional 2-D RealNVP, p(x | c) with c of shape [3]."""
    flow = RealNVP((2,), num_couplings=2, hidden_units=(4,), context_shape=(3,))
    flow.compile(optimizer="adam")
    return flow


def contexts(n, size=3, dtype=np.float32):
    return np.zeros([n, size], dtype)


def _conditional_made():
    from keras_models.layers.networks import MADE

    made = MADE(2, (4,), context_shape=(3,))
    made.build((None, 2))
    return made


def points(*rows):
    return np.array(rows, dtype=np.float32)


def fit(x, **kwargs):
    return model().fit(x, epochs=1, verbose=0, **kwargs)


def fit_unit(x, **kwargs):
    return unit_model().fit(x, epochs=1, verbose=0, **kwargs)


def read_all(dataset):
    return list(dataset.as_numpy_iterator())


def dataset(*batches):
    return tf.data.Dataset.from_tensor_slices(np.concatenate(batches).astype(np.float32)).batch(2)


def coupling(mask):
    return tfp_flows.AffineCoupling(np.array(mask, np.float32), lambda x: (tf.zeros_like(x), tf.zeros_like(x)))


def conv1x1(permutation, validate_args=True):
    return tfp_flows.InvertibleConv1x1(tf.eye(3), tf.constant(permutation), validate_args=validate_args)


def exported_model_dir(tmp, name="flow"):
    """A model folder that already holds version 1 (an empty folder is enough to count as a version)."""
    os.makedirs(tmp / "exports" / name / "1")
    return str(tmp / "exports")


def corrupt_saved_model(tmp):
    path = tmp / "broken" / "1"
    os.makedirs(path)
    (path / "saved_model.pb").write_bytes(b"this is not a protocol buffer")
    return str(path)


def nan_weights_model():
    flow = RealNVP((2,), num_couplings=2, hidden_units=(4,), name="poisoned")
    flow.trainable_weights[0].assign(np.full(flow.trainable_weights[0].shape, np.nan, np.float32))
    return flow


def load_serving_model(path):
    from keras_models.serving.export import load_serving_model as load

    return load(path)


def export_saved_model(*args, **kwargs):
    from keras_models.serving.export import export_saved_model as export

    return export(*args, **kwargs)


# (id, call(tmp_path), exception type, regex the message must match)
CASES = [
    # Conditional models p(x | c): the context is named `c`, with the expected shape.
    (
        "conditional_log_prob_without_c",
        lambda tmp: conditional_model().log_prob(points([0.0, 1.0])),
        ValueError,
        r"`c` is required: this model is conditional \(context_shape=\(3,\)\) and needs a context of shape "
        r"\[batch, 3\]; received None",
    ),
    (
        "conditional_log_prob_c_wrong_shape",
        lambda tmp: conditional_model().log_prob(points([0.0, 1.0]), contexts(1, 2)),
        ValueError,
        r"`c` must have shape \[batch, 3\] \(event shape \(3,\)\); received shape \[1, 2\]",
    ),
    (
        "conditional_log_prob_c_wrong_batch",
        lambda tmp: conditional_model().log_prob(points([0.0, 1.0]), contexts(4)),
        ValueError,
        r"`c` must have shape \[batch, 3\] with the data's batch shape \[1\]; received shape \[4, 3\]",
    ),
    (
        "conditional_log_prob_c_integer",
        lambda tmp: conditional_model().log_prob(points([0.0, 1.0]), contexts(1, dtype=np.int32)),
        TypeError,
        r"`c` must be floating point.*received dtype int32",
    ),
    (
        "conditional_log_prob_c_nan",
        lambda tmp: conditional_model().log_prob(points([0.0, 1.0]), np.full([1, 3], NAN)),
        NonFiniteInputError,
        r"`c` holds NaN or infinity.*at batch index\(es\) \[0\]",
    ),
    (
        "conditional_sample_c_wrong_batch",
        lambda tmp: conditional_model().sample(5, contexts(4)),
        ValueError,
        r"`c` must have shape \[5, 3\]: one context per sample \(num_samples=5\); received shape \[4, 3\]",
    ),
    (
        "conditional_sample_without_c",
        lambda tmp: conditional_model().sample(5),
        ValueError,
        r"`c` is required: this model is conditional",
    ),
    (
        "conditional_encode_without_c",
        lambda tmp: conditional_model().encode(points([0.0, 1.0])),
        ValueError,
        r"`c` is required",
    ),
    (
        "conditional_decode_c_wrong_shape",
        lambda tmp: conditional_model().decode(points([0.0, 1.0]), contexts(1, 4)),
        ValueError,
        r"`c` must have shape \[batch, 3\].*received shape \[1, 4\]",
    ),
    (
        "conditional_fit_on_x_alone",
        lambda tmp: conditional_model().fit(
            tf.data.Dataset.from_tensor_slices(points([0.0, 1.0], [1.0, 0.0])).batch(2), verbose=0
        ),
        ValueError,
        r"this model is conditional \(context_shape=\(3,\)\): `x` must be a dataset of \(x, c\) pairs",
    ),
    (
        "preset_without_a_conditional_form",
        lambda tmp: NICE((2,), num_couplings=2, hidden_units=(4,), context_shape=(3,)),
        ValueError,
        r"NICE: `context_shape` was given but none of its steps reads a context",
    ),
    (
        "unconditional_log_prob_given_c",
        lambda tmp: model().log_prob(points([0.0, 1.0]), contexts(1)),
        ValueError,
        r"`c` was given but this model is unconditional \(built without `context_shape`\); expected c=None",
    ),
    (
        "unconditional_sample_given_c",
        lambda tmp: model().sample(2, contexts(2)),
        ValueError,
        r"`c` was given but this model is unconditional",
    ),
    (
        "conditioner_without_context_given_one",
        lambda tmp: model().bijector.forward(
            points([0.0, 1.0]), **tfp_flows.conditional_kwargs(conditional_model().bijector, contexts(1))
        ),
        ValueError,
        r"received `conditional_input` but this network was built without `context_shape`",
    ),
    (
        "conditional_conditioner_without_context",
        lambda tmp: conditional_model().bijector.forward(points([0.0, 1.0])),
        ValueError,
        r"needs `conditional_input` of shape \[batch, 3\]; received None",
    ),
    (
        "conditional_made_context_wrong_shape",
        lambda tmp: _conditional_made()(points([0.0, 1.0]), conditional_input=contexts(1, 2)),
        ValueError,
        r"`conditional_input` must have shape \[batch, 3\] with the input's batch shape \[1\].*received shape \[1, 2\]",
    ),
    # FlowModel entry points: shape, rank, dtype.
    (
        "log_prob_wrong_event_shape",
        lambda tmp: model().log_prob(np.zeros([4, 3], np.float32)),
        ValueError,
        r"`x` must have shape \[batch, 2\] \(event shape \(2,\)\); received shape \[4, 3\]",
    ),
    (
        "log_prob_wrong_rank",
        lambda tmp: model().log_prob(np.zeros([2], np.float32)),
        ValueError,
        r"`x` must have shape \[batch, 2\].*received shape \[2\]",
    ),
    (
        "log_prob_integer_dtype",
        lambda tmp: model().log_prob(np.zeros([3, 2], np.int32)),
        TypeError,
        r"`x` must be floating point.*received dtype int32",
    ),
    (
        "log_prob_not_a_tensor",
        lambda tmp: model().log_prob({"x": 1}),
        TypeError,
        r"`x` must be a float tensor or array of shape \[batch, 2\]; received dict",
    ),
    (
        "encode_wrong_event_shape",
        lambda tmp: model().encode(np.zeros([4, 5], np.float32)),
        ValueError,
        r"`x` must have shape \[batch, 2\].*received shape \[4, 5\]",
    ),
    (
        "decode_wrong_latent_shape",
        lambda tmp: model().decode(np.zeros([4, 1], np.float32)),
        ValueError,
        r"`z` must have shape \[batch, 2\].*received shape \[4, 1\]",
    ),
    (
        "decode_integer_dtype",
        lambda tmp: model().decode(np.zeros([4, 2], np.int64)),
        TypeError,
        r"`z` must be floating point.*received dtype int64",
    ),
    # Non-finite data (nan_policy="raise", the default).
    (
        "log_prob_nan",
        lambda tmp: model().log_prob(points([0.0, 1.0], [NAN, 0.0])),
        NonFiniteInputError,
        r"`x` holds NaN or infinity; expected finite values.*received 1 such example\(s\), at batch index\(es\) \[1\]",
    ),
    (
        "log_prob_inf",
        lambda tmp: model().log_prob(points([INF, 1.0], [0.0, -INF])),
        ValueError,
        r"`x` holds NaN or infinity; expected finite values.*received 2 such example\(s\)",
    ),
    (
        "encode_nan",
        lambda tmp: model().encode(points([NAN, NAN])),
        ValueError,
        r"`x` holds NaN or infinity; expected finite values",
    ),
    (
        "decode_inf",
        lambda tmp: model().decode(points([INF, 0.0])),
        ValueError,
        r"`z` holds NaN or infinity; expected finite values",
    ),
    (
        "fit_array_with_nan",
        lambda tmp: fit(points([0.0, 1.0], [NAN, 2.0])),
        NonFiniteInputError,
        r"`x` \(an array\) holds NaN or infinity; expected finite values \(nan_policy='raise'",
    ),
    (
        "fit_dataset_nan_in_a_later_batch",
        lambda tmp: fit(dataset(np.ones([4, 2]), points([0.0, INF], [1.0, 1.0]))),
        NonFiniteInputError,
        r"`x` \(a batch read from the dataset\) holds NaN or infinity; expected finite values",
    ),
    (
        "fit_validation_data_with_nan",
        lambda tmp: fit(dataset(np.ones([4, 2])), validation_data=dataset(points([NAN, 0.0], [1.0, 1.0]))),
        NonFiniteInputError,
        r"`validation_data` \(a batch read from the dataset\) holds NaN or infinity",
    ),
    (
        "evaluate_dataset_with_nan",
        lambda tmp: model().evaluate(dataset(points([NAN, 0.0], [1.0, 1.0])), verbose=0),
        NonFiniteInputError,
        r"`x` \(a batch read from the dataset\) holds NaN or infinity",
    ),
    # Data outside the model's support (nan_policy="raise"): image presets and b-bit data take [0, 1].
    (
        "log_prob_outside_the_support",
        lambda tmp: unit_model().log_prob(points([0.5, 0.5], [-0.5, 0.5], [0.0, 1.25])),
        OutOfSupportError,
        r"`x` holds values outside the model's support \[0, 1\]; received values in \[-0.5, 1.25\], in 2 example\(s\), "
        r"at batch index\(es\) \[1, 2\]; expected data on the \[0, 1\] scale, as make_dataset gives "
        r"\(\(pixel \+ u\) / 256\)",
    ),
    (
        "call_outside_the_support",
        lambda tmp: unit_model()(points([2.0, 0.5])),
        OutOfSupportError,
        r"`x` holds values outside the model's support \[0, 1\]; received values in \[0.5, 2\]",
    ),
    (
        "fit_array_outside_the_support",
        lambda tmp: fit_unit(points([0.5, 0.5], [0.5, -3.0])),
        OutOfSupportError,
        r"`x` \(an array\) holds values outside the model's support \[0, 1\]; received values in \[-3, 0.5\], in 1 "
        r"example\(s\), at batch index\(es\) \[1\]",
    ),
    (
        "fit_dataset_outside_the_support_in_a_later_batch",
        lambda tmp: fit_unit(dataset(np.full([4, 2], 0.5), points([-0.5, 0.5], [0.25, 0.5]))),
        OutOfSupportError,
        r"`x` \(a batch read from the dataset\) holds values outside the model's support \[0, 1\]; received values in "
        r"\[-0.5, 0.5\]; expected data on the \[0, 1\] scale.*pass nan_policy='omit' to leave such examples out",
    ),
    (
        "fit_validation_data_outside_the_support",
        lambda tmp: fit_unit(dataset(np.full([2, 2], 0.5)), validation_data=dataset(points([1.5, 0.5], [0.5, 0.5]))),
        OutOfSupportError,
        r"`validation_data` \(a batch read from the dataset\) holds values outside the model's "
        r"support \[0, 1\]; received values in \[0.5, 1.5\]",
    ),
    (
        "evaluate_dataset_outside_the_support",
        lambda tmp: unit_model().evaluate(dataset(points([0.5, 0.5], [0.5, -0.25])), verbose=0),
        OutOfSupportError,
        r"`x` \(a batch read from the dataset\) holds values outside the model's support \[0, 1\]",
    ),
    (
        "pipeline_check_outside_the_support",
        lambda tmp: read_all(check_finite_batches(dataset(points([0.5, 2.0], [0.5, 0.5])), "x", support=(0.0, 1.0))),
        InvalidArgument,
        r"`x` \(a batch read from the dataset\) holds values outside the model\\?'s support \[0, 1\]; "
        r"received values in \[0.5, 2\]",
    ),
    (
        "dequantizer_data_outside_the_unit_interval",
        lambda tmp: dequantizer().sample_and_log_prob(np.full([1, 2, 2, 1], -0.5, np.float32), seed=0),
        OutOfSupportError,
        r"VariationalDequantizer: `x` must lie in \[0, 1\] \(discrete data pixel / 2\^b\); received "
        r"values in \[-0.5, -0.5\]",
    ),
    (
        "dequantizer_noise_outside_the_unit_interval",
        lambda tmp: dequantizer().log_prob(np.full([1, 2, 2, 1], 1.5, np.float32), np.zeros([1, 2, 2, 1], np.float32)),
        OutOfSupportError,
        r"VariationalDequantizer: `u` must lie in \[0, 1\] \(dequantization noise\); received values "
        r"in \[1.5, 1.5\]",
    ),
    (
        "fit_dictionaries",
        lambda tmp: FlowModelWithActNorm().fit(
            tf.data.Dataset.from_tensor_slices({"x": np.ones([4, 2], np.float32)}).batch(2), verbose=0
        ),
        TypeError,
        r"FlowModel.fit takes x alone .*received a dictionary with keys \['x'\]",
    ),
    # Sampling.
    ("sample_zero", lambda tmp: model().sample(0), ValueError, r"`num_samples` must be an int >= 1; received 0"),
    ("sample_negative", lambda tmp: model().sample(-3), ValueError, r"`num_samples` must be an int >= 1; received -3"),
    (
        "sample_float_count",
        lambda tmp: model().sample(2.5),
        ValueError,
        r"`num_samples` must be an int >= 1; received 2.5 of type float",
    ),
    (
        "sample_negative_temperature",
        lambda tmp: model().sample(2, temperature=-0.5),
        ValueError,
        r"`temperature` must be a finite number >= 0; received -0.5",
    ),
    (
        "sample_infinite_temperature",
        lambda tmp: model().sample(2, temperature=INF),
        ValueError,
        r"`temperature` must be a finite number >= 0; received inf",
    ),
    (
        "sample_temperature_where_c_goes",
        lambda tmp: model().sample(2, 0.7),
        TypeError,
        r"`c` is the context of a conditional model, but this model is unconditional \(built without "
        r"`context_shape`\); received c=0.7. `temperature` and `seed` are keyword-only",
    ),
    (
        "sample_and_log_prob_tensor_temperature_where_c_goes",
        lambda tmp: model().sample_and_log_prob(2, tf.constant(0.7)),
        TypeError,
        r"`c` is the context of a conditional model, but this model is unconditional .*received c=<tf.Tensor",
    ),
    # Model construction and compilation.
    (
        "flow_model_nan_policy",
        lambda tmp: FlowModel((2,), nan_policy="skip"),
        ValueError,
        r"`nan_policy` must be one of \('raise', 'omit', 'propagate'\); received 'skip'",
    ),
    (
        "flow_model_event_shape",
        lambda tmp: FlowModel((0, 2)),
        ValueError,
        r"`event_shape` must be a non-empty sequence of positive ints; received \(0, 2\)",
    ),
    (
        "realnvp_event_rank",
        lambda tmp: RealNVP((4, 4)),
        ValueError,
        r"RealNVP: `event_shape` must be \(D,\) for vectors or \(H, W, C\) for images; received \(4, 4\)",
    ),
    (
        "compile_with_a_loss",
        lambda tmp: RealNVP((2,), num_couplings=2, hidden_units=(4,)).compile(loss="mse"),
        ValueError,
        r"FlowModel.compile takes no `loss`.*received loss='mse'",
    ),
    # Bijectors: static checks, and value checks under validate_args.
    (
        "logit_data_above_one",
        lambda tmp: tfp_flows.LogitTransform(validate_args=True).inverse(tf.constant([0.5, 1.5])),
        InvalidArgument,
        r"LogitTransform.inverse: data argument `y` must lie in \[0, 1\]; received values above 1",
    ),
    (
        "logit_data_below_zero",
        lambda tmp: tfp_flows.LogitTransform(validate_args=True).inverse(tf.constant([-0.1, 0.5])),
        InvalidArgument,
        r"LogitTransform.inverse: data argument `y` must lie in \[0, 1\]; received values below 0",
    ),
    (
        "logit_alpha_out_of_range",
        lambda tmp: tfp_flows.LogitTransform(alpha=0.7),
        ValueError,
        r"LogitTransform: argument `alpha` must lie in \(0, 0.5\); received 0.7",
    ),
    (
        "prelu_alpha_zero",
        lambda tmp: tfp_flows.PReLU(alpha=0.0, validate_args=True),
        InvalidArgument,
        r"PReLU: argument `alpha` must be > 0",
    ),
    (
        "prelu_alpha_negative_variable",
        lambda tmp: tfp_flows.PReLU(alpha=tf.Variable(-1.0), validate_args=True).forward(tf.constant([1.0])),
        InvalidArgument,
        r"PReLU: argument `alpha` must be > 0",
    ),
    (
        "prelu_integer_alpha",
        lambda tmp: tfp_flows.PReLU(alpha=np.int32(1)),
        TypeError,
        r"`alpha` must have a floating-point dtype.*received int32",
    ),
    (
        "radial_alpha_not_positive",
        lambda tmp: tfp_flows.Radial(z0=[0.0, 0.0], alpha=0.0, beta=1.0, validate_args=True),
        InvalidArgument,
        r"Radial: argument `alpha` must be > 0",
    ),
    (
        "radial_beta_below_minus_alpha",
        lambda tmp: tfp_flows.Radial(z0=[0.0, 0.0], alpha=1.0, beta=-2.0, validate_args=True),
        InvalidArgument,
        r"Radial: argument `beta` must be >= -alpha",
    ),
    (
        "planar_w_zero",
        lambda tmp: tfp_flows.Planar(w=[0.0, 0.0], u=[1.0, 0.0], b=0.0, validate_args=True),
        InvalidArgument,
        r"Planar: argument `w` must be nonzero",
    ),
    (
        "conv1x1_not_a_permutation",
        lambda tmp: conv1x1([0, 0, 2]),
        InvalidArgument,
        r"`permutation` must be a permutation of 0..C-1",
    ),
    (
        "conv1x1_float_permutation",
        lambda tmp: conv1x1([0.0, 1.0, 2.0], validate_args=False),
        TypeError,
        r"InvertibleConv1x1: `permutation` must have an integer dtype",
    ),
    (
        "conv1x1_permutation_size",
        lambda tmp: conv1x1([0, 1], validate_args=False),
        ValueError,
        r"InvertibleConv1x1: `permutation` must have 3 entries",
    ),
    (
        "coupling_mask_not_binary",
        lambda tmp: coupling([0.0, 0.5, 1.0]),
        ValueError,
        r"`mask` must contain only 0 and 1; received values",
    ),
    (
        "coupling_mask_all_ones",
        lambda tmp: coupling([1.0, 1.0]),
        ValueError,
        r"`mask` must have both 0 \(transformed\) and 1 \(pass-through\) entries",
    ),
    (
        "squeeze_factor",
        lambda tmp: tfp_flows.Squeeze(factor=0),
        ValueError,
        r"Squeeze: `factor` must be an int >= 1; received 0",
    ),
    (
        "squeeze_indivisible_height",
        lambda tmp: tfp_flows.Squeeze().inverse(tf.zeros([1, 3, 4, 1])),
        ValueError,
        r"Squeeze: the height H and width W of `y` must be divisible by 2 \(factor=2\); received shape \[1, 3, 4, 1\]",
    ),
    (
        "actnorm_channel_mismatch",
        lambda tmp: tfp_flows.ActNorm(loc=tf.zeros([3]), log_scale=tf.zeros([2])),
        ValueError,
        r"ActNorm: `loc` and `log_scale` must have the same number of channels",
    ),
    (
        "actnorm_init_epsilon",
        lambda tmp: tfp_flows.actnorm_initial_parameters(tf.ones([4, 2]), epsilon=0.0),
        ValueError,
        r"`epsilon` must be a finite number > 0; received 0.0",
    ),
    (
        "mask_parity",
        lambda tmp: tfp_flows.masks.half(4, parity=2),
        ValueError,
        r"`parity` must be an int in \[0, 1\]; received 2",
    ),
    # Names: presets, datasets, strategies, configuration.
    (
        "unknown_preset",
        lambda tmp: preset_class("realnpv"),
        ValueError,
        r"unknown preset 'realnpv'; expected one of \[.*'glow'.*'realnvp'.*\]",
    ),
    (
        "unknown_dataset_info",
        lambda tmp: dataset_info("two_moon"),
        ValueError,
        r"`name` must be one of \[.*'two_moons'.*\]; received 'two_moon'",
    ),
    (
        "unknown_dataset_in_config",
        lambda tmp: run.resolve_config({"dataset": "mnits"}),
        ValueError,
        r"unknown dataset 'mnits'; expected one of \[.*'mnist'.*\]",
    ),
    (
        "unknown_strategy",
        lambda tmp: run.make_strategy("tpu-pod"),
        ValueError,
        r"unknown strategy 'tpu-pod'; expected one of \['default', 'mirrored', 'multiworker'\]",
    ),
    (
        "config_non_positive_epochs",
        lambda tmp: run.resolve_config({"epochs": 0}),
        ValueError,
        r"`epochs` must be an int >= 1; received 0",
    ),
    (
        "config_unknown_key",
        lambda tmp: run.resolve_config({"epochz": 3}),
        ValueError,
        r"unknown configuration keys \['epochz'\]; expected keys among \[",
    ),
    (
        "config_conditional_without_labels",
        lambda tmp: run.resolve_config({"dataset": "rings", "conditional": True}),
        ValueError,
        r"`conditional` \(--conditional\) needs a dataset with labels \(a context_shape\); 'rings' has "
        r"none. Expected one of \[.*'digits'.*'two_moons'\]",
    ),
    (
        "config_conditional_not_bool",
        lambda tmp: run.resolve_config({"conditional": "yes"}),
        TypeError,
        r"`conditional` must be true or false; received 'yes'",
    ),
    (
        "config_iw_elbo_k_with_elbo",
        lambda tmp: run.resolve_config({"dataset": "U1", "preset": "planar", "num_importance_samples": 4}),
        ValueError,
        r"`num_importance_samples` > 1 needs objective 'iw-elbo' \(--objective iw-elbo\); received "
        r"num_importance_samples=4 with objective 'elbo'",
    ),
    (
        "resume_without_config",
        lambda tmp: run.train(resume=str(tmp)),
        ValueError,
        r"`resume` must be a run folder holding config.json .*; received '.*'",
    ),
    # make_dataset arguments.
    (
        "make_dataset_batch_size_zero",
        lambda tmp: make_dataset("two_moons", batch_size=0),
        ValueError,
        r"`batch_size` must be an int >= 1; received 0",
    ),
    (
        "make_dataset_batch_size_float",
        lambda tmp: make_dataset("two_moons", batch_size=12.5),
        ValueError,
        r"`batch_size` must be an int >= 1; received 12.5 of type float",
    ),
    (
        "make_dataset_dequantize",
        lambda tmp: make_dataset("digits", dequantize="gaussian"),
        ValueError,
        r"`dequantize` must be one of \('uniform', None, 'none'\); received 'gaussian'",
    ),
    (
        "make_dataset_seed",
        lambda tmp: make_dataset("two_moons", seed="7"),
        ValueError,
        r"`seed` must be an int; received '7' of type str",
    ),
    (
        "make_dataset_initial_epoch",
        lambda tmp: make_dataset("two_moons", repeat=True, initial_epoch=-1),
        ValueError,
        r"`initial_epoch` must be an int >= 0; received -1",
    ),
    (
        "make_dataset_integer_dtype",
        lambda tmp: make_dataset("two_moons", dtype=tf.int32),
        ValueError,
        r"`dtype` must be tf.float32 or tf.float64; received int32",
    ),
    (
        "make_dataset_batch_larger_than_split",
        lambda tmp: make_dataset("two_moons", batch_size=64, num_examples=10, drop_remainder=True),
        ValueError,
        r"has 10 examples per input pipeline, fewer than one batch of 64",
    ),
    (
        "make_dataset_input_context",
        lambda tmp: make_dataset("two_moons", input_context="replica 0"),
        TypeError,
        r"`input_context` must be a tf.distribute.InputContext or None; received str",
    ),
    (
        "make_dataset_unknown_name",
        lambda tmp: make_dataset("cifar100"),
        ValueError,
        r"`name` must be one of \[.*'cifar10'.*\]; received 'cifar100'",
    ),
    # SavedModels: missing, corrupt, incomplete; exports onto an existing version or with NaN weights.
    (
        "load_missing_saved_model",
        lambda tmp: load_serving_model(str(tmp / "nowhere")),
        FileNotFoundError,
        r"no SavedModel or model folder at this path: '.*nowhere'",
    ),
    (
        "load_folder_without_versions",
        lambda tmp: load_serving_model(str(tmp)),
        FileNotFoundError,
        r"neither a SavedModel \(no saved_model.pb\) nor a model folder with integer version subfolders",
    ),
    (
        "load_corrupt_saved_model",
        lambda tmp: load_serving_model(corrupt_saved_model(tmp)),
        ValueError,
        r"cannot load the SavedModel at '.*broken/1' \(corrupt or incomplete export\)",
    ),
    (
        "load_incomplete_newest_version",
        lambda tmp: load_serving_model(os.path.dirname(exported_model_dir(tmp) + "/flow/1")),
        ValueError,
        r"the newest version folder '.*flow/1' holds no saved_model.pb: an incomplete or corrupt export",
    ),
    (
        "export_onto_existing_version",
        lambda tmp: export_saved_model(model(), base_dir=exported_model_dir(tmp), name="flow", version=1),
        FileExistsError,
        r"refusing to overwrite an existing version: '.*flow/1'",
    ),
    (
        "export_non_finite_weights",
        lambda tmp: export_saved_model(nan_weights_model(), base_dir=str(tmp)),
        ValueError,
        r"refusing to export model 'poisoned': non-finite weights \(NaN or inf\) in \[",
    ),
    (
        "export_bad_version",
        lambda tmp: export_saved_model(model(), base_dir=str(tmp), name="flow", version=0),
        ValueError,
        r"`version` must be None or an int >= 1; received 0",
    ),
    (
        "export_bad_name",
        lambda tmp: export_saved_model(model(), base_dir=str(tmp), name="../escape"),
        ValueError,
        r"`name` must be a folder name of letters, digits.*received '../escape'",
    ),
]


class FlowModelWithActNorm(RealNVP):
    """A RealNVP with ActNorm, so `fit` must read (and check) the first batch for the data-dependent init."""

    def __init__(self):
        super().__init__((2,), num_couplings=2, hidden_units=(4,), actnorm=True)
        self.compile(optimizer="adam")


def test_the_table_is_large_and_ids_are_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) >= 30 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("call, error_type, pattern", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
@pytest.mark.slow_params("fit_dataset_nan_in_a_later_batch", "fit_dataset_outside_the_support_in_a_later_batch")
def test_bad_input_raises_a_clear_error(tmp_path, call, error_type, pattern):
    with pytest.raises(error_type) as caught:
        call(tmp_path)
    message = str(caught.value.message if isinstance(caught.value, tf.errors.OpError) else caught.value)
    assert re.search(pattern, message, flags=re.DOTALL), f"message does not match {pattern!r}:\n{message[:2000]}"
    assert "`" in message or "'" in message  # the argument or the path is named


def test_nan_policy_omit_leaves_bad_examples_out_and_propagate_lets_them_through():
    clean = points([0.5, -1.0], [1.0, 2.0], [-0.3, 0.1])
    dirty = np.concatenate([clean, points([NAN, 0.0], [INF, 1.0])])
    expected = model().log_prob(clean).numpy()
    omit = RealNVP((2,), num_couplings=2, hidden_units=(4,), nan_policy="omit")
    omit.set_weights(model().get_weights())
    log_prob = omit.log_prob(dirty).numpy()
    np.testing.assert_allclose(log_prob[:3], expected, rtol=1e-6)
    assert np.isnan(log_prob[3:]).all()
    with tf.GradientTape() as tape:
        loss = omit.compute_loss(x=tf.constant(dirty))
    np.testing.assert_allclose(loss.numpy(), -expected.mean(), rtol=1e-6)  # the mean over the kept examples
    gradients = tape.gradient(loss, omit.trainable_weights)
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients if g is not None)

    propagate = RealNVP((2,), num_couplings=2, hidden_units=(4,), nan_policy="propagate")
    propagate.set_weights(model().get_weights())
    # No check and no error: the non-finite rows come back non-finite (-inf or NaN, depending on whether the
    # random hidden layer multiplies an infinity by zero), the clean rows unchanged.
    propagated = propagate.log_prob(dirty).numpy()
    assert not np.isfinite(propagated[3:]).any()
    np.testing.assert_allclose(propagated[:3], expected, rtol=1e-6)
    assert RealNVP.from_config(omit.get_config()).nan_policy == "omit"


# ------------------------------------------------------------------------------------------------------------
# Support: every preset says what data it takes. Image presets (and b-bit data, num_bits) take [0, 1]: the scale of
# make_dataset and of bits_per_dim, not the [-0.5, 0.5] of TFP's and Glow's own code; vectors take the real line.
TINY_FLOWPP = dict(num_couplings=1, hidden_channels=4, num_blocks=0, dequantizer_couplings=1, dequantizer_channels=4)
SUPPORTS = {  # id: (build, support); every model case of tests/model_cases.py adds its own below
    "realnvp-image": (lambda: RealNVP((4, 4, 1), width=4, num_blocks=0, num_scales=1), (0.0, 1.0)),
    "realnvp-image-continuous": (
        lambda: RealNVP((4, 4, 1), width=4, num_blocks=0, num_scales=1, num_bits=None),
        (0.0, 1.0),
    ),  # the logit alone bounds it
    "glow-image": (lambda: Glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4), (0.0, 1.0)),
    "flowpp-variational": (lambda: FlowPlusPlus((4, 4, 1), **TINY_FLOWPP), (0.0, 1.0)),
    "flowpp-uniform": (lambda: FlowPlusPlus((4, 4, 1), dequantization="uniform", **TINY_FLOWPP), (0.0, 1.0)),
    "flowpp-image-continuous": (lambda: FlowPlusPlus((4, 4, 1), dequantization=None, **TINY_FLOWPP), (0.0, 1.0)),
}
# Conditional cases need a context besides x; their unconditional twins cover the same supports.
SUPPORTS.update({f"case-{case.id}": (case.make, case.support) for case in MODEL_CASES if not case.conditional})
SUPPORTS.update(
    {
        f"case-{case.id}-8bit": (functools.partial(case.make, **case.unit_interval), (0.0, 1.0))
        for case in MODEL_CASES
        if case.unit_interval is not None
    }
)


@pytest.mark.slow
def test_every_preset_has_a_support_case():
    covered = {build().__class__ for build, support in SUPPORTS.values() if support is not None}
    assert {entry.model for entry in PRESETS.values()} <= covered  # IAF, no preset of its own, is covered too


@pytest.mark.parametrize("build, support", SUPPORTS.values(), ids=SUPPORTS.keys())
@pytest.mark.slow_params("case-cnf-8bit", "case-cnf-hutchinson-maximum-likelihood", "case-cnf")
def test_every_preset_checks_its_support(build, support):
    flow = build()
    assert flow.support == support
    size = int(np.prod(flow.event_shape))
    centred = np.linspace(-0.5, 0.5, 2 * size, dtype=np.float32).reshape((2,) + flow.event_shape)  # row 1 is >= 0
    if support is None:
        assert np.all(np.isfinite(flow.log_prob(centred).numpy()))
        return
    # model(x) too: Flow++'s dequantization quantizes (clips) its input, which would hide such data.
    for call in (flow.log_prob, flow):
        with pytest.raises(
            OutOfSupportError,
            match=r"`x` holds values outside the model's support \[0, 1\]; received "
            r"values in \[-0.5, 0.5\], in 1 example\(s\), at batch index"
            r"\(es\) \[0\]",
        ):
            call(centred)
    ends = np.resize(np.array([0.0, 1.0], np.float32), (2,) + flow.event_shape)  # the closed interval's ends
    assert np.all(np.isfinite(flow.log_prob(ends).numpy()))


def test_encode_and_decode_are_maps_not_checked_against_the_support():
    """A model's own samples may fall just outside its support (Glow's density lives on R^D): they still encode."""
    flow = Glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4)
    assert flow.support == (0.0, 1.0)
    x = np.resize(np.array([-0.25, 1.25], np.float32), (2, 4, 4, 1))
    z = flow.encode(x)
    np.testing.assert_allclose(flow.decode(z).numpy(), x, atol=1e-5)


def test_fit_takes_no_step_on_data_outside_the_support():
    flow = NICE((2,), num_couplings=2, hidden_units=(4,), num_bits=8)
    flow.compile(optimizer="adam")
    before = [np.array(w) for w in flow.trainable_weights]
    with pytest.raises(OutOfSupportError, match=r"`x` \(a batch read from the dataset\) holds values outside"):
        flow.fit(dataset(points([0.5, 1.5], [0.5, 0.5]), np.full([4, 2], 0.5)), epochs=1, verbose=0)
    for value, expected in zip(flow.trainable_weights, before):
        np.testing.assert_array_equal(np.asarray(value), expected)


def test_nan_policy_omit_leaves_examples_outside_the_support_out():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)
    outside = np.stack([np.full((4, 4, 1), -0.5), np.full((4, 4, 1), 1.5)]).astype(np.float32)
    dirty = np.concatenate([clean, outside])
    omit = RealNVP((4, 4, 1), width=4, num_blocks=0, num_scales=1, actnorm=True, nan_policy="omit")
    raising = RealNVP((4, 4, 1), width=4, num_blocks=0, num_scales=1, actnorm=True)
    raising.set_weights(omit.get_weights())
    omit.initialize_from_data(dirty)  # ActNorm's init sees the clean examples only
    raising.initialize_from_data(clean)
    for value, expected in zip(omit.get_weights(), raising.get_weights()):
        np.testing.assert_allclose(value, expected, rtol=1e-6)
    expected = raising.log_prob(clean).numpy()
    log_prob = omit.log_prob(dirty).numpy()
    np.testing.assert_allclose(log_prob[:3], expected, rtol=1e-5)
    assert np.isnan(log_prob[3:]).all()
    with tf.GradientTape() as tape:
        loss = omit.compute_loss(x=tf.constant(dirty))
    np.testing.assert_allclose(loss.numpy(), -expected.mean(), rtol=1e-5)
    gradients = tape.gradient(loss, omit.trainable_weights)
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients if g is not None)


def test_flow_plus_plus_omits_data_its_dequantizer_would_have_clipped():
    """Variational dequantization quantizes (clips) its input: out-of-support data must be left out, not clipped in;
    a NaN example must not poison the dequantizer's gradients either."""
    flow = FlowPlusPlus((4, 4, 1), nan_policy="omit", seed=0, **TINY_FLOWPP)
    clean = (np.arange(32).reshape(2, 4, 4, 1) / 256.0).astype(np.float32)
    dirty = np.concatenate([clean, np.full((1, 4, 4, 1), -0.5, np.float32), np.full((1, 4, 4, 1), NAN, np.float32)])
    with tf.GradientTape() as tape:
        elbo = flow(tf.constant(dirty))
        loss = flow.compute_loss(x=tf.constant(dirty), y_pred=elbo)
    elbo = elbo.numpy()
    assert np.isfinite(elbo[:2]).all() and np.isnan(elbo[2:]).all()
    np.testing.assert_allclose(loss.numpy(), -elbo[:2].mean(), rtol=1e-5)
    gradients = tape.gradient(loss, flow.trainable_weights)
    assert gradients and all(g is not None and np.all(np.isfinite(g.numpy())) for g in gradients)


@pytest.mark.slow
def test_two_fits_in_two_threads_keep_their_own_input_errors():
    """Each model records its own pipeline errors: a fit on NaN data raises its NonFiniteInputError while another
    model fits clean data in another thread, again and again (every fit starts by clearing its record).

    The NaN batch's error is recorded a second before the bad fit reads it (tf.data checks batches ahead of the
    train step, and a callback holds the bad fit a second after its first step), and the clean thread starts fits
    in that second: with one store for the process, a clean fit's start wiped the bad fit's error, which then
    surfaced as tf.data's bare InvalidArgumentError."""
    import threading
    import time

    clean = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    bad = clean.copy()
    bad[40, 1] = NAN  # batch 2 of 16 examples
    clean_started, bad_done = threading.Event(), threading.Event()
    outcomes = {}

    def model_for(key):
        flow = RealNVP((2,), num_couplings=2, hidden_units=(4,), name=f"{key}_flow")
        flow.compile(optimizer="adam")
        return flow

    def fit_clean():
        flow, data = model_for("clean"), tf.data.Dataset.from_tensor_slices(clean).batch(16)
        try:
            flow.fit(data, epochs=1, verbose=0)
            clean_started.set()
            while not bad_done.is_set():
                flow.fit(data, epochs=1, verbose=0)
            outcomes["clean"] = "trained"
        except Exception as error:  # the outcome under test, whatever it is
            outcomes["clean"] = error
        finally:
            clean_started.set()

    def fit_bad():
        flow = model_for("bad")
        data = tf.data.Dataset.from_tensor_slices(bad).batch(16)

        def hold_after_the_first_step(batch, logs):
            time.sleep(1.0 if batch == 0 else 0.0)

        hold = keras.callbacks.LambdaCallback(on_train_batch_end=hold_after_the_first_step)
        clean_started.wait()
        try:
            flow.fit(data, epochs=1, verbose=0, callbacks=[hold])
            outcomes["bad"] = "trained"
        except Exception as error:
            outcomes["bad"] = error
        finally:
            bad_done.set()

    threads = [threading.Thread(target=fit_clean), threading.Thread(target=fit_bad)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes["clean"] == "trained", outcomes["clean"]
    assert isinstance(outcomes["bad"], NonFiniteInputError), repr(outcomes["bad"])
    assert "`x`" in str(outcomes["bad"]) and "NaN or infinity" in str(outcomes["bad"])
