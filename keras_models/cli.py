"""`tfp-flows`: train, evaluate, sample from, export and list normalizing flows.

tfp-flows train                                   # RealNVP on two moons, about a minute on 2 CPU cores
tfp-flows train --preset glow --dataset digits --epochs 20
tfp-flows train --preset planar --dataset U2      # variational inference on a 2-D energy
tfp-flows train --preset radial --dataset U1 --objective iw-elbo --num-importance-samples 8
tfp-flows train --preset glow --dataset digits --conditional   # class-conditional: one sample row per digit
tfp-flows train --config run.yaml                 # keys mirror the flags (model_args, epochs, ...)
tfp-flows train --resume runs/realnvp-two_moons-20261123-101500
tfp-flows train --data measurements.csv --columns a,b,c --log-columns c   # your own table, in its own units
tfp-flows score --model runs/<run> --data new_rows.csv --out scores.csv --threshold-quantile 0.01
tfp-flows evaluate --model runs/<run>/model.keras --dataset two_moons --split test
tfp-flows sample --model saved_models/realnvp-two_moons --num-samples 500 --out samples/
tfp-flows sample --model saved_models/glow-digits --context 3   # a conditional export: 64 samples of c = 3
tfp-flows export --model runs/<run>/model.keras --name my-flow
tfp-flows list
"""

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Only light modules here: `--help` and `list` must answer without importing TensorFlow (seconds).
from keras_models.train import catalog
from keras_models.train.config import TrainConfig


def _number_type(convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse `type`: `convert(text)` when that works and `accept`s the value, else an error saying `expected`
    and the text received (argparse prefixes the flag)."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}")
        return value

    return parse


_positive_int = _number_type(int, lambda value: value >= 1, "a positive integer")
_positive_float = _number_type(float, lambda value: value > 0, "a positive number")  # NaN fails too
_non_negative_float = _number_type(float, lambda value: 0 <= value < float("inf"), "a finite number >= 0")
_fraction = _number_type(float, lambda value: 0 <= value <= 1, "a number in [0, 1]")
_open_fraction = _number_type(float, lambda value: 0 <= value < 1, "a number in [0, 1)")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, received {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, received {text!r}")
    return value


def _load_config_file(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith((".yaml", ".yml")):
        import yaml

        config = yaml.safe_load(text)
    else:
        config = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError(f"the config file {path} must hold a mapping of flag names to values")
    return {key.replace("-", "_"): value for key, value in config.items()}


_PARSERS: dict[str, Callable[[str], Any]] = {
    "text": str,
    "int": int,
    "positive_int": _positive_int,
    "positive_float": _positive_float,
    "fraction": _fraction,
    "open_fraction": _open_fraction,
    "json_object": _json_object,
}


def add_config_flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """One flag per `TrainConfig` field, its help and default taken from the field (the one source of both).

    Every flag defaults to None, "not given", so that a config file's value is kept unless the flag overrides it.
    Returns the flags' actions.
    """
    actions = []
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        flag = meta.get("flag", "--" + field.name.replace("_", "-"))
        if "const" in meta:
            action = parser.add_argument(
                flag, dest=field.name, action="store_const", const=meta["const"], help=meta["help"]
            )
        elif meta["kind"] == "flag" and field.default:
            action = parser.add_argument(
                f"--no-{field.name.replace('_', '-')}",
                dest=field.name,
                action="store_false",
                default=None,
                help="turn off: " + meta["help"],
            )
        elif meta["kind"] == "flag":
            action = parser.add_argument(flag, dest=field.name, action="store_true", default=None, help=meta["help"])
        else:
            default = field.default_factory() if field.default is dataclasses.MISSING else field.default
            shown = f" (default {json.dumps(default) if isinstance(default, dict) else default})"
            action = parser.add_argument(
                flag,
                dest=field.name,
                type=_PARSERS[meta["kind"]],
                choices=meta.get("choices"),
                metavar=meta.get("metavar"),
                help=meta["help"] + (shown if default is not None else ""),
            )
        actions.append(action)
    return actions


def build_parser() -> argparse.ArgumentParser:
    """The `tfp-flows` parser: its commands and flags (the train flags made from `TrainConfig`)."""
    parser = argparse.ArgumentParser(
        prog="tfp-flows",
        description="Normalizing flows with TensorFlow Probability and Keras 3.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    logging = argparse.ArgumentParser(add_help=False)
    logging.add_argument(
        "--verbose",
        dest="tensorflow_logs",
        action="store_true",
        help="show TensorFlow's own log lines (C++ start-up messages, absl warnings); hidden otherwise",
    )

    train = commands.add_parser("train", parents=[logging], help="train a flow, then evaluate, plot and export it")
    train.add_argument("--config", help="JSON or YAML file whose keys mirror these flags")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last backup")
    add_config_flags(train)

    evaluate = commands.add_parser(
        "evaluate", parents=[logging], help="NLL (and bits/dim) of a checkpoint or export on a split"
    )
    evaluate.add_argument("--model", required=True, help="a .keras checkpoint, a run folder or a SavedModel")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a registered dataset (`tfp-flows list`), scored on --split")
    source.add_argument(
        "--data", help="your own data, all of it: rows (.csv, .npy, .npz) in the model's columns, or an image folder"
    )
    evaluate.add_argument("--split", default="test", help="--dataset only: the split scored")
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    evaluate.add_argument("--max-batches", type=_positive_int, default=None)

    sample = commands.add_parser(
        "sample", parents=[logging], help="draw from an exported model (no training code needed)"
    )
    sample.add_argument(
        "--model",
        required=True,
        help="saved_models/<name> (newest version), .../<version>, a run folder or a .keras checkpoint",
    )
    sample.add_argument("--num-samples", type=_positive_int, default=64)
    sample.add_argument("--temperature", type=_non_negative_float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument(
        "--out", default="samples", help="folder for samples.npy and samples.png (and samples.csv for tabular models)"
    )
    sample.add_argument(
        "--context",
        default=None,
        help="conditional exports: the condition c of every sample, a class index K (one-hot c) "
        "or a JSON list (c itself), e.g. --context 3 for the digit 3",
    )

    score = commands.add_parser(
        "score", parents=[logging], help="write log p(x) of every row of your data as CSV (anomaly scores)"
    )
    score.add_argument("--model", required=True, help="a run folder, a .keras checkpoint or a SavedModel")
    score.add_argument(
        "--data", required=True, help="what to score: rows (.csv with a header row, .npy, .npz) or an image folder"
    )
    score.add_argument(
        "--out",
        default="scores.csv",
        help="the CSV written: index, log_prob (images: index, file, log_prob, bits_per_dim)[, is_outlier]",
    )
    score.add_argument("--batch-size", type=_positive_int, default=1024, help="rows read and scored at a time")
    score.add_argument(
        "--threshold-quantile",
        type=_fraction,
        default=None,
        metavar="Q",
        help="add is_outlier: log p(x) below the Q-th quantile of the training rows' log-densities (e.g. 0.01)",
    )

    export = commands.add_parser(
        "export", parents=[logging], help="export a .keras checkpoint as a TF Serving SavedModel"
    )
    export.add_argument("--model", required=True, help="a .keras checkpoint or a run folder")
    export.add_argument("--export-dir", default="saved_models")
    export.add_argument("--name", default=None)
    export.add_argument("--version", type=_positive_int, default=None)

    commands.add_parser("list", help="list presets, datasets and energies")
    return parser


def config_from_args(args: argparse.Namespace) -> dict:
    """A `train` run's configuration before resolution: the `--config` file's keys, the flags given over them."""
    config = _load_config_file(args.config) if args.config else {}
    flags = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)}
    config.update({key: value for key, value in flags.items() if value is not None})
    return config


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from keras_models.train import run

    if args.resume:
        if not os.path.isfile(os.path.join(args.resume, "config.json")):
            parser.error(f"--resume expects a run folder holding config.json; received {args.resume!r}")
        result = run.train(resume=args.resume)
    else:
        result = run.train(config_from_args(args))
    print(f"run folder:   {result['run_dir']}")
    for _name, path in sorted(result.get("figures", {}).items()):
        print(f"figure:       {path}")
    metrics = result["metrics"]
    if metrics.get("export_path"):
        print(f"SavedModel:   {metrics['export_path']}")
    # The training rows' log-density quantiles (for `score --threshold-quantile`) stay in metrics.json.
    shown = {k: v for k, v in metrics.items() if k not in ("export_path", "train_log_prob_quantiles")}
    print("metrics:      " + json.dumps(shown, sort_keys=True))
    return 0 if metrics.get("stop_reason") == "completed" else 1


def _load_checkpoint(path: str) -> "keras.Model":  # noqa: F821 (keras loads lazily)
    import keras

    # Every preset and the variational wrapper, with their layers: Keras finds a saved class once it is imported.
    import keras_models.flows.presets
    import keras_models.flows.variational  # noqa: F401

    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "model.keras")):
        path = os.path.join(path, "model.keras")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise ValueError(f"--model must be a .keras checkpoint or a run folder holding model.keras; received {path!r}")
    return keras.saving.load_model(path)


def _evaluate(args):
    import numpy as np
    import tensorflow as tf

    from tfp_flows.datasets import bits_per_dim, dataset_info, make_dataset

    if args.data is not None:
        return _evaluate_rows(args)
    info = dataset_info(args.dataset)

    def batches(conditional):
        # A conditional model p(x | c) is scored on each example's own label (the dataset's (x, c) pairs).
        data = make_dataset(
            args.dataset,
            split=args.split,
            batch_size=args.batch_size,
            shuffle=False,
            repeat=False,
            conditional=conditional,
        )
        return data.take(args.max_batches) if args.max_batches else data

    if os.path.isfile(os.path.join(args.model, "saved_model.pb")) or _is_serving_dir(args.model):
        from keras_models.serving.export import load_serving_model

        log_prob = load_serving_model(args.model).signatures["log_prob"]
        inputs = log_prob.structured_input_signature[1]
        dtype = inputs["x"].dtype  # float64 exports take float64 data
        if "context" in inputs:
            values = [
                log_prob(x=tf.cast(x, dtype), context=tf.cast(c, inputs["context"].dtype))["log_prob"].numpy()
                for x, c in batches(conditional=True)
            ]
        else:
            values = [log_prob(x=tf.cast(x, dtype))["log_prob"].numpy() for x in batches(conditional=False)]
    else:
        model = _load_checkpoint(args.model)
        # The model's own objective, as `fit` reports it: log p(x) (log p(x | c) for a conditional model), or
        # for Flow++ with variational dequantization its one-sample ELBO (a bound on the data's log-likelihood).
        conditional = getattr(model, "context_shape", None) is not None
        values = [model(batch, training=False).numpy() for batch in batches(conditional)]
    log_probs = np.concatenate(values)
    report = {
        "dataset": args.dataset,
        "split": args.split,
        "examples": int(len(log_probs)),
        "nll": float(-log_probs.mean()),
    }
    if info.is_8bit_image:
        # On the data's own quantisation (17 levels for digits), as training's bits_per_dim metric.
        report["bits_per_dim"] = float(np.mean(bits_per_dim(log_probs, info.num_dims, num_levels=info.num_levels)))
    print(json.dumps(report, sort_keys=True))
    return 0


def _evaluate_rows(args):
    """`evaluate --data`: the mean NLL of every row (every image: bits/dim too) of the user's data, streamed."""
    import numpy as np

    from keras_models.serving.scoring import iter_image_log_probs, iter_log_probs, load_scorer

    scorer = load_scorer(args.model, _load_checkpoint)
    images = os.path.isdir(args.data)
    reader = iter_image_log_probs if images else iter_log_probs
    batches = reader(scorer, args.data, args.batch_size)
    if args.max_batches:
        batches = (batch for _, batch in zip(range(args.max_batches), batches))
    log_probs = np.concatenate([values for _, _, values in batches]).astype(np.float64)
    report = {"data": args.data, "examples": int(len(log_probs)), "nll": float(-log_probs.mean())}
    if images and scorer.bits_per_dim is not None:
        report["bits_per_dim"] = float(np.mean(scorer.bits_per_dim(log_probs)))
    print(json.dumps(report, sort_keys=True))
    return 0


def _score(args):
    from keras_models.serving.scoring import load_scorer, score_rows

    scorer = load_scorer(args.model, _load_checkpoint)
    summary = score_rows(scorer, args.data, args.out, args.batch_size, args.threshold_quantile)
    print(f"scores:  {summary.pop('out')}")
    print("summary: " + json.dumps(summary, sort_keys=True))
    return 0


def _is_serving_dir(path):
    return os.path.isdir(path) and any(d.isdigit() for d in os.listdir(path))


def _sample(args):
    import numpy as np

    from keras_models.serving.scoring import is_export
    from keras_models.train import plots

    if is_export(args.model):
        out, columns = _sample_export(args)
    else:
        out, columns = _sample_checkpoint(args)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "samples.npy"), out)
    written = [f"samples: {os.path.join(args.out, 'samples.npy')} {list(out.shape)}"]
    if columns is not None:
        table = os.path.join(args.out, "samples.csv")
        np.savetxt(table, out, delimiter=",", header=",".join(columns), comments="", fmt="%.9g")
        written.append(f"table:   {table}")
    png = os.path.join(args.out, "samples.png")
    if out.ndim == 4:
        plots.plot_images([out[:64]], png, titles=[f"samples, T = {args.temperature}"])
    else:
        _scatter(out.reshape(len(out), -1)[:, :2], png)
    print("\n".join([*written, f"figure:  {png}"]))
    return 0


def _sample_export(args):
    """(samples, column names or None) drawn by an export's `sample` signature."""
    import numpy as np
    import tensorflow as tf

    from keras_models.serving.export import load_serving_model, read_export_metadata

    loaded = load_serving_model(args.model)
    signature = loaded.signatures["sample"]
    inputs = dict(
        num_samples=tf.constant(args.num_samples, tf.int32),
        temperature=tf.constant(args.temperature, tf.float32),
        seed=tf.constant([args.seed, 0], tf.int32),
    )
    context_spec = signature.structured_input_signature[1].get("context")
    if context_spec is not None:
        c = _parse_context(args.context, tuple(context_spec.shape[1:]))
        inputs["context"] = tf.constant(np.broadcast_to(c, (args.num_samples, *c.shape)), context_spec.dtype)
    elif args.context is not None:
        raise ValueError(
            f"--context was given but {args.model} is not a conditional model (its sample signature "
            "takes no context); expected no --context"
        )
    return signature(**inputs)["samples"].numpy(), read_export_metadata(args.model).get("columns")


def _sample_checkpoint(args):
    """(samples, column names or None) drawn by a checkpoint's `sample` (a run folder or a .keras file)."""
    model = _load_checkpoint(args.model)
    c = None
    if getattr(model, "context_shape", None) is not None:
        c = _parse_context(args.context, tuple(model.context_shape))
    elif args.context is not None:
        raise ValueError(f"--context was given but {args.model} is not a conditional model; expected no --context")
    out = model.sample(args.num_samples, c, temperature=args.temperature, seed=args.seed).numpy()
    return out, (getattr(model, "standardization", None) or {}).get("columns")


def _parse_context(text, context_shape):
    """--context: a class index K (one-hot c of length context_shape[0]) or a JSON list of shape context_shape."""
    import numpy as np

    expected = (
        f"a class index in [0, {context_shape[0]}) or a JSON list of shape {list(context_shape)}"
        if len(context_shape) == 1
        else f"a JSON list of shape {list(context_shape)}"
    )
    if text is None:
        raise ValueError(
            f"--context is required: this model is conditional (context shape {list(context_shape)}); "
            f"expected {expected}"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, int) and not isinstance(value, bool) and len(context_shape) == 1:
        if not 0 <= value < context_shape[0]:
            raise ValueError(f"--context must be {expected}; received {text!r}")
        return np.eye(context_shape[0], dtype=np.float32)[value]
    c = np.asarray(value, dtype=np.float32) if isinstance(value, list) else None
    if c is None or c.shape != context_shape or not np.all(np.isfinite(c)):
        raise ValueError(f"--context must be {expected}; received {text!r}")
    return c


def _scatter(points, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.6)
    ax.set_title(f"{len(points)} samples")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _export(args):
    from keras_models.serving.export import export_saved_model

    model = _load_checkpoint(args.model)
    path = export_saved_model(model, base_dir=args.export_dir, name=args.name, version=args.version)
    print(f"SavedModel: {path}")
    return 0


def _list() -> int:
    """Presets, data sets and energies from the TensorFlow-free catalog (tests check it against the registries)."""
    width = max(map(len, [*catalog.PRESETS, *catalog.DATASETS, *catalog.ENERGIES])) + 2
    print("presets (--preset; [c]: takes --conditional, [vi]: fits an energy):")
    for name, entry in catalog.PRESETS.items():
        marks = " ".join(mark for mark, on in (("[c]", entry.conditional), ("[vi]", entry.variational)) if on)
        print(f"  {name:<{width}}{entry.description}{' ' + marks if marks else ''}")
    print("datasets (--dataset):")
    for name, entry in sorted(catalog.DATASETS.items()):
        print(f"  {name:<{width}}{entry.description}, event shape {entry.event_shape}")
    # The context shape is the one-hot condition c that make_dataset(..., conditional=True) pairs with x.
    labelled = [(name, entry.context_shape) for name, entry in sorted(catalog.DATASETS.items()) if entry.context_shape]
    print("conditional datasets (context shape of c): " + ", ".join(f"{name} {shape}" for name, shape in labelled))
    print("energies (--dataset; variational inference with the [vi] presets):")
    for name, description in catalog.ENERGIES.items():
        print(f"  {name:<{width}}{description}")
    return 0


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for a while: what C++ code writes there is dropped.

    TensorFlow's C++ libraries log at load time through absl before absl's logging is initialised, and absl then
    ignores TF_CPP_MIN_LOG_LEVEL ("All log messages before absl::InitializeLog() ..."): only the descriptor can stop
    those lines. Python's own exceptions still show: they are printed after the descriptor is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _load_tensorflow(verbose: bool) -> None:
    """Import TensorFlow for a command, its log lines hidden unless `verbose` (`--verbose`).

    TF_CPP_MIN_LOG_LEVEL must be set before TensorFlow is imported (it is read once); an explicit setting in the
    environment wins unless --verbose asks for everything. The device scan runs here too, so that the CUDA
    probe's lines on a machine without a GPU are dropped with the rest.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import tensorflow  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_to_devnull():
        import tensorflow as tf

        tf.config.list_physical_devices()
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tfp-flows` with `argv` (default: the process's arguments); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list()
    commands = {"train": lambda: _train(args, parser), "evaluate": lambda: _evaluate(args)}
    commands.update(sample=lambda: _sample(args), export=lambda: _export(args), score=lambda: _score(args))
    try:
        _load_tensorflow(args.tensorflow_logs)
        return commands[args.command]()
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
        # Bad input: one clear line, usage-style exit code, no traceback.
        print(f"tfp-flows {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # The machine, not the input: a full disk or a read-only folder (the message says what was kept).
        print(f"tfp-flows {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
