"""`FlowModel(standardization=...)`: the fixed first step that puts densities and samples in the data's own units."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models.flows.presets import build_model

tfd = tfp.distributions
STATS = {"shift": [3.0, 0.5, -1.0], "scale": [100.0, 0.2, 0.01], "columns": ["big", "pos", "small"]}


def _model(preset="realnvp", log_columns=(), **kwargs):
    args = {"realnvp": dict(num_couplings=2, hidden_units=[8]), "maf": dict(num_layers=2, hidden_units=[8])}[preset]
    return build_model(preset, (3,), standardization={**STATS, "log_columns": list(log_columns)}, **args, **kwargs)


def _rows(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.normal(3, 100, n), rng.lognormal(0.5, 0.2, n), rng.normal(-1, 0.01, n)], 1).astype("f4")


@pytest.mark.parametrize("log_columns", [(), ("pos",)])
def test_log_prob_counts_the_standardisation_and_log_jacobians(log_columns):
    """log p(x) = log q(z) - sum_j log s_j - sum_{log columns} log x_j, z = (y - m) / s, y = log x on log columns."""
    model = _model(log_columns=log_columns)
    x = _rows()
    y = x.astype(np.float64).copy()
    logged = [STATS["columns"].index(c) for c in log_columns]
    y[:, logged] = np.log(y[:, logged])
    z = ((y - STATS["shift"]) / STATS["scale"]).astype(np.float32)
    inner = tfb_chain(model.flow_layers[1:])
    q = tfd.TransformedDistribution(model.base_distribution(), inner)
    expected = q.log_prob(tf.constant(z)).numpy() - np.log(STATS["scale"]).sum() - np.log(x[:, logged]).sum(axis=1)
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-4)


def tfb_chain(layers):
    return tfp.bijectors.Chain([layer.bijector() for layer in layers])


def test_samples_come_back_in_the_data_s_units_and_positive_on_log_columns():
    model = _model("maf", log_columns=("pos",))
    x, log_prob = model.sample_and_log_prob(4000, seed=3)
    x = x.numpy()
    assert np.all(x[:, 1] > 0)
    # An untrained flow is close to the identity: the samples' spread is the data's, column by column.
    spread = x.std(axis=0) / [100.0, 1.0, 0.01]
    assert np.all((spread > 0.2) & (spread < 5)), spread
    np.testing.assert_allclose(log_prob.numpy()[:50], model.log_prob(x[:50]).numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_the_keras_file_and_the_savedmodel_keep_the_standardisation(tmp_path):
    import keras

    from keras_models.serving.export import export_saved_model, load_serving_model, read_export_metadata

    model = _model(log_columns=("pos",))
    x = _rows()
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.standardization == model.standardization
    np.testing.assert_allclose(reloaded.log_prob(x).numpy(), model.log_prob(x).numpy(), rtol=1e-6)
    export = export_saved_model(model, base_dir=str(tmp_path / "saved"), name="m", metadata={"note": 1})
    served = load_serving_model(export).signatures["log_prob"](x=tf.constant(x))["log_prob"].numpy()
    np.testing.assert_allclose(served, model.log_prob(x).numpy(), rtol=1e-6)
    assert read_export_metadata(export) == {"columns": STATS["columns"], "log_columns": ["pos"], "note": 1}


def test_bad_statistics_are_refused_naming_them():
    with pytest.raises(ValueError, match="constant column has scale"):
        build_model("realnvp", (2,), standardization={"shift": [0.0, 0.0], "scale": [1.0, 0.0]})
    with pytest.raises(ValueError, match="same length"):
        build_model("realnvp", (2,), standardization={"shift": [0.0, 0.0], "scale": [1.0]})
    with pytest.raises(ValueError, match="the data have 2 columns; expected 1"):
        build_model("realnvp", (2,), standardization={"shift": [0.0], "scale": [1.0]})
    with pytest.raises(ValueError, match="tabular data"):
        build_model("glow", (8, 8, 1), standardization={"shift": [0.0], "scale": [1.0]})
