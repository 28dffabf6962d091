"""Every preset exports: each signature of the reloaded SavedModel equals the in-memory model's.

One tiny instance per preset (vector or image, whichever the preset is built for; float64 once), with weights
perturbed so no coupling is the identity. The reload is in-process (tests/test_export.py proves on three presets
that a process without TFP, Keras or this project gives the same answers); every graph is walked for non-core ops.
A preset that cannot be constructed yet is skipped with the reason (its own test module reports it); a preset
that constructs but does not export fails.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf
from model_cases import CASES
from test_export import assert_servable_graph

from keras_models import RealNVP
from keras_models.serving.export import export_saved_model, load_serving_model

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
# One instance per preset from the model cases (tests/model_cases.py), plus double precision once.
PRESETS = {case.id: functools.partial(case.make, **case.export) for case in CASES if case.export is not None}
PRESETS["realnvp-float64"] = lambda: RealNVP((2,), num_couplings=2, hidden_units=(8,), dtype="float64")


def _build(key):
    try:
        model = PRESETS[key]()
        model.latent_shape  # noqa: B018 (set once the preset registered its layers)
    except Exception as error:
        pytest.skip(f"preset {key!r} cannot be constructed yet: {type(error).__name__}: {error}")
    rng = np.random.default_rng(0)
    dtype = model.compute_dtype
    if len(model.event_shape) == 3:
        data = rng.uniform(0.05, 0.95, size=(16,) + model.event_shape).astype(dtype)
    else:
        data = rng.normal(size=(16,) + model.event_shape).astype(dtype)
    model.initialize_from_data(data)
    for weight in model.trainable_weights:
        weight.assign(weight.numpy() + rng.normal(scale=0.05, size=weight.shape).astype(weight.dtype))
    return model, data[:5]


# Each export and reload takes several seconds (CNF's six signatures trace its ODE solver at 1e-7 tolerances: over
# a minute on CPU), so the fast subset leaves them all to the whole suite.
@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(PRESETS))
def test_preset_exports_and_every_signature_matches(key, tmp_path):
    model, x = _build(key)
    path = export_saved_model(model, base_dir=str(tmp_path), name=key)
    signatures = load_serving_model(path).signatures
    expected_names = {"serving_default", "log_prob", "sample", "sample_and_log_prob", "encode", "decode"} | (
        {"bits_per_dim"} if model.num_bits else set()
    )
    assert set(signatures) == expected_names
    dtype = tf.as_dtype(model.compute_dtype)
    assert signatures["log_prob"].structured_input_signature[1]["x"].dtype == dtype

    x = tf.constant(x)
    z = model.encode(x)
    checks = {
        ("log_prob", "log_prob"): ({"x": x}, model.log_prob(x)),
        ("serving_default", "log_prob"): ({"x": x}, model.log_prob(x)),
        ("encode", "z"): ({"x": x}, z),
        ("decode", "x"): ({"z": z * 0.9}, model.decode(tf.identity(z) * 0.9)),
    }
    if model.num_bits:
        checks[("bits_per_dim", "bits_per_dim")] = ({"x": x}, model.bits_per_dim(model.log_prob(x)))
    for (name, output), (inputs, reference) in checks.items():
        got = signatures[name](**inputs)[output].numpy()
        assert got.dtype == dtype.as_numpy_dtype and np.all(np.isfinite(got)), (name, got.dtype)
        np.testing.assert_allclose(got, reference.numpy(), **TOLERANCE, err_msg=f"{key}: {name}")
        # Rows are independent (what server-side batching of requests relies on): a slice gives the same rows.
        part = signatures[name](**{k: v[:2] for k, v in inputs.items()})[output].numpy()
        np.testing.assert_allclose(part, got[:2], **TOLERANCE, err_msg=f"{key}: {name} mixes rows of a batch")

    sample_inputs = dict(num_samples=tf.constant(3), temperature=tf.constant(0.8), seed=tf.constant([5, 9]))
    first = signatures["sample"](**sample_inputs)["samples"].numpy()
    np.testing.assert_array_equal(first, signatures["sample"](**sample_inputs)["samples"].numpy())
    np.testing.assert_allclose(first, model.sample(3, temperature=0.8, seed=[5, 9]).numpy(), **TOLERANCE)
    assert first.shape == (3,) + model.event_shape
    both = signatures["sample_and_log_prob"](**sample_inputs)
    np.testing.assert_allclose(both["samples"].numpy(), first, **TOLERANCE)
    np.testing.assert_allclose(
        both["log_prob"].numpy(), model.sample_and_log_prob(3, temperature=0.8, seed=[5, 9])[1].numpy(), **TOLERANCE
    )
    assert_servable_graph(path)
