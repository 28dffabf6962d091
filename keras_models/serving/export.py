"""SavedModels for TF Serving: `log_prob`, `bits_per_dim`, `sample`, `sample_and_log_prob`, `encode`, `decode`.

Layout (TF Serving's; it serves the highest integer version and ignores every other name):

    saved_models/<name>/<version>/saved_model.pb, variables/        version = 1, 2, 3, ...
    saved_models/models.config                                      model_config_list for --model_config_file

Signatures (x: data, z: latent; every dtype fixed, the batch dimension free; T = the model's float dtype):

    serving_default, log_prob   x [None, *event_shape] T            -> log_prob [None] T (nats)
    bits_per_dim (image models) x [None, *event_shape] T            -> bits_per_dim [None] T
    sample                      num_samples [] int32, temperature [] float32, seed [2] int32
                                                                    -> samples [num_samples, *event_shape] T
    sample_and_log_prob         the inputs of `sample`              -> samples (as `sample`), log_prob [num_samples] T
    encode                      x [None, *event_shape] T            -> z [None, *latent_shape] T   (z = f^-1(x))
    decode                      z [None, *latent_shape] T           -> x [None, *event_shape] T    (x = f(z))

Conditional models (`context_shape=...`) take one more named input in every signature, the context
`context [None, *context_shape] T`: one row per example of `x`/`z`, or per sample (its batch must equal
`num_samples`, else InvalidArgument), e.g. log_prob(x, context) -> log p(x | context).

`sample` draws z ~ p_Z with stateless random ops keyed by `seed` and returns f(temperature * z) (Glow's
temperature, Kingma & Dhariwal 2018 sec. 5), so one seed gives the same samples in every process and on
every replica of a server. `sample_and_log_prob` returns the same samples with the model's log-density at
them (log p_Z(z) - log|det df/dz|, one forward pass, no inverse; at temperature != 1 still the model's density,
not the tempered sampler's). The graphs hold only core TensorFlow ops (TFP's maths is traced into ordinary
ops), so the export loads with TensorFlow alone: no tensorflow_probability, keras or this project.

The export is a plain `tf.Module` that tracks the variables the traced functions read, not the Keras model:
nothing Keras-specific is serialised. It is written to a hidden temporary folder beside the target and
renamed into place, so TF Serving, which polls `<name>/`, never sees a half-written version.

Example:
    >>> import os, tempfile
    >>> import tensorflow as tf
    >>> from keras_models import RealNVP
    >>> from keras_models.serving.export import export_saved_model, load_serving_model
    >>> model = RealNVP(event_shape=(2,), num_couplings=2, hidden_units=(8,), name="moons")
    >>> base_dir = tempfile.mkdtemp()                                   # "saved_models" in a project
    >>> os.path.relpath(export_saved_model(model, base_dir=base_dir), base_dir)
    'moons/1'
    >>> served = load_serving_model(os.path.join(base_dir, "moons"))   # newest version
    >>> served.signatures["log_prob"](x=tf.zeros([3, 2]))["log_prob"].shape
    TensorShape([3])
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from keras_models.core.io import atomic_write_text, non_finite_weights
from tfp_flows.validation import check_int, check_positive_ints

if TYPE_CHECKING:
    from tensorflow_probability import distributions as tfd

    from keras_models.core.flow_model import FlowModel

SAVED_MODEL_FILE = "saved_model.pb"
METADATA_FILE = os.path.join("assets.extra", "tfp_flows.json")
MODELS_CONFIG_FILE = "models.config"
MODELS_CONFIG_MARKER = "# Written by keras_models.export.write_models_config"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TEMPORARY_PREFIX = ".tmp-export-"


# --------------------------------------------------------------------------------------------------------
# Public API.
def export_saved_model(
    model: FlowModel,
    base_dir: str | os.PathLike = "saved_models",
    name: str | None = None,
    version: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Write `model` (a `FlowModel`) as `base_dir/<name>/<version>/` and return that path.

    Args:
      model: a `keras_models.FlowModel` (any preset).
      base_dir: TF Serving's model base folder (created if missing).
      name: model name, the folder under `base_dir` (letters, digits, `.`, `_`, `-`); default `model.name`.
      version: positive int, or None for one more than the highest version present (1 for a new model).
      metadata: JSON-able facts about the model for the tools that read the export (the training split's
        log-density quantiles for `tfp-flows score`), written with the column names of a tabular model (the
        pixel levels of an image model) to
        `<version>/assets.extra/tfp_flows.json` (TF Serving ignores that folder; `read_export_metadata` reads it).

    Refuses non-finite weights (ValueError) and never overwrites an existing version (FileExistsError).
    `base_dir/models.config` is refreshed afterwards unless someone else wrote it (see `write_models_config`).
    """
    name = _check_name(model.name if name is None else name)
    bad = non_finite_weights(model)
    if bad:
        raise ValueError(
            f"refusing to export model {name!r}: non-finite weights (NaN or inf) in "
            f"{bad[:5]}{' and more' if len(bad) > 5 else ''}"
        )

    functions = _serving_functions(model)
    model_dir = os.path.join(base_dir, name)
    facts = dict(metadata or {})
    if getattr(model, "standardization", None):
        facts.setdefault("columns", list(model.standardization["columns"]))
        facts.setdefault("log_columns", list(model.standardization.get("log_columns", [])))
    if getattr(model, "num_bits", None):
        facts.setdefault("pixel_levels", int(model.pixel_levels))  # bits/dim of scored images on their own levels
    path = _save_new_version(
        functions, model_dir, version, extra_variables=[_tf_variable(w) for w in model.weights], metadata=facts
    )
    _refresh_models_config(base_dir)
    return path


def export_distribution(
    distribution: tfd.TransformedDistribution,
    event_shape: Sequence[int],
    path: str | os.PathLike,
    num_bits: int | None = None,
) -> str:
    """Export a `tfd.TransformedDistribution` (our bijectors, TFP's, or both) with the same signatures.

    Args:
      distribution: a `tfd.TransformedDistribution` with a scalar batch shape; sampling scales the base's
        sample by `temperature` (Glow's temperature when the base is centred) before the bijector's forward.
      event_shape: the data's event shape, e.g. (2,) or (8, 8, 1).
      path: the SavedModel folder to create, e.g. `saved_models/my-flow/1` (must not exist; written atomically).
      num_bits: bit depth of image data in [0, 1] to add the `bits_per_dim` signature; None: no such signature.

    Every variable the signatures read (found by tracing, wherever it lives: a TFP bijector, a Keras layer used as
    a conditioner) is stored with the graphs.

    Example:
        >>> import tensorflow_probability as tfp, tfp_flows
        >>> flow = tfp.distributions.TransformedDistribution(
        ...     tfp.distributions.Sample(tfp.distributions.Normal(0., 1.), [2]),
        ...     tfp.bijectors.Chain([tfp_flows.PReLU(alpha=0.5), tfp.bijectors.Shift([1., -1.])]))
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "prelu", "1")       # "saved_models/prelu/1" in a project
        >>> export_distribution(flow, event_shape=(2,), path=path) == path
        True
    """
    import tensorflow_probability as tfp

    # Duck-typed: TFP hands back a private `_TransformedDistribution` when a part is not a CompositeTensor.
    if not (
        isinstance(distribution, tfp.distributions.Distribution)
        and hasattr(distribution, "bijector")
        and hasattr(distribution, "distribution")
    ):
        raise TypeError(f"`distribution` must be a tfd.TransformedDistribution; received {type(distribution).__name__}")
    event_shape = _check_event_shape(event_shape)
    if distribution.event_shape.is_fully_defined() and tuple(distribution.event_shape.as_list()) != event_shape:
        raise ValueError(
            f"`event_shape` {event_shape} does not match the distribution's event shape "
            f"{distribution.event_shape.as_list()}"
        )
    if distribution.batch_shape.rank != 0:
        raise ValueError(
            f"`distribution` must have a scalar batch shape (one flow); received batch shape {distribution.batch_shape}"
        )
    check_int(num_bits, "num_bits", allow_none=True)
    functions = _serving_functions(_DistributionAsModel(distribution, event_shape, num_bits))
    path = os.fspath(path)
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing export", path)
    return _save_atomically(functions, path, extra_variables=distribution.variables)


def load_serving_model(path: str | os.PathLike) -> Any:
    """Load `path`: a SavedModel folder, or a model folder `<base>/<name>` (its highest integer version).

    Returns the object `tf.saved_model.load` returns; call `.signatures["log_prob"](x=batch)["log_prob"]`.
    Raises FileNotFoundError for a missing path or a folder without versions, ValueError for a corrupt one.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no SavedModel or model folder at this path", path)
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is a file; expected a SavedModel folder or a model folder <base>/<name>")
    target = path
    if not os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        versions = list_versions(path)
        if not versions:
            raise FileNotFoundError(
                errno.ENOENT,
                f"neither a SavedModel (no {SAVED_MODEL_FILE}) nor a model folder with integer version subfolders",
                path,
            )
        target = os.path.join(path, versions[-1][1])
        if not os.path.isfile(os.path.join(target, SAVED_MODEL_FILE)):
            raise ValueError(
                f"the newest version folder {target!r} holds no {SAVED_MODEL_FILE}: an incomplete or "
                "corrupt export (TF Serving would fail on it too); remove it or load an older version"
            )
    try:
        return tf.saved_model.load(target)
    except Exception as err:  # TF raises many types (DecodeError, OSError, NotFoundError, ...): name the path.
        raise ValueError(
            f"cannot load the SavedModel at {target!r} (corrupt or incomplete export): {type(err).__name__}: {err}"
        ) from err


def read_export_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The facts `export_saved_model(metadata=...)` stored beside the SavedModel at `path` (a SavedModel folder, or
    a model folder: its newest version); {} when there are none (an export of an image model, an older export)."""
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        versions = list_versions(path)
        path = os.path.join(path, versions[-1][1]) if versions else path
    file = os.path.join(path, METADATA_FILE)
    if not os.path.isfile(file):
        return {}
    with open(file, encoding="utf-8") as handle:
        return json.load(handle)


def list_versions(model_dir: str | os.PathLike) -> list[tuple[int, str]]:
    """`[(version, folder_name), ...]` of `model_dir`'s integer-named subfolders, lowest version first."""
    if not os.path.isdir(model_dir):
        return []
    entries = [
        (int(entry), entry)
        for entry in os.listdir(model_dir)
        if entry.isascii() and entry.isdigit() and os.path.isdir(os.path.join(model_dir, entry))
    ]
    return sorted(entries)


def write_models_config(
    base_dir: str | os.PathLike = "saved_models",
    model_base_path: str | None = "/models",
    path: str | os.PathLike | None = None,
) -> str:
    """Write TF Serving's `models.config` (a `ModelServerConfig` text proto) listing every model in `base_dir`.

    Args:
      base_dir: folder of `<name>/<version>/` exports.
      model_base_path: where `base_dir` appears to the server: "/models" for the official container with
        `-v "$PWD/saved_models:/models"`; None for `base_dir`'s absolute path on this machine.
      path: output file (default `base_dir/models.config`), written atomically.

    Returns the path written. Each entry serves the model's newest version (TF Serving's default policy).
    """
    if not os.path.isdir(base_dir):
        raise FileNotFoundError(errno.ENOENT, "no exports folder at this path", os.fspath(base_dir))
    names = [
        entry
        for entry in sorted(os.listdir(base_dir))
        if _NAME_PATTERN.fullmatch(entry)
        and any(
            os.path.isfile(os.path.join(base_dir, entry, v, SAVED_MODEL_FILE))
            for _, v in list_versions(os.path.join(base_dir, entry))
        )
    ]
    if not names:
        raise ValueError(
            f"no exported models under {base_dir!r} (expected <name>/<integer version>/{SAVED_MODEL_FILE})"
        )
    root = os.path.abspath(base_dir) if model_base_path is None else str(model_base_path).rstrip("/")
    lines = [
        MODELS_CONFIG_MARKER + f" from {os.fspath(base_dir)!r}; edit freely (then it is left alone).",
        "model_config_list {",
    ]
    for name in names:
        lines += [
            "  config {",
            f"    name: {_proto_string(name)}",
            f"    base_path: {_proto_string(root + '/' + name)}",
            '    model_platform: "tensorflow"',
            "  }",
        ]
    lines.append("}")
    path = os.path.join(base_dir, MODELS_CONFIG_FILE) if path is None else path
    atomic_write_text(path, "\n".join(lines) + "\n")
    os.chmod(path, 0o644)  # the temporary file was private; a server running as another user must read it
    return path


# --------------------------------------------------------------------------------------------------------
# The traced functions and the module that carries them.
class _ServingFunctions:
    """The signature functions, traced once with fixed input signatures (dtypes and shapes, batch free).

    With a `context_shape` (a conditional model) every signature takes one more named input, `context`
    [None, *context_shape], and every function given here takes the context as its last argument.
    """

    def __init__(
        self,
        log_prob: Callable[..., tf.Tensor],
        encode: Callable[..., tf.Tensor],
        decode: Callable[..., tf.Tensor],
        sample: Callable[..., tf.Tensor],
        bits_per_dim: Callable[..., tf.Tensor] | None,
        event_shape: Sequence[int],
        latent_shape: Sequence[int],
        dtype: tf.DType,
        sample_and_log_prob: Callable[..., tuple[tf.Tensor, tf.Tensor]] | None = None,
        context_shape: Sequence[int] | None = None,
    ):
        x_spec = tf.TensorSpec([None, *event_shape], dtype, name="x")
        z_spec = tf.TensorSpec([None, *latent_shape], dtype, name="z")
        context_specs = [] if context_shape is None else [tf.TensorSpec([None, *context_shape], dtype, name="context")]
        sample_specs = [
            tf.TensorSpec([], tf.int32, name="num_samples"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([2], tf.int32, name="seed"),
            *context_specs,
        ]

        def per_example(key, function, output, what, spec):
            """Signature `key`: {output: function(data, *context)}, the context checked to hold one row per `what`."""

            def signature(data, *context):
                # A mismatch fails with InvalidArgument (TF Serving answers 400).
                checks = [
                    tf.debugging.assert_equal(
                        tf.shape(c)[0], tf.shape(data)[0], message=f"`context` must have one row per {what}"
                    )
                    for c in context
                ]
                with tf.control_dependencies(checks):
                    context = [tf.identity(c) for c in context]
                return {output: function(data, *context)}

            signature.__name__ = f"{key}_fn"  # the graph's function: __inference_<key>_fn_<id>
            return tf.function(signature, input_signature=[spec, *context_specs])

        def sampling(key, function, outputs):
            """Signature `key`: `outputs` named onto function(num_samples, temperature, seed, *context), after checking
            the inputs."""

            def signature(num_samples, temperature, seed, *context):
                # Bad requests fail with InvalidArgument (TF Serving answers 400), not a silent empty or NaN batch.
                checks = [
                    tf.debugging.assert_positive(num_samples, message="`num_samples` must be >= 1"),
                    tf.debugging.assert_non_negative(temperature, message="`temperature` must be >= 0"),
                    tf.debugging.assert_all_finite(temperature, message="`temperature` must be finite"),
                ] + [
                    tf.debugging.assert_equal(
                        tf.shape(c)[0], num_samples, message="`context` must have one row per sample (num_samples rows)"
                    )
                    for c in context
                ]
                with tf.control_dependencies(checks):
                    num_samples, temperature = tf.identity(num_samples), tf.identity(temperature)
                    context = [tf.identity(c) for c in context]
                values = function(num_samples, temperature, seed, *context)
                return dict(zip(outputs, values if len(outputs) > 1 else (values,)))

            signature.__name__ = f"{key}_fn"  # the graph's function: __inference_<key>_fn_<id>
            return tf.function(signature, input_signature=sample_specs)

        self.functions = {
            "log_prob": per_example("log_prob", log_prob, "log_prob", "example", x_spec),
            "sample": sampling("sample", sample, ("samples",)),
            "encode": per_example("encode", encode, "z", "example", x_spec),
            "decode": per_example("decode", decode, "x", "latent", z_spec),
        }
        if sample_and_log_prob is not None:
            self.functions["sample_and_log_prob"] = sampling(
                "sample_and_log_prob", sample_and_log_prob, ("samples", "log_prob")
            )
        if bits_per_dim is not None:
            self.functions["bits_per_dim"] = per_example(
                "bits_per_dim", bits_per_dim, "bits_per_dim", "example", x_spec
            )

    def module(self, extra_variables: Sequence[tf.Variable] = ()) -> tuple[tf.Module, dict[str, Any]]:
        """A `tf.Module` holding every variable the traced functions read, and the signatures to save with it."""
        concrete = {key: fn.get_concrete_function() for key, fn in self.functions.items()}
        signatures = dict(concrete, serving_default=concrete["log_prob"])
        # Only the signatures are saved: also attaching the tf.functions as attributes would store every
        # graph twice (double the size and the save time) for no gain to TF Serving.
        module = tf.Module()
        module.flow_variables = _unique(
            [v for fn in concrete.values() for v in fn.variables]
            + [v for v in extra_variables if isinstance(v, tf.Variable)]
        )
        return module, signatures


def _serving_functions(model: FlowModel | _DistributionAsModel) -> _ServingFunctions:
    """The signature functions of a `FlowModel` (or of a distribution dressed as one, `_DistributionAsModel`); each
    takes the context last when the model is conditional (`context_shape`), else none."""

    def sample(n, temperature, seed, *context):
        return model.sample(n, *context, temperature=temperature, seed=seed)

    def sample_and_log_prob(n, temperature, seed, *context):
        return model.sample_and_log_prob(n, *context, temperature=temperature, seed=seed)

    def bits_per_dim(x, *context):
        return model.bits_per_dim(model.log_prob(x, *context))

    return _ServingFunctions(
        log_prob=model.log_prob,
        encode=model.encode,
        decode=model.decode,
        sample=sample,
        sample_and_log_prob=sample_and_log_prob,
        bits_per_dim=bits_per_dim if model.num_bits else None,
        event_shape=model.event_shape,
        latent_shape=model.latent_shape,
        dtype=tf.as_dtype(model.compute_dtype),
        context_shape=getattr(model, "context_shape", None),
    )


class _DistributionAsModel:
    """What the exporter reads of a `FlowModel`, for a `tfd.TransformedDistribution` (unconditional): sampling
    scales the base's draw by `temperature` before the bijector's forward, as the models do."""

    def __init__(self, distribution: tfd.TransformedDistribution, event_shape: tuple[int, ...], num_bits: int | None):
        self.base, self.bijector = distribution.distribution, distribution.bijector
        self.log_prob, self.encode, self.decode = distribution.log_prob, self.bijector.inverse, self.bijector.forward
        self.event_shape, self.num_bits, self.compute_dtype = event_shape, num_bits, distribution.dtype
        self.latent_shape = tuple(int(d) for d in self.bijector.inverse_event_shape(event_shape))

    def sample(self, n: tf.Tensor, *, temperature: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        z = self.base.sample(n, seed=seed)
        return self.decode(z * tf.cast(temperature, z.dtype))

    def sample_and_log_prob(
        self, n: tf.Tensor, *, temperature: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        z = self.base.sample(n, seed=seed) * tf.cast(temperature, self.compute_dtype)
        log_det = self.bijector.forward_log_det_jacobian(z, event_ndims=len(self.latent_shape))
        return self.decode(z), self.base.log_prob(z) - log_det

    def bits_per_dim(self, log_prob: tf.Tensor) -> tf.Tensor:
        from tfp_flows.datasets import bits_per_dim

        return bits_per_dim(log_prob, int(np.prod(self.event_shape)), num_levels=2**self.num_bits)


def _tf_variable(weight):
    """The `tf.Variable` behind a Keras 3 variable (the TensorFlow backend keeps it in `.value`)."""
    value = getattr(weight, "value", weight)
    return value if isinstance(value, tf.Variable) else weight


def _unique(variables):
    seen, unique = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            unique.append(variable)
    return unique


# --------------------------------------------------------------------------------------------------------
# Writing: a temporary folder beside the target, then one rename.
def _save_new_version(functions, model_dir, version, extra_variables=(), metadata=None):
    check_int(version, "version", allow_none=True, hint="TF Serving's integer versions")
    os.makedirs(model_dir, exist_ok=True)
    present = list_versions(model_dir)
    if version is not None and any(v == int(version) for v, _ in present):
        existing = os.path.join(model_dir, next(entry for v, entry in present if v == int(version)))
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing version", existing)
    next_version = int(version) if version is not None else (present[-1][0] + 1 if present else 1)
    return _save_atomically(
        functions,
        os.path.join(model_dir, str(next_version)),
        extra_variables,
        auto_increment=version is None,
        metadata=metadata,
    )


def _save_atomically(functions, target, extra_variables=(), auto_increment=False, metadata=None):
    """Save into a hidden temporary folder beside `target`, then rename it to `target` (never overwriting);
    `metadata` (a dict, if not empty) goes to assets.extra/tfp_flows.json inside it."""
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    module, signatures = functions.module(extra_variables)
    temporary = tempfile.mkdtemp(dir=parent, prefix=_TEMPORARY_PREFIX)
    try:
        tf.saved_model.save(module, temporary, signatures=signatures)
        if metadata:
            os.makedirs(os.path.join(temporary, "assets.extra"))
            with open(os.path.join(temporary, METADATA_FILE), "w", encoding="utf-8") as handle:
                json.dump(metadata, handle, indent=2, sort_keys=True)
        _sync_tree(temporary)
        os.chmod(temporary, 0o755)  # mkdtemp makes it private; a server running as another user must read it
        while True:
            try:
                _rename_no_replace(temporary, target)
                break
            except FileExistsError:
                if not auto_increment:
                    raise
                # Another exporter took this version meanwhile: take the next one.
                target = os.path.join(os.path.dirname(target), str(int(os.path.basename(target)) + 1))
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _sync_directory(parent)
    return target


def _rename_no_replace(source, target):
    # os.rename replaces an EMPTY target folder silently, so check first; a non-empty one (a finished export
    # racing with us) makes rename fail with ENOTEMPTY/EEXIST, reported the same way.
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing version", target)
    try:
        os.rename(source, target)
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing version", target) from err
        raise


def _sync_tree(folder):
    """fsync every file and folder, so the rename never publishes files whose data a crash could lose."""
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _sync_directory(root)


def _sync_directory(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some platforms (Windows) cannot open folders; the rename is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _refresh_models_config(base_dir):
    """Rewrite `models.config` when it is missing or was written by `write_models_config` (never a user's)."""
    path = os.path.join(base_dir, MODELS_CONFIG_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            if not handle.readline().startswith(MODELS_CONFIG_MARKER):
                return
    write_models_config(base_dir)


# --------------------------------------------------------------------------------------------------------
# Checks.
def _check_name(name):
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name) or name.isdigit():
        raise ValueError(
            f"`name` must be a folder name of letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit and not all digits; received {name!r}"
        )
    return name


def _check_event_shape(event_shape):
    return check_positive_ints(event_shape if np.ndim(event_shape) else (event_shape,), "event_shape")


def _proto_string(text):
    """A text-format protobuf string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
