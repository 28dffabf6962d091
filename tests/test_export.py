"""SavedModel exports as TF Serving uses them: TensorFlow alone, fixed signatures, core ops, stateless sampling.

No server runs here, so each test proves one thing the server relies on: the export loads and answers with
tensorflow_probability, keras, tf_keras and this project blocked (tests/serving_reload.py, run twice in fresh
processes); `saved_model_cli` (TF's own tool) lists the signatures and runs one on a .npy; every op in the
graphs, function libraries included, is a registered core TensorFlow op with no Python callback and no stateful
random op. Models: a tiny 2-D RealNVP, a tiny image Glow (bits_per_dim, multi-scale split), a tiny Flow++
(decode and sample run the logistic-mixture root solve), a TFP distribution composed by hand, and two RealNVPs
whose bases are not N(0, I): the "gmm" mixture and a raw `tfd.Distribution` (Student-t).
"""

import json
import os
import re
import subprocess
import sys

import model_checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

import tfp_flows
from keras_models import FlowPlusPlus, Glow, RealNVP
from keras_models.serving.export import export_distribution, export_saved_model

pytestmark = pytest.mark.slow  # trains, exports and reloads models in fresh Python processes

tfb, tfd = tfp.bijectors, tfp.distributions

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serving_reload.py")
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
TOLERANCE = dict(rtol=1e-5, atol=1e-5)
# call id: (num_samples, temperature, seed)
SAMPLE_CALLS = {
    "sample_a": (5, 0.7, [3, 4]),
    "sample_a_again": (5, 0.7, [3, 4]),
    "sample_b": (5, 0.7, [4, 3]),
    "sample_t0": (2, 0.0, [3, 4]),
}
# The sample_and_log_prob signature is called with these: its samples must be `sample`'s for the same inputs.
SAMPLE_AND_LOG_PROB_CALLS = ("sample_a",)
# Stateful ops that are fine in a served graph: variable reads, asserts, control flow, the checkpoint machinery.
ALLOWED_STATEFUL_OPS = {
    "Assert",
    "CheckNumerics",
    "DisableCopyOnRead",
    "If",
    "While",
    "NoOp",
    "ReadVariableOp",
    "StatefulPartitionedCall",
    "VarHandleOp",
}
CHECKPOINT_OPS = {"AssignVariableOp", "MergeV2Checkpoints", "RestoreV2", "SaveV2"}
PYTHON_CALLBACK_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def _models():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(6, 2)).astype(np.float32)
    images = rng.uniform(size=(6, 8, 8, 1)).astype(np.float32)

    realnvp = model_checks.perturb(RealNVP((2,), num_couplings=2, hidden_units=(8,), name="realnvp"), 0.3, 1)
    glow = Glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=4, seed=0, name="glow")
    glow.initialize_from_data(rng.uniform(size=(32, 8, 8, 1)).astype(np.float32))
    model_checks.perturb(glow, 0.05, 2)
    flowpp = FlowPlusPlus((2,), num_components=2, num_couplings=2, hidden_channels=8, num_blocks=1, name="flowpp")
    flowpp.initialize_from_data(rng.normal(size=(32, 2)).astype(np.float32))
    model_checks.perturb(flowpp, 0.2, 3)

    # A flow composed by hand from our bijectors and TFP's, with its own variables (no Keras anywhere).
    shift = tf.Variable([0.5, -0.25, 1.0], name="shift")
    scale_tril = tf.Variable([[1.0, 0.0, 0.0], [0.3, 0.8, 0.0], [-0.2, 0.1, 1.2]], name="scale_tril")
    composed = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0.0, 1.0), [3]),
        tfb.Chain(
            [tfb.Shift(shift), tfp_flows.PReLU(alpha=tf.Variable(0.4, name="alpha")), tfb.ScaleMatvecTriL(scale_tril)]
        ),
    )
    models = {
        "realnvp": (realnvp, points),
        "glow": (glow, images),
        "flowpp": (flowpp, points),
        "composed": (composed, rng.normal(size=(6, 3)).astype(np.float32)),
    }

    # Bases other than N(0, I), whose density and sampler must be traced into the graph too: the trainable
    # mixture ("gmm", k-means initialised on the encoded data) and a raw tfd.Distribution (heavy tails).
    base_rng = np.random.default_rng(7)
    gmm = RealNVP((2,), num_couplings=2, hidden_units=(8,), base_distribution="gmm", name="base-gmm")
    gmm.initialize_from_data(base_rng.normal(size=(32, 2)).astype(np.float32))
    student = RealNVP(
        (2,),
        num_couplings=2,
        hidden_units=(8,),
        name="base-student-t",
        base_distribution=tfd.Sample(tfd.StudentT(df=5.0, loc=0.0, scale=1.0), [2]),
    )
    for seed, (key, model) in enumerate((("base-gmm", gmm), ("base-student-t", student)), start=4):
        models[key] = (model_checks.perturb(model, 0.3, seed), base_rng.normal(size=(6, 2)).astype(np.float32) * 2)
    return models


def _expected(flow, x):
    """What each signature must return, computed by the in-memory model (or distribution), eagerly."""
    is_model = hasattr(flow, "flow_layers")
    bijector = flow.bijector
    z = bijector.inverse(tf.constant(x))
    expected = {
        "log_prob/log_prob": flow.log_prob(x),
        "encode/z": z,
        "decode/x": bijector.forward(tf.identity(z) * 0.9),
    }
    if getattr(flow, "num_bits", None):
        expected["bits_per_dim/bits_per_dim"] = flow.bits_per_dim(flow.log_prob(x))
    for call, (n, temperature, seed) in SAMPLE_CALLS.items():
        if is_model:
            samples = flow.sample(n, temperature=temperature, seed=seed)
        else:
            samples = bijector.forward(flow.distribution.sample(n, seed=tf.constant(seed, tf.int32)) * temperature)
        expected[f"{call}/samples"] = samples
        if call in SAMPLE_AND_LOG_PROB_CALLS:
            expected[f"{call}_and_log_prob/samples"] = samples
            # The model's density at the samples (also at temperature != 1): the hand-composed flow's reference
            # goes through the inverse, the models' is their own one-pass method.
            if is_model:
                log_prob = flow.sample_and_log_prob(n, temperature=temperature, seed=seed)[1]
            else:
                log_prob = flow.log_prob(samples)
            expected[f"{call}_and_log_prob/log_prob"] = log_prob
    return {key: np.asarray(value) for key, value in expected.items()}, (z.numpy() * 0.9).astype(np.float32)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Exports, the manifest of signature calls for the helper, and the in-memory answers."""
    root = tmp_path_factory.mktemp("export")
    inputs_dir = root / "inputs"
    inputs_dir.mkdir()
    manifest, expected, paths = {"models": []}, {}, {}
    for key, (flow, x) in _models().items():
        if key == "composed":
            paths[key] = export_distribution(flow, (3,), str(root / "saved_models" / key / "1"))
        else:
            paths[key] = export_saved_model(flow, base_dir=str(root / "saved_models"))
        expected[key], z = _expected(flow, x)

        def npy(name, value, key=key):
            file = str(inputs_dir / f"{key}-{name}.npy")
            np.save(file, value)
            return file

        calls = [
            {"id": "log_prob", "signature": "log_prob", "inputs": {"x": npy("x", x)}},
            {"id": "serving_default", "signature": "serving_default", "inputs": {"x": npy("x", x)}},
            {"id": "encode", "signature": "encode", "inputs": {"x": npy("x", x)}},
            {"id": "decode", "signature": "decode", "inputs": {"z": npy("z", z)}},
        ]
        expected[key]["serving_default/log_prob"] = expected[key]["log_prob/log_prob"]
        if "bits_per_dim/bits_per_dim" in expected[key]:
            calls.append({"id": "bits_per_dim", "signature": "bits_per_dim", "inputs": {"x": npy("x", x)}})
        for call, (n, temperature, seed) in SAMPLE_CALLS.items():
            calls.append(
                {
                    "id": call,
                    "signature": "sample",
                    "inputs": {
                        "num_samples": npy(f"{call}-n", np.int32(n)),
                        "temperature": npy(f"{call}-t", np.float32(temperature)),
                        "seed": npy(f"{call}-seed", np.array(seed, np.int32)),
                    },
                }
            )
            if call in SAMPLE_AND_LOG_PROB_CALLS:
                calls.append(dict(calls[-1], id=f"{call}_and_log_prob", signature="sample_and_log_prob"))
        manifest["models"].append({"key": key, "path": paths[key], "calls": calls})
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    return {"root": root, "paths": paths, "manifest": str(manifest_path), "expected": expected}


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, (
        f"{command} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def blocked_runs(exports):
    """Two fresh processes, each with TFP, Keras, tf_keras and our packages blocked, run every signature call."""
    folders = [exports["root"] / f"blocked-run-{index}" for index in range(2)]
    processes = []
    for out in folders:  # concurrently: two independent processes, and less wall time on 2 cores
        out.mkdir()
        processes.append(
            subprocess.Popen(
                [sys.executable, HELPER, exports["manifest"], str(out)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    runs = []
    for out, process in zip(folders, processes):
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, (
            f"blocked reload failed ({process.returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}"
        )
        report = json.loads((out / "report.json").read_text())
        runs.append((report, {key: dict(np.load(out / f"{key}.npz")) for key in exports["paths"]}))
    return runs


# ------------------------------------------------------------------------------------------------------------
def test_exports_land_in_tf_serving_layout(exports):
    for key, path in exports["paths"].items():
        assert path == str(exports["root"] / "saved_models" / key / "1")
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        assert os.path.isdir(os.path.join(path, "variables"))
        siblings = os.listdir(os.path.dirname(path))
        assert siblings == ["1"], f"temporary folders left beside the export: {siblings}"


def test_reload_without_tfp_keras_or_our_packages(exports, blocked_runs):
    for report, _ in blocked_runs:
        assert report["blocked_still_none"], report
        assert report["loaded_modules"] == [], report["loaded_modules"]
        for key in exports["paths"]:
            expected = {"decode", "encode", "log_prob", "sample", "sample_and_log_prob", "serving_default"}
            if key == "glow":
                expected.add("bits_per_dim")
            assert set(report["signatures"][key]) == expected, (key, report["signatures"][key])


@pytest.mark.parametrize("key", ["realnvp", "glow", "flowpp", "composed", "base-gmm", "base-student-t"])
def test_every_signature_matches_the_in_memory_model(exports, blocked_runs, key):
    expected = exports["expected"][key]
    for _, outputs in blocked_runs:
        got = outputs[key]
        assert set(got) == set(expected), (sorted(got), sorted(expected))
        for name, value in expected.items():
            assert got[name].dtype == value.dtype and got[name].shape == value.shape, (name, got[name].shape)
            np.testing.assert_allclose(got[name], value, **TOLERANCE, err_msg=f"{key}: {name}")
            assert np.all(np.isfinite(got[name])), name


@pytest.mark.parametrize("key", ["realnvp", "glow", "flowpp", "composed"])
def test_samples_depend_only_on_the_seed(exports, blocked_runs, key):
    (_, first), (_, second) = blocked_runs
    for call in SAMPLE_CALLS:
        np.testing.assert_array_equal(
            first[key][f"{call}/samples"],
            second[key][f"{call}/samples"],
            err_msg=f"{key}: {call} differs between two processes",
        )
    np.testing.assert_array_equal(first[key]["sample_a/samples"], first[key]["sample_a_again/samples"])
    assert not np.allclose(first[key]["sample_a/samples"], first[key]["sample_b/samples"]), "seed ignored"
    # Temperature 0 puts every draw at f(0), whatever the seed.
    t0 = first[key]["sample_t0/samples"]
    np.testing.assert_allclose(t0, np.broadcast_to(t0[:1], t0.shape), rtol=0, atol=1e-6)


def test_saved_model_cli_shows_every_signature_with_dtypes_and_shapes(exports):
    text = _run([SAVED_MODEL_CLI, "show", "--all", "--dir", exports["paths"]["glow"]]).stdout
    image = "(-1, 8, 8, 1)"
    expected = {
        "serving_default": ({"x": ("DT_FLOAT", image)}, {"log_prob": ("DT_FLOAT", "(-1)")}),
        "log_prob": ({"x": ("DT_FLOAT", image)}, {"log_prob": ("DT_FLOAT", "(-1)")}),
        "bits_per_dim": ({"x": ("DT_FLOAT", image)}, {"bits_per_dim": ("DT_FLOAT", "(-1)")}),
        "encode": ({"x": ("DT_FLOAT", image)}, {"z": ("DT_FLOAT", image)}),
        "decode": ({"z": ("DT_FLOAT", image)}, {"x": ("DT_FLOAT", image)}),
        "sample": (
            {"num_samples": ("DT_INT32", "()"), "temperature": ("DT_FLOAT", "()"), "seed": ("DT_INT32", "(2)")},
            {"samples": ("DT_FLOAT", image)},
        ),
        "sample_and_log_prob": (
            {"num_samples": ("DT_INT32", "()"), "temperature": ("DT_FLOAT", "()"), "seed": ("DT_INT32", "(2)")},
            {"samples": ("DT_FLOAT", image), "log_prob": ("DT_FLOAT", "(-1)")},
        ),
    }
    for name, (inputs, outputs) in expected.items():
        block = re.search(rf"signature_def\['{name}'\]:\n(.*?)Method name is: (\S+)", text, re.S)
        assert block, f"signature {name!r} missing from saved_model_cli show --all"
        assert block.group(2) == "tensorflow/serving/predict"
        for kind, tensors in (("inputs", inputs), ("outputs", outputs)):
            found = {
                key: (dtype, shape)
                for key, dtype, shape in re.findall(
                    rf"{kind}\['(\w+)'\] tensor_info:\n\s+dtype: (\w+)\n\s+shape: ([^\n]+)", block.group(1)
                )
            }
            assert found == tensors, (name, kind, found)


def test_saved_model_cli_runs_log_prob_on_a_npy_file(exports, tmp_path):
    x = np.random.default_rng(5).normal(size=(4, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    _run(
        [
            SAVED_MODEL_CLI,
            "run",
            "--dir",
            exports["paths"]["realnvp"],
            "--tag_set",
            "serve",
            "--signature_def",
            "log_prob",
            "--inputs",
            f"x={tmp_path / 'x.npy'}",
            "--outdir",
            str(out),
        ]
    )
    log_prob = np.load(out / "log_prob.npy")
    reference = tf.saved_model.load(exports["paths"]["realnvp"]).signatures["log_prob"](x=tf.constant(x))
    np.testing.assert_allclose(log_prob, reference["log_prob"].numpy(), **TOLERANCE)
    assert log_prob.shape == (4,)


def _graph_ops(path):
    """{function name (or "<graph>"): set of op types} of a SavedModel, function libraries included."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    (meta_graph,) = saved_model.meta_graphs
    graph = meta_graph.graph_def
    ops = {"<graph>": {node.op for node in graph.node}}
    for function in graph.library.function:
        ops[function.signature.name] = {node.op for node in function.node_def}
    return ops


def assert_servable_graph(path):
    """Every op of the SavedModel at `path` is a registered core TF op; no Python callbacks, no stateful RNG."""
    ops_by_function = _graph_ops(path)
    functions = set(ops_by_function) - {"<graph>"}
    assert any(fn.startswith("__inference_sample") for fn in functions)
    all_ops = set().union(*ops_by_function.values())
    assert all_ops & {"StatelessRandomNormalV2", "StatelessRandomUniformV2"}, "no stateless sampling op"
    for function, ops in ops_by_function.items():
        for op in ops - functions:  # an op may name another function of the library
            op_def = op_def_registry.get(op)
            assert op_def is not None, f"{function}: {op} is not a registered TensorFlow op"
            assert op not in PYTHON_CALLBACK_OPS, f"{function}: {op} calls back into Python"
            # By statefulness, not name: RandomGammaGrad (in the gradient of TFP's gamma sampler, which a
            # Student-t base brings) is a deterministic derivative of a stateless draw.
            assert not ("Random" in op and op_def.is_stateful), f"{function}: stateful random op {op}"
            if op_def.is_stateful and op not in ALLOWED_STATEFUL_OPS:
                # Writes and checkpoint I/O belong only to the save/restore functions TF adds, never to a signature.
                assert op in CHECKPOINT_OPS and re.search(r"_traced_(save|restore)", function), (
                    f"{function}: stateful op {op}"
                )


@pytest.mark.parametrize("key", ["realnvp", "glow", "flowpp", "composed", "base-gmm", "base-student-t"])
def test_graphs_hold_only_core_tensorflow_ops_without_stateful_randomness(exports, key):
    assert_servable_graph(exports["paths"][key])
