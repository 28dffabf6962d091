"""tf.distribute: two replicas give the single-device step, and a two-worker cluster trains with one writer.

TensorFlow fixes its devices (and a multi-worker cluster) when it initialises, so each check runs in fresh
processes: tests/scripts/mirrored_equivalence.py configures two logical CPU devices for MirroredStrategy, and
two `tfp-flows train --strategy multiworker` processes form a cluster through TF_CONFIG on 127.0.0.1.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # runs replicas and workers in fresh Python processes

SCRIPTS = pathlib.Path(__file__).parent / "scripts"
TIMEOUT_S = 300


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)  # the repository root must not shadow the installed packages
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------------------------------
# MirroredStrategy over two logical CPU devices == one device, for the same global batch.
@pytest.fixture(scope="module")
def one_step_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "results.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "mirrored_equivalence.py"), str(out)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(out.read_text())


def _assert_same_arrays(reference, other, names, what, rtol=1e-5, atol=1e-5):
    assert len(reference) == len(other) == len(names)
    for name, a, b in zip(names, reference, other):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=rtol, atol=atol, err_msg=f"{what}: {name}")


@pytest.mark.parametrize("model_name", ["realnvp", "glow"])
@pytest.mark.parametrize("setting", ["mirrored", "from_function"])
def test_two_replicas_give_the_single_device_loss_and_gradients(one_step_results, model_name, setting):
    single = one_step_results[model_name]["one_device"]
    replicated = one_step_results[model_name][setting]
    assert single["num_replicas"] == 1 and replicated["num_replicas"] == 2
    np.testing.assert_allclose(replicated["loss"], single["loss"], rtol=1e-5)
    _assert_same_arrays(single["start"], replicated["start"], single["names"], "weights when training starts")
    _assert_same_arrays(single["gradient"], replicated["gradient"], single["names"], "gradient")
    # The comparison has teeth: the step moved every trainable weight (the script perturbs zero inits).
    for name, gradient, trainable in zip(single["names"], single["gradient"], single["trainable"]):
        assert not trainable or np.abs(np.asarray(gradient)).max() > 1e-4, f"no gradient reached {name}"


@pytest.mark.parametrize("setting", ["one_device", "mirrored", "from_function"])
def test_actnorm_is_initialised_from_the_whole_global_batch(one_step_results, setting):
    """Glow's first ActNorm standardises exactly the global batch: it saw all of it, not one replica's half."""
    mean, std = one_step_results["glow"][setting]["first_layer_moments"]
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(std, 1.0, atol=1e-4)
    names = one_step_results["glow"][setting]["names"]
    start = one_step_results["glow"][setting]["start"]
    loc = next(np.asarray(w) for n, w in zip(names, start) if n.endswith("/loc"))
    assert np.abs(loc).max() > 0.1  # the init ran (loc starts at zero)


# ------------------------------------------------------------------------------------------------------------
# MultiWorkerMirroredStrategy: two local workers, only the chief writes.
def _free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _last_epoch_line(stdout):
    return [line for line in stdout.splitlines() if line.startswith("epoch ")][-1]


def test_two_workers_train_together_and_only_the_chief_writes(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    args = [
        "train",
        "--strategy",
        "multiworker",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "3",
        "--batch-size",
        "32",
        "--model-args",
        json.dumps({"num_couplings": 2, "hidden_units": [8, 8]}),
        "--quiet",
        "--run-dir",
        "runs",
        "--export-dir",
        "exports",
        "--name",
        "two-workers",
    ]
    worker_tmp = [tmp_path / f"tmp{index}" for index in range(2)]
    processes = []
    try:
        for index in range(2):
            worker_tmp[index].mkdir()
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "keras_models.cli", *args],
                    cwd=tmp_path,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=_env(TF_CONFIG=tf_config, TMPDIR=str(worker_tmp[index])),
                )
            )
        outputs = [process.communicate(timeout=TIMEOUT_S) for process in processes]
    finally:
        for process in processes:  # a hung collective must not outlive the test
            if process.poll() is None:
                process.kill()
                process.wait()
    for index, (process, (stdout, stderr)) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"worker {index}:\n{stdout}\n{stderr[-4000:]}"
    # Synchronous data parallelism: both workers report the same (globally reduced) epoch metrics.
    assert _last_epoch_line(outputs[0][0]).startswith("epoch 2/2")
    assert _last_epoch_line(outputs[0][0]).split("(")[0] == _last_epoch_line(outputs[1][0]).split("(")[0]

    runs = [d for d in (tmp_path / "runs").iterdir()]
    assert len(runs) == 1, runs  # the worker's run folder was never created
    run_dir = runs[0]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["stop_reason"] == "completed" and metrics["epochs"] == 2 and metrics["steps"] == 6
    assert metrics["num_replicas"] == 2  # one cluster of two replicas, not two independent runs
    backup = sorted(p.name for p in (run_dir / "backup").iterdir())
    assert backup == ["epoch-000002.weights.h5", "state.json"], backup
    assert (run_dir / "model.keras").is_file()
    versions = sorted(p.name for p in (tmp_path / "exports" / "two-workers").iterdir())
    assert versions == ["1"], versions  # one export, by the chief
    assert "SavedModel:" in outputs[0][0] and "SavedModel:" not in outputs[1][0]
    # The non-chief's backups went to a private temporary folder, removed when training ended.
    assert list(worker_tmp[1].iterdir()) == []
