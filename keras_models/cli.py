"""`tfp-flows`: train, evaluate, sample from, export and list normalizing flows.

tfp-flows train                                   # RealNVP on two moons, about a minute on 2 CPU cores
tfp-flows train --preset glow --dataset digits --epochs 20
tfp-flows train --preset planar --dataset U2      # variational inference on a 2-D energy
tfp-flows train --preset radial --dataset U1 --objective iw-elbo --num-importance-samples 8
tfp-flows train --preset glow --dataset digits --conditional   # class-conditional: one sample row per digit
tfp-flows train --config run.yaml                 # keys mirror the flags (model_args, epochs, ...)
tfp-flows train --resume runs/realnvp-two_moons-20261123-101500
tfp-flows evaluate --model runs/<run>/model.keras --dataset two_moons --split test
tfp-flows sample --model saved_models/realnvp-two_moons --num-samples 500 --out samples/
tfp-flows sample --model saved_models/glow-digits --context 3   # a conditional export: 64 samples of c = 3
tfp-flows export --model runs/<run>/model.keras --name my-flow
tfp-flows list
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _number_type(convert, accept, expected):
    """An argparse `type`: `convert(text)` when that works and `accept`s the value, else an error saying `expected`
    and the text received (argparse prefixes the flag)."""

    def parse(text):
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


def _json_object(text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, received {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, received {text!r}")
    return value


def _load_config_file(path):
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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfp-flows",
        description="Normalizing flows with TensorFlow Probability and Keras 3.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a flow, then evaluate, plot and export it")
    train.add_argument("--config", help="JSON or YAML file whose keys mirror these flags")
    train.add_argument("--preset", help="model preset (see `tfp-flows list`); default realnvp")
    train.add_argument("--dataset", help="dataset or VI energy (see `tfp-flows list`); default two_moons")
    train.add_argument("--epochs", type=_positive_int)
    train.add_argument("--steps-per-epoch", type=_positive_int)
    train.add_argument("--batch-size", type=_positive_int, help="global batch size")
    train.add_argument("--learning-rate", type=_positive_float)
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--model-args", type=_json_object, help="preset arguments as JSON, e.g. '{\"num_couplings\": 4}'"
    )
    train.add_argument("--run-dir", help="parent folder of run folders (default runs)")
    train.add_argument("--name", help="run and export name (default <preset>-<dataset>)")
    train.add_argument("--export-dir", help="where SavedModels go (default saved_models)")
    train.add_argument("--no-export", dest="export", action="store_false", default=None)
    train.add_argument(
        "--no-restore-best",
        dest="restore_best",
        action="store_false",
        default=None,
        help="keep the last epoch's weights instead of the best validation epoch's",
    )
    train.add_argument("--jit-compile", action="store_true", default=None, help="compile train steps with XLA")
    train.add_argument("--strategy", choices=["default", "mirrored", "multiworker"])
    train.add_argument("--quiet", dest="verbose", action="store_const", const=0, default=None)
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last backup")
    train.add_argument(
        "--conditional",
        action="store_true",
        default=None,
        help="train p(x | c) with c the one-hot label (datasets with a context shape, `tfp-flows list`)",
    )
    train.add_argument(
        "--objective",
        choices=["elbo", "iw-elbo"],
        help="variational inference (--dataset U1..U4) only: the bound trained on (default elbo)",
    )
    train.add_argument(
        "--num-importance-samples",
        type=_positive_int,
        metavar="K",
        help="variational inference only: K samples per estimate of the iw-elbo (default 1)",
    )

    evaluate = commands.add_parser("evaluate", help="NLL (and bits/dim) of a checkpoint or export on a split")
    evaluate.add_argument("--model", required=True, help="a .keras checkpoint, a run folder or a SavedModel")
    evaluate.add_argument("--dataset", required=True)
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    evaluate.add_argument("--max-batches", type=_positive_int, default=None)

    sample = commands.add_parser("sample", help="draw from an exported model (no training code needed)")
    sample.add_argument("--model", required=True, help="saved_models/<name> (newest version) or .../<version>")
    sample.add_argument("--num-samples", type=_positive_int, default=64)
    sample.add_argument("--temperature", type=_non_negative_float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", default="samples", help="folder for samples.npy and samples.png")
    sample.add_argument(
        "--context",
        default=None,
        help="conditional exports: the condition c of every sample, a class index K (one-hot c) "
        "or a JSON list (c itself), e.g. --context 3 for the digit 3",
    )

    export = commands.add_parser("export", help="export a .keras checkpoint as a TF Serving SavedModel")
    export.add_argument("--model", required=True, help="a .keras checkpoint or a run folder")
    export.add_argument("--export-dir", default="saved_models")
    export.add_argument("--name", default=None)
    export.add_argument("--version", type=_positive_int, default=None)

    commands.add_parser("list", help="list presets and datasets")
    return parser


def _train(args, parser):
    from keras_models.train import run

    if args.resume:
        if not os.path.isfile(os.path.join(args.resume, "config.json")):
            parser.error(f"--resume expects a run folder holding config.json; received {args.resume!r}")
        result = run.train(resume=args.resume)
    else:
        config = _load_config_file(args.config) if args.config else {}
        flags = {k: v for k, v in vars(args).items() if k not in ("command", "config", "resume") and v is not None}
        config.update(flags)
        result = run.train(config)
    print(f"run folder:   {result['run_dir']}")
    for _name, path in sorted(result.get("figures", {}).items()):
        print(f"figure:       {path}")
    metrics = result["metrics"]
    if metrics.get("export_path"):
        print(f"SavedModel:   {metrics['export_path']}")
    print("metrics:      " + json.dumps({k: v for k, v in metrics.items() if k != "export_path"}, sort_keys=True))
    return 0 if metrics.get("stop_reason") == "completed" else 1


def _load_checkpoint(path):
    import keras

    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "model.keras")):
        path = os.path.join(path, "model.keras")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise ValueError(f"--model must be a .keras checkpoint or a run folder holding model.keras; received {path!r}")
    return keras.saving.load_model(path)


def _evaluate(args):
    import numpy as np
    import tensorflow as tf

    from tfp_flows.datasets import bits_per_dim, dataset_info, make_dataset

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


def _is_serving_dir(path):
    return os.path.isdir(path) and any(d.isdigit() for d in os.listdir(path))


def _sample(args):
    import numpy as np
    import tensorflow as tf

    from keras_models.serving.export import load_serving_model
    from keras_models.train import plots

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
    out = signature(**inputs)["samples"].numpy()
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "samples.npy"), out)
    png = os.path.join(args.out, "samples.png")
    if out.ndim == 4:
        plots.plot_images([out[:64]], png, titles=[f"samples, T = {args.temperature}"])
    else:
        _scatter(out.reshape(len(out), -1)[:, :2], png)
    print(f"samples: {os.path.join(args.out, 'samples.npy')} {list(out.shape)}\nfigure:  {png}")
    return 0


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


def _list():
    from keras_models.flows.presets import PRESETS
    from tfp_flows.datasets import dataset_info, list_datasets
    from tfp_flows.datasets.energies import ENERGIES

    print("presets:  " + ", ".join(sorted(PRESETS)))
    print("datasets: " + ", ".join(sorted(list_datasets())))
    # The context shape is the one-hot condition c that make_dataset(..., conditional=True) pairs with x.
    labelled = [
        (name, dataset_info(name).context_shape)
        for name in sorted(list_datasets())
        if dataset_info(name).context_shape is not None
    ]
    print("conditional datasets (context shape of c): " + ", ".join(f"{name} {shape}" for name, shape in labelled))
    print(
        "energies (variational inference with planar/radial/...): "
        + ", ".join(sorted(name.upper() for name in ENERGIES))
    )
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args, parser)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "sample":
            return _sample(args)
        if args.command == "export":
            return _export(args)
        return _list()
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
