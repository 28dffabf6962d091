"""What keeps a folder that TF Serving watches valid: atomic versions, no overwrites, no NaN models, models.config.

TF Serving polls `<base>/<name>/` and loads the highest all-digit subfolder as soon as it appears, so a version
must appear complete or not at all, and an existing version must never change under a running server.
"""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.lib.io import file_io

from keras_models import RealNVP
from keras_models.serving.export import (
    MODELS_CONFIG_FILE,
    export_distribution,
    export_saved_model,
    list_versions,
    load_serving_model,
    write_models_config,
)

X = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)


def _model(seed=1, name="flow"):
    model = RealNVP((2,), num_couplings=1, hidden_units=(4,), name=name)
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype(weight.dtype))
    return model


def _served_log_prob(path):
    return load_serving_model(path).signatures["log_prob"](x=tf.constant(X))["log_prob"].numpy()


def _entries(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


# ------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_versions_increment_and_the_newest_is_loaded(tmp_path):
    first, second = _model(seed=1), _model(seed=2)
    assert export_saved_model(first, base_dir=str(tmp_path)) == str(tmp_path / "flow" / "1")
    assert export_saved_model(first, base_dir=str(tmp_path), version=5) == str(tmp_path / "flow" / "5")
    assert export_saved_model(second, base_dir=str(tmp_path)) == str(tmp_path / "flow" / "6")
    assert [v for v, _ in list_versions(str(tmp_path / "flow"))] == [1, 5, 6]
    np.testing.assert_allclose(_served_log_prob(str(tmp_path / "flow")), second.log_prob(X).numpy(), rtol=1e-5)
    np.testing.assert_allclose(_served_log_prob(str(tmp_path / "flow" / "1")), first.log_prob(X).numpy(), rtol=1e-5)
    assert not np.allclose(first.log_prob(X).numpy(), second.log_prob(X).numpy())  # the check can tell them apart


@pytest.mark.slow
def test_an_existing_version_is_never_overwritten(tmp_path):
    model = _model()
    path = export_saved_model(model, base_dir=str(tmp_path), name="kept", version=2)
    before = {name: pathlib.Path(path, name).read_bytes() for name in ("saved_model.pb",)}
    with pytest.raises(FileExistsError, match="kept/2"):
        export_saved_model(_model(seed=3), base_dir=str(tmp_path), name="kept", version=2)
    assert before == {name: pathlib.Path(path, name).read_bytes() for name in before}
    # An empty folder counts too: os.rename alone would silently replace it.
    os.makedirs(tmp_path / "kept" / "3")
    with pytest.raises(FileExistsError, match="kept/3"):
        export_saved_model(model, base_dir=str(tmp_path), name="kept", version=3)
    assert _entries(tmp_path / "kept") == ["2", "3"]
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        export_distribution(model.distribution, (2,), path)


@pytest.mark.slow
def test_a_version_taken_meanwhile_moves_an_automatic_export_to_the_next_one(tmp_path, monkeypatch):
    """Two exporters racing for the same automatic version: the later rename takes the next number."""
    model = _model()
    export_saved_model(model, base_dir=str(tmp_path))
    real_list_versions, calls = list_versions, []

    def stale_first_view(model_dir):  # the exporter's first look says "no versions yet"
        calls.append(model_dir)
        return [] if len(calls) == 1 else real_list_versions(model_dir)

    monkeypatch.setattr("keras_models.serving.export.list_versions", stale_first_view)
    assert export_saved_model(model, base_dir=str(tmp_path)) == str(tmp_path / "flow" / "2")
    assert _entries(tmp_path / "flow") == ["1", "2"]


@pytest.mark.slow
def test_an_export_failing_midway_leaves_no_partial_version(tmp_path, monkeypatch):
    written_before_failure = []

    def fail_while_writing(path, contents, *args, **kwargs):
        # Called for saved_model.pb after variables/ was written: the export is half done.
        folder = os.path.dirname(path)
        written_before_failure.extend(_entries(os.path.join(folder, "variables")))
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(file_io, "atomic_write_string_to_file", fail_while_writing)
    with pytest.raises(OSError, match="simulated"):
        export_saved_model(_model(), base_dir=str(tmp_path), name="broken")
    assert any(name.startswith("variables.data") for name in written_before_failure), written_before_failure
    assert _entries(tmp_path / "broken") == [], "partial export left behind"
    assert not os.path.exists(tmp_path / MODELS_CONFIG_FILE)


@pytest.mark.slow
def test_an_export_killed_midway_leaves_no_version_folder(tmp_path):
    """SIGKILL during the write (no cleanup can run): only a hidden temporary folder, which TF Serving ignores."""
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from tensorflow.python.lib.io import file_io
        from keras_models import RealNVP
        from keras_models.serving.export import export_saved_model
        def die(path, contents, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        file_io.atomic_write_string_to_file = die
        export_saved_model(RealNVP((2,), num_couplings=1, hidden_units=(4,), name="killed"), base_dir={str(tmp_path)!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    leftovers = _entries(tmp_path / "killed")
    assert leftovers and all(name.startswith(".") for name in leftovers), leftovers
    assert list_versions(str(tmp_path / "killed")) == []
    with pytest.raises(FileNotFoundError, match="killed"):
        load_serving_model(str(tmp_path / "killed"))


def test_non_finite_weights_are_refused(tmp_path):
    model = _model()
    weight = model.trainable_weights[0]
    weight.assign(np.full(weight.shape, np.nan, weight.dtype))
    with pytest.raises(ValueError, match="non-finite weights") as error:
        export_saved_model(model, base_dir=str(tmp_path))
    assert weight.path in str(error.value)
    assert _entries(tmp_path) in ([], ["flow"]) and list_versions(str(tmp_path / "flow")) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "../escape"}, "`name`"),
        ({"name": "123"}, "`name`"),
        ({"name": ".hidden"}, "`name`"),
        ({"version": 0}, "`version`"),
        ({"version": True}, "`version`"),
        ({"version": "2"}, "`version`"),
    ],
)
def test_bad_names_and_versions_are_rejected(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_saved_model(_model(), base_dir=str(tmp_path), **kwargs)
    assert list_versions(str(tmp_path / "flow")) == []


def test_missing_and_corrupt_exports_give_errors_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_serving_model(str(tmp_path / "nowhere"))
    os.makedirs(tmp_path / "empty" / "notes")
    with pytest.raises(FileNotFoundError, match="empty"):
        load_serving_model(str(tmp_path / "empty"))
    os.makedirs(tmp_path / "incomplete" / "4" / "variables")
    with pytest.raises(ValueError, match="incomplete/4"):
        load_serving_model(str(tmp_path / "incomplete"))
    os.makedirs(tmp_path / "corrupt" / "1")
    (tmp_path / "corrupt" / "1" / "saved_model.pb").write_bytes(b"\x00not a protobuf\xff" * 4)
    with pytest.raises(ValueError, match="corrupt/1"):
        load_serving_model(str(tmp_path / "corrupt"))
    with pytest.raises(ValueError, match="saved_model.pb' is a file"):
        load_serving_model(str(tmp_path / "corrupt" / "1" / "saved_model.pb"))


@pytest.mark.slow
def test_models_config_lists_every_model_and_parses_with_the_serving_protos(tmp_path):
    config_pb2 = pytest.importorskip(
        "tensorflow_serving.config.model_server_config_pb2",
        reason="tensorflow-serving-api (optional extra `serving`) is not installed: cannot parse models.config",
    )
    from google.protobuf import text_format

    model = _model()
    export_saved_model(model, base_dir=str(tmp_path), name="moons")
    export_saved_model(model, base_dir=str(tmp_path), name="rings-2")
    os.makedirs(tmp_path / "not-a-model" / "notes")  # no version folder: not listed
    path = tmp_path / MODELS_CONFIG_FILE
    assert path.exists(), "export_saved_model did not write models.config"

    def parsed(file):
        return text_format.Parse(file.read_text(), config_pb2.ModelServerConfig())

    configs = parsed(path).model_config_list.config
    assert [(c.name, c.base_path, c.model_platform) for c in configs] == [
        ("moons", "/models/moons", "tensorflow"),
        ("rings-2", "/models/rings-2", "tensorflow"),
    ]
    local = tmp_path / "local.config"
    write_models_config(str(tmp_path), model_base_path=None, path=str(local))
    assert [c.base_path for c in parsed(local).model_config_list.config] == [
        str(tmp_path / "moons"),
        str(tmp_path / "rings-2"),
    ]
    # A hand-edited file is left alone by later exports.
    path.write_text(
        'model_config_list { config { name: "moons" base_path: "/srv/moons" model_platform: "tensorflow" } }\n'
    )
    export_saved_model(model, base_dir=str(tmp_path), name="later")
    assert [c.base_path for c in parsed(path).model_config_list.config] == ["/srv/moons"]
    with pytest.raises(ValueError, match="no exported models"):
        write_models_config(str(tmp_path / "not-a-model"))


def test_export_distribution_checks_its_arguments(tmp_path):
    model = _model()
    with pytest.raises(TypeError, match="`distribution`"):
        export_distribution(model, (2,), str(tmp_path / "a"))
    with pytest.raises(ValueError, match="`event_shape`"):
        export_distribution(model.distribution, (3,), str(tmp_path / "b"))
    with pytest.raises(ValueError, match="`num_bits`"):
        export_distribution(model.distribution, (2,), str(tmp_path / "c"), num_bits=0)
    assert _entries(tmp_path) == []
