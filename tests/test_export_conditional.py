"""SavedModels of conditional models p(x | c): every signature takes the named input `context`, and a reload
with TensorFlow alone (tests/serving_reload.py: TFP, Keras and this project blocked) answers as the model does.
The client builds requests with the context that `predict_locally` (TF Serving's Predict, offline) accepts.
"""

import json
import subprocess
import sys

import model_checks
import numpy as np
import pytest
import tensorflow as tf
from test_export import HELPER, TOLERANCE

from keras_models import CNF, MAF, NSF, ConditionalGaussianBase, Glow, RealNVP
from keras_models.serving import client as serving_client
from keras_models.serving.export import export_saved_model, load_serving_model

pytestmark = pytest.mark.slow  # trains, exports and reloads models in fresh Python processes

N, TEMPERATURE, SEED = 4, 0.7, [3, 4]


def _models():
    """key -> (model, its data shape): conditional couplings (RealNVP with a conditional base, NSF's splines, an
    image Glow), MADEs (MAF) and a continuous flow (CNF: its ODE solver's loop in the graph), each tiny, initialised
    from data and perturbed so no step is the identity."""
    realnvp = RealNVP(
        (2,),
        num_couplings=2,
        hidden_units=(8,),
        context_shape=(3,),
        name="realnvp-conditional",
        base_distribution=ConditionalGaussianBase(hidden_units=(4,)),
    )
    maf = MAF((3,), num_layers=2, hidden_units=(8,), context_shape=(3,), name="maf-conditional")
    nsf = NSF((2,), num_layers=2, hidden_units=(8,), num_bins=3, bound=2.0, context_shape=(3,), name="nsf-conditional")
    glow = Glow(
        (4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4, seed=0, context_shape=(3,), name="glow-conditional"
    )
    # Tight tolerances: the adaptive solver steps a batch together, and the export is called on other batches.
    cnf = CNF((2,), hidden_units=(8,), context_shape=(3,), rtol=1e-7, atol=1e-7, name="cnf-conditional")
    rng = np.random.default_rng(0)
    models = {
        "realnvp": (realnvp, (2,), 0.3),
        "maf": (maf, (3,), 0.3),
        "nsf": (nsf, (2,), 0.3),
        "glow": (glow, (4, 4, 1), 0.05),
        "cnf": (cnf, (2,), 0.3),
    }
    for model, shape, scale in models.values():
        model.initialize_from_data(_data(rng, 16, shape), rng.normal(size=(16, 3)).astype(np.float32))
        model_checks.perturb(model, scale, 1)
    return {key: (model, shape) for key, (model, shape, _) in models.items()}


def _data(rng, n, shape):
    """Vectors ~ N(0, 1); images uniform in [0, 1] (Glow's support)."""
    draw = rng.uniform if len(shape) == 3 else rng.normal
    return draw(size=(n, *shape)).astype(np.float32)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_conditional")
    rng = np.random.default_rng(1)
    manifest, expected, served, inputs = {"models": []}, {}, {}, {}

    def npy(name, value):
        file = str(root / f"{name}.npy")
        np.save(file, value)
        return file

    for key, (model, shape) in _models().items():
        path = export_saved_model(model, base_dir=str(root / "saved_models"))
        served[key] = (model, path)
        x = _data(rng, N, shape)
        c = rng.normal(size=(N, 3)).astype(np.float32)
        inputs[key] = (x, c)
        z = model.encode(x, c).numpy()
        samples, log_prob = model.sample_and_log_prob(N, c, temperature=TEMPERATURE, seed=SEED)
        expected[key] = {
            "log_prob/log_prob": model.log_prob(x, c).numpy(),
            "encode/z": z,
            "decode/x": model.decode(z, c).numpy(),
            "sample/samples": model.sample(N, c, temperature=TEMPERATURE, seed=SEED).numpy(),
            "sample_and_log_prob/samples": samples.numpy(),
            "sample_and_log_prob/log_prob": log_prob.numpy(),
        }
        sample_inputs = {
            "num_samples": npy(f"{key}-n", np.int32(N)),
            "temperature": npy(f"{key}-t", np.float32(TEMPERATURE)),
            "seed": npy(f"{key}-seed", np.array(SEED, np.int32)),
            "context": npy(f"{key}-c", c),
        }
        manifest["models"].append(
            {
                "key": key,
                "path": path,
                "calls": [
                    {
                        "id": "log_prob",
                        "signature": "log_prob",
                        "inputs": {"x": npy(f"{key}-x", x), "context": npy(f"{key}-c", c)},
                    },
                    {
                        "id": "encode",
                        "signature": "encode",
                        "inputs": {"x": npy(f"{key}-x", x), "context": npy(f"{key}-c", c)},
                    },
                    {
                        "id": "decode",
                        "signature": "decode",
                        "inputs": {"z": npy(f"{key}-z", z), "context": npy(f"{key}-c", c)},
                    },
                    {"id": "sample", "signature": "sample", "inputs": sample_inputs},
                    {"id": "sample_and_log_prob", "signature": "sample_and_log_prob", "inputs": sample_inputs},
                ],
            }
        )
    (root / "manifest.json").write_text(json.dumps(manifest))
    out = root / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, HELPER, str(root / "manifest.json"), str(out)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"out": out, "expected": expected, "served": served, "inputs": inputs}


@pytest.mark.parametrize("key", ["realnvp", "maf", "nsf", "glow", "cnf"])
def test_a_tensorflow_only_reload_answers_with_the_context_as_the_model_does(exports, key):
    answers = np.load(exports["out"] / f"{key}.npz")
    assert set(answers.files) == set(exports["expected"][key])
    for name, value in exports["expected"][key].items():
        np.testing.assert_allclose(answers[name], value, err_msg=name, **TOLERANCE)
    # The context matters, so an export that dropped it would not have matched.
    model, _ = exports["served"][key]
    x, c = exports["inputs"][key]
    assert np.max(np.abs(model.log_prob(x, -c).numpy() - answers["log_prob/log_prob"])) > 1e-3


def test_signatures_take_the_context_as_a_named_input_and_refuse_a_wrong_batch(exports):
    _, path = exports["served"]["realnvp"]
    loaded = load_serving_model(path)
    specs = loaded.signatures["sample"].structured_input_signature[1]
    assert specs["context"].shape.as_list() == [None, 3]
    assert loaded.signatures["log_prob"].structured_input_signature[1]["context"].shape.as_list() == [None, 3]
    with pytest.raises(tf.errors.InvalidArgumentError, match="one row per sample"):
        loaded.signatures["sample"](
            num_samples=tf.constant(N),
            temperature=tf.constant(1.0),
            seed=tf.constant(SEED),
            context=tf.zeros([N + 1, 3]),
        )


def test_the_client_sends_the_context(exports):
    pytest.importorskip(
        "tensorflow_serving.apis.predict_pb2",
        reason="tensorflow-serving-api (optional extra `serving`) is not installed",
    )
    model, path = exports["served"]["maf"]
    loaded = load_serving_model(path)
    rng = np.random.default_rng(2)
    x, c = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)
    response = serving_client.predict_locally(loaded, serving_client.log_prob_request("maf-conditional", x, context=c))
    np.testing.assert_allclose(
        serving_client.decode_response(response)["log_prob"], model.log_prob(x, c).numpy(), **TOLERANCE
    )
    request = serving_client.sample_request("maf-conditional", 2, temperature=0.5, seed=(1, 2), context=c)
    samples = serving_client.decode_response(serving_client.predict_locally(loaded, request))["samples"]
    np.testing.assert_allclose(samples, model.sample(2, c, temperature=0.5, seed=(1, 2)).numpy(), **TOLERANCE)
    with pytest.raises(ValueError, match="`context` must have one row per example or sample"):
        serving_client.log_prob_request("maf-conditional", x, context=c[:1])
