"""The gRPC client and the README's requests, checked against a real export without a server.

`serving_client.predict_locally` does what TF Serving's Predict does with a request (protos to tensors with
`tf.make_ndarray`, exact dtype and shape checks against the signature, outputs back to protos), so a request that
passes here has the names, dtypes and shapes the server expects.
"""

import json
import os
import re
import shlex
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_models import RealNVP
from keras_models.serving import client as serving_client
from keras_models.serving.export import export_saved_model, load_serving_model

MODEL_NAME = "realnvp-two_moons"  # the name the README uses
README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models", "README.md")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = RealNVP((2,), num_couplings=2, hidden_units=(8,), name=MODEL_NAME)
    rng = np.random.default_rng(4)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype(weight.dtype))
    base = tmp_path_factory.mktemp("client")
    export_saved_model(model, base_dir=str(base))
    return model, load_serving_model(str(base / MODEL_NAME))


@pytest.fixture
def serving_apis():
    return pytest.importorskip(
        "tensorflow_serving.apis.predict_pb2",
        reason="tensorflow-serving-api (optional extra `serving`) is not installed",
    )


def _input_specs(saved_model, signature_name):
    return saved_model.signatures[signature_name].structured_input_signature[1]


def _assert_inputs_match_signature(request, saved_model):
    specs = _input_specs(saved_model, request.model_spec.signature_name)
    assert set(request.inputs) == set(specs)
    for name, proto in request.inputs.items():
        value = tf.make_ndarray(proto)
        assert tf.as_dtype(value.dtype) == specs[name].dtype, (name, value.dtype, specs[name].dtype)
        assert specs[name].shape.is_compatible_with(value.shape), (name, value.shape, specs[name].shape)


# ------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_log_prob_request_carries_exactly_the_signature_inputs(served, serving_apis):
    model, saved_model = served
    x = np.random.default_rng(0).normal(size=(3, 2))  # float64 in, cast to the export's float32
    request = serving_client.log_prob_request(MODEL_NAME, x, version=1)
    assert (request.model_spec.name, request.model_spec.signature_name, request.model_spec.version.value) == (
        MODEL_NAME,
        "log_prob",
        1,
    )
    _assert_inputs_match_signature(request, saved_model)
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["x"]), x.astype(np.float32))
    outputs = serving_client.decode_response(serving_client.predict_locally(saved_model, request))
    np.testing.assert_allclose(outputs["log_prob"], model.log_prob(x.astype(np.float32)).numpy(), rtol=1e-5, atol=1e-5)


def test_sample_request_carries_exactly_the_signature_inputs(served, serving_apis):
    model, saved_model = served
    request = serving_client.sample_request(MODEL_NAME, num_samples=4, temperature=0.7, seed=(1, 2))
    _assert_inputs_match_signature(request, saved_model)
    converted = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    assert converted["num_samples"].shape == () and converted["num_samples"] == 4
    assert converted["temperature"].shape == () and converted["temperature"] == np.float32(0.7)
    np.testing.assert_array_equal(converted["seed"], np.array([1, 2], np.int32))
    samples = serving_client.decode_response(serving_client.predict_locally(saved_model, request))["samples"]
    np.testing.assert_allclose(samples, model.sample(4, temperature=0.7, seed=[1, 2]).numpy(), rtol=1e-5, atol=1e-5)
    single = serving_client.sample_request(MODEL_NAME, num_samples=2, seed=7)
    np.testing.assert_array_equal(tf.make_ndarray(single.inputs["seed"]), [7, 0])


def test_encode_and_decode_requests_round_trip(served, serving_apis):
    _, saved_model = served
    x = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    z = serving_client.decode_response(
        serving_client.predict_locally(saved_model, serving_client.encode_request(MODEL_NAME, x))
    )["z"]
    back = serving_client.decode_response(
        serving_client.predict_locally(saved_model, serving_client.decode_request(MODEL_NAME, z))
    )["x"]
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-5)
    assert not np.allclose(z, x)


def test_a_response_round_trips_through_the_wire_format(served, serving_apis):
    _, saved_model = served
    outputs = saved_model.signatures["sample"](
        num_samples=tf.constant(3), temperature=tf.constant(1.0), seed=tf.constant([5, 6])
    )
    response = serving_apis.PredictResponse()
    response.model_spec.name = MODEL_NAME
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    received = serving_apis.PredictResponse.FromString(response.SerializeToString())
    decoded = serving_client.decode_response(received)
    assert set(decoded) == {"samples"}
    assert decoded["samples"].dtype == np.float32
    np.testing.assert_array_equal(decoded["samples"], outputs["samples"].numpy())


def test_requests_the_server_would_reject_are_rejected(served, serving_apis):
    _, saved_model = served
    x = np.zeros((2, 2))
    with pytest.raises(ValueError, match="float32"):
        serving_client.predict_locally(saved_model, serving_client.log_prob_request(MODEL_NAME, x, dtype=np.float64))
    with pytest.raises(ValueError, match=r"\['z'\]"):
        serving_client.predict_locally(saved_model, serving_client.predict_request(MODEL_NAME, "decode", {"x": x}))
    with pytest.raises(ValueError, match="unknown signature_name"):
        serving_client.predict_locally(saved_model, serving_client.predict_request(MODEL_NAME, "nope", {}))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: serving_client.sample_request(MODEL_NAME, num_samples=0), "`num_samples`"),
        (lambda: serving_client.sample_request(MODEL_NAME, num_samples=2, temperature=-1.0), "`temperature`"),
        (lambda: serving_client.sample_request(MODEL_NAME, num_samples=2, seed=(1, 2, 3)), "`seed`"),
        (lambda: serving_client.log_prob_request(MODEL_NAME, [0.5, 0.25]), "`x`"),
        (lambda: serving_client.log_prob_request("", np.zeros((1, 2))), "`model_name`"),
    ],
)
def test_bad_request_arguments_name_the_argument(serving_apis, call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_missing_serving_api_gives_an_install_hint(monkeypatch):
    for name in ("tensorflow_serving", "tensorflow_serving.apis", "tensorflow_serving.apis.predict_pb2"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="tensorflow-serving-api"):
        serving_client.log_prob_request(MODEL_NAME, np.zeros((1, 2)))
    with pytest.raises(ImportError, match="tensorflow-serving-api"):
        serving_client.prediction_stub("localhost:8500")


# ------------------------------------------------------------------------------------------------------------
# The README's requests are copy-paste correct.
def _readme_blocks(language):
    with open(README, encoding="utf-8") as handle:
        return re.findall(rf"```{language}\n(.*?)```", handle.read(), re.S)


def test_readme_rest_requests_match_the_signatures(served):
    model, saved_model = served
    commands = [shlex.split(block.replace("\\\n", " ")) for block in _readme_blocks("bash") if ":predict" in block]
    assert len(commands) == 2, "expected the log_prob and sample curl examples"
    seen = set()
    for command in commands:
        url = next(arg for arg in command if arg.startswith("http://"))
        assert url == f"http://localhost:8501/v1/models/{MODEL_NAME}:predict", url
        body = json.loads(command[command.index("-d") + 1])
        name = body["signature_name"]
        specs = _input_specs(saved_model, name)
        assert set(body["inputs"]) == set(specs), (name, body["inputs"])
        # What TF Serving does with JSON numbers: convert to the signature's dtype, keeping the nested shape.
        tensors = {
            key: tf.constant(np.asarray(value, specs[key].dtype.as_numpy_dtype))
            for key, value in body["inputs"].items()
        }
        for key, tensor in tensors.items():
            assert specs[key].shape.is_compatible_with(tensor.shape), (name, key, tensor.shape)
        outputs = saved_model.signatures[name](**tensors)
        assert len(outputs) == 1, "a single output is what the README's response description assumes"
        if name == "log_prob":
            np.testing.assert_allclose(outputs["log_prob"].numpy(), model.log_prob(tensors["x"]).numpy(), rtol=1e-5)
        seen.add(name)
    assert seen == {"log_prob", "sample"}


def test_readme_docker_command_matches_models_config_paths():
    (docker,) = [block for block in _readme_blocks("bash") if "docker run" in block]
    assert 'source="$PWD/saved_models",target=/models' in docker
    assert "--model_config_file=/models/models.config" in docker
    assert "-p 8500:8500" in docker and "-p 8501:8501" in docker


def test_readme_grpc_example_runs_against_the_export(served, serving_apis, monkeypatch, capsys):
    model, saved_model = served

    class InProcessStub:
        """Stands in for PredictionServiceStub: answers with the export, as the server would."""

        def __init__(self, target):
            assert target == "localhost:8500"

        def Predict(self, request, timeout=None):
            assert request.model_spec.name == MODEL_NAME and timeout
            return serving_client.predict_locally(saved_model, request)

    monkeypatch.setattr(serving_client, "prediction_stub", InProcessStub)
    (snippet,) = [block for block in _readme_blocks("python") if "prediction_stub" in block]
    namespace = {}
    exec(compile(snippet, README, "exec"), namespace)
    np.testing.assert_allclose(namespace["log_prob"], model.log_prob(namespace["x"]).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        namespace["samples"], model.sample(4, temperature=0.7, seed=[1, 2]).numpy(), rtol=1e-5, atol=1e-5
    )
    assert capsys.readouterr().out.strip() == "(2,) (4, 2)"
