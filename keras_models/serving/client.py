"""gRPC requests to a TF Serving server that serves an export of `keras_models.serving.export`.

Builds `PredictRequest`s for each signature (`log_prob`, `bits_per_dim`, `sample`, `encode`, `decode`) with
`tf.make_tensor_proto`, in the dtypes the signatures declare, and decodes `PredictResponse`s into NumPy arrays
with `tf.make_ndarray`. A conditional model's export takes the context as one more named input: pass
`context=` (a batch [batch, *context_shape], one row per example or sample) to any request builder. Needs the
optional `tensorflow-serving-api` package (`pip install "tfp_flows[serving]"`),
imported only when a request is built, so importing this module never fails.

Example (a server started as in saved_models/README.md, gRPC on port 8500, and tensorflow-serving-api installed;
the doctests skip what needs them):
    >>> import numpy as np
    >>> from keras_models.serving import client as serving_client
    >>> stub = serving_client.prediction_stub("localhost:8500")   # doctest: +SKIP
    >>> x = np.array([[0.5, 0.25]], np.float32)
    >>> request = serving_client.log_prob_request("realnvp-two_moons", x)  # doctest: +SKIP
    >>> serving_client.decode_response(stub.Predict(request, timeout=10.0))["log_prob"].shape  # doctest: +SKIP
    (1,)
    >>> request = serving_client.sample_request("realnvp-two_moons", num_samples=4, temperature=0.7,  # doctest: +SKIP
    ...                                         seed=(1, 2))
    >>> serving_client.decode_response(stub.Predict(request, timeout=10.0))["samples"].shape  # doctest: +SKIP
    (4, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from tfp_flows.validation import check_int

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

_INSTALL_HINT = (
    "keras_models.serving_client needs the optional package tensorflow-serving-api: "
    'pip install "tfp_flows[serving]" (or pip install tensorflow-serving-api)'
)


def _apis():
    """tensorflow_serving's predict protos, imported on first use with an install hint when missing."""
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError as err:
        raise ImportError(f"{_INSTALL_HINT}; import failed with: {err}") from err
    return predict_pb2


def predict_request(
    model_name: str, signature_name: str, inputs: Mapping[str, npt.ArrayLike], version: int | None = None
) -> Any:
    """A `PredictRequest` for `signature_name` of `model_name` with `inputs` ({name: array}, dtypes as given).

    `version`: a specific integer version; None lets the server pick (its newest).
    """
    predict_pb2 = _apis()
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"`model_name` must be a non-empty string; received {model_name!r}")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = check_int(version, "version", allow_none=True)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def _batch(value, arg_name, dtype):
    array = np.asarray(value)
    if array.ndim < 2 or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(
            f"`{arg_name}` must be a numeric batch [batch, *event_shape]; received shape "
            f"{list(array.shape)} and dtype {array.dtype}"
        )
    return array.astype(dtype, copy=False)


def _with_context(inputs, context, rows, dtype):
    """`inputs` plus the named input "context" of a conditional export (None: unconditional, left out)."""
    if context is None:
        return inputs
    context = _batch(context, "context", dtype)
    if rows is not None and len(context) != rows:
        raise ValueError(
            f"`context` must have one row per example or sample ({rows}); received shape {list(context.shape)}"
        )
    return dict(inputs, context=context)


class RequestOptions(TypedDict, total=False):
    """The keyword options of every request builder that sends a batch (`log_prob_request` and the like)."""

    dtype: npt.DTypeLike  # the export's float dtype (float64 models: np.float64); default np.float32
    version: int | None  # a specific integer version; None (default) lets the server pick its newest
    context: npt.ArrayLike | None  # a conditional model's contexts [batch, *context_shape], one row per example


def _batch_request(
    model_name: str,
    signature_name: str,
    arg_name: str,
    value: npt.ArrayLike,
    dtype: npt.DTypeLike = np.float32,
    version: int | None = None,
    context: npt.ArrayLike | None = None,
) -> Any:
    value = _batch(value, arg_name, dtype)
    return predict_request(
        model_name, signature_name, _with_context({arg_name: value}, context, len(value), dtype), version
    )


def log_prob_request(model_name: str, x: npt.ArrayLike, **options: Unpack[RequestOptions]) -> Any:
    """log p(x) for a batch `x` [batch, *event_shape] (log p(x | context) for a conditional model)."""
    return _batch_request(model_name, "log_prob", "x", x, **options)


def bits_per_dim_request(model_name: str, x: npt.ArrayLike, **options: Unpack[RequestOptions]) -> Any:
    """Bits per dimension of image data `x` in [0, 1] (image models only)."""
    return _batch_request(model_name, "bits_per_dim", "x", x, **options)


def encode_request(model_name: str, x: npt.ArrayLike, **options: Unpack[RequestOptions]) -> Any:
    """Latents z = f^{-1}(x) of a batch `x` (given `context` for a conditional model)."""
    return _batch_request(model_name, "encode", "x", x, **options)


def decode_request(model_name: str, z: npt.ArrayLike, **options: Unpack[RequestOptions]) -> Any:
    """Data x = f(z) of a batch of latents `z` (given `context` for a conditional model)."""
    return _batch_request(model_name, "decode", "z", z, **options)


def sample_request(
    model_name: str,
    num_samples: int,
    temperature: float = 1.0,
    seed: int | Sequence[int] = (0, 0),
    version: int | None = None,
    context: npt.ArrayLike | None = None,
    dtype: npt.DTypeLike = np.float32,
    signature_name: str = "sample",
) -> Any:
    """`num_samples` draws at `temperature`; the same `seed` (an int or a pair of ints) gives the same samples.
    A conditional model takes `context` [num_samples, *context_shape] (one context per sample; `dtype` the
    export's). `signature_name="sample_and_log_prob"` asks for the samples' log-densities too."""
    check_int(num_samples, "num_samples")
    if not (np.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"`temperature` must be a finite number >= 0; received {temperature!r}")
    seed = np.asarray(seed).reshape(-1)
    if seed.size == 1:
        seed = np.array([seed[0], 0])
    if seed.shape != (2,) or not np.issubdtype(seed.dtype, np.integer):
        raise ValueError(f"`seed` must be an int or a pair of ints; received {seed.tolist()!r}")
    inputs = {
        "num_samples": np.int32(num_samples),
        "temperature": np.float32(temperature),
        "seed": seed.astype(np.int32),
    }
    return predict_request(model_name, signature_name, _with_context(inputs, context, num_samples, dtype), version)


def decode_response(response: Any) -> dict[str, np.ndarray]:
    """{output key: NumPy array} of a `PredictResponse`."""
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def prediction_stub(target: str = "localhost:8500") -> Any:
    """A `PredictionServiceStub` on an insecure gRPC channel to `target` (host:port); call `.Predict(request)`."""
    try:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc
    except ImportError as err:
        raise ImportError(f"{_INSTALL_HINT}; import failed with: {err}") from err
    return prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))


def predict_locally(saved_model: Any, request: Any) -> Any:
    """Answer `request` with a SavedModel loaded in this process, as TF Serving's Predict does.

    Inputs are converted with `tf.make_ndarray` and must match the signature's names, dtypes and shapes
    exactly (TF Serving answers INVALID_ARGUMENT otherwise; here ValueError). Useful to test clients offline.
    """
    predict_pb2 = _apis()
    signature_name = request.model_spec.signature_name or "serving_default"
    if signature_name not in saved_model.signatures:
        raise ValueError(f"unknown signature_name {signature_name!r}; the model has {sorted(saved_model.signatures)}")
    function = saved_model.signatures[signature_name]
    specs = function.structured_input_signature[1]
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    if set(inputs) != set(specs):
        raise ValueError(f"signature {signature_name!r} takes inputs {sorted(specs)}; received {sorted(inputs)}")
    for name, value in inputs.items():
        spec = specs[name]
        if tf.as_dtype(value.dtype) != spec.dtype or not spec.shape.is_compatible_with(value.shape):
            raise ValueError(
                f"input {name!r} of {signature_name!r} must be {spec.dtype.name} of shape "
                f"{spec.shape}; received {value.dtype} of shape {list(value.shape)}"
            )
    outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    response.model_spec.signature_name = signature_name
    for name in request.output_filter or outputs:
        response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name].numpy()))
    return response
