"""A run's configuration: `TrainConfig`, the one source of every key, default and help text of `tfp-flows train`.

The command line makes its `train` flags from `TrainConfig`'s fields (a key `batch_size` is the flag
`--batch-size`, its help is the field's, its default is the field's), config files (`--config run.yaml`) use the
same keys, and `resolve_config` fills in and checks a run's keys against it. This module imports no TensorFlow, so
that `tfp-flows --help` answers at once; the checks that need the registries import them when called.

`conditional` trains p(x | c) on `make_dataset(..., conditional=True)`'s (x, c) pairs: it needs a dataset with a
`context_shape` (labels) and a preset whose registry entry says it has a conditional form (`Preset.conditional`),
and says which is missing otherwise.

`objective`, `num_importance_samples` and `gradient_estimator` belong to variational inference (`--dataset
U1`..`U4`): they become
`VariationalFlow(objective=..., num_importance_samples=..., gradient_estimator=...)` and default there to
`VARIATIONAL_DEFAULTS`; a density-estimation run refuses them rather than silently ignoring them.

The learning-rate schedule's keys (`learning_rate`, `final_learning_rate_fraction`, `warmup_fraction`) default per
preset: a key left unset (None) takes `run_defaults(preset)`, which is `RUN_DEFAULTS` overridden by the preset's
entry in `PRESET_RUN_DEFAULTS` (CNF's flow-matching recipe). The table lives here rather than on the registry's
`Preset` entries because the flags' help text is generated from it and `tfp-flows --help` must not import the
registry (TensorFlow); tests/test_cli.py checks its names against the registry.

>>> DEFAULTS["preset"], DEFAULTS["epochs"], TrainConfig().learning_rate
('realnvp', 12, None)
>>> run_defaults("realnvp")["learning_rate"], run_defaults("cnf")["learning_rate"]
(0.002, 0.02)
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

from keras_models.train.catalog import GRADIENT_ESTIMATORS, OBJECTIVES, is_energy

STRATEGIES: tuple[str, ...] = ("default", "mirrored", "multiworker")

# A VI run's values for keys left unset (None); a density run must leave them unset.
VARIATIONAL_DEFAULTS: dict[str, Any] = {
    "objective": "elbo",
    "num_importance_samples": 1,
    "gradient_estimator": "reparameterized",
}

# The optimizer schedule of a run whose config leaves these keys unset: Adam at `learning_rate` after a linear
# warmup over `warmup_fraction` of the steps, then cosine decay to `final_learning_rate_fraction` of it
# (`common.make_optimizer`).
RUN_DEFAULTS: dict[str, float] = {"learning_rate": 2e-3, "final_learning_rate_fraction": 0.05, "warmup_fraction": 0.0}

# Presets whose measured recipe differs from RUN_DEFAULTS (keys by the registry's canonical names). CNF's flow
# matching regresses on a noisy target: a 2e-2 peak after 2 % warmup, decayed to 0, is what met the fit-quality bar
# on two moons (benchmarks/cnf_vs_coupling.py, benchmarks/README.md "CNF against coupling flows at equal wall time").
PRESET_RUN_DEFAULTS: dict[str, dict[str, float]] = {
    "cnf": {"learning_rate": 2e-2, "final_learning_rate_fraction": 0.0, "warmup_fraction": 0.02},
}


def run_defaults(preset_name: str) -> dict[str, float]:
    """The schedule's keys for a preset's run when the config leaves them unset: `RUN_DEFAULTS` with the preset's
    `PRESET_RUN_DEFAULTS` entry over it. `preset_name` is the registry's canonical name (`Preset.name`)."""
    return {**RUN_DEFAULTS, **PRESET_RUN_DEFAULTS.get(preset_name, {})}


def _defaults_by_preset(key: str) -> str:
    """The help text's "(default ...)" of a per-preset key, e.g. "(default 0.002; cnf: 0.02)", from the tables."""
    special = [f"{name}: {values[key]}" for name, values in PRESET_RUN_DEFAULTS.items() if key in values]
    return f"(default {RUN_DEFAULTS[key]}" + "".join(f"; {text}" for text in special) + ")"


def option(default: Any = None, help: str = "", *, kind: str = "text", **cli: Any) -> Any:
    """A `TrainConfig` field: its default, its help text and how the command line reads it.

    `kind` names the value's type for the parser and the checks: "text", "int", "positive_int",
    "positive_float", "fraction" (a number in [0, 1]), "json_object" or "flag" (a boolean: `--name` sets a False
    default, `--no-name` turns off a True one). `cli` holds argparse extras: `choices`, `metavar`, or `flag` and
    `const` for a flag of another name that stores `const` (`--quiet` stores verbose=0).
    """
    metadata = {"help": help, "kind": kind, **cli}
    if isinstance(default, dict | list):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainConfig:
    """The keys of a training run (`tfp-flows train` flags and config-file keys) with their defaults."""

    preset: str = option("realnvp", "model preset, one of `tfp-flows list`")
    dataset: str = option(
        "two_moons", "data set, or an energy U1..U4 for variational inference; `tfp-flows list` names them"
    )
    data: str | None = option(
        None,
        "your own data instead of --dataset: a .csv file (header row), an .npy/.npz array [N, D] or a folder of "
        "PNG/JPEG images (one subfolder per class for --conditional)",
        metavar="SOURCE",
    )
    columns: str | None = option(None, "--data tables: the columns to use, comma-separated names or indices")
    log_columns: str | None = option(
        None, "--data tables: columns modelled on a log scale (positive values), comma-separated"
    )
    validation_fraction: float = option(
        0.1, "--data: share of the rows (images) held out for validation", kind="fraction"
    )
    test_fraction: float = option(
        0.1, "--data: share of the rows (images) held out for the test split", kind="fraction"
    )
    image_size: str | None = option(
        None, "--data image folders: resize every image to HEIGHT,WIDTH (or one SIZE); default: keep the files' size"
    )
    epochs: int = option(12, "training epochs", kind="positive_int")
    steps_per_epoch: int = option(200, "optimizer steps per epoch", kind="positive_int")
    batch_size: int = option(256, "global batch size (summed over replicas)", kind="positive_int")
    learning_rate: float | None = option(
        None,
        "Adam's peak learning rate (reached after the warmup), cosine-decayed over the rest of the run "
        + _defaults_by_preset("learning_rate"),
        kind="positive_float",
    )
    final_learning_rate_fraction: float | None = option(
        None,
        "the cosine decay ends at this fraction of the peak learning rate (Keras' alpha) "
        + _defaults_by_preset("final_learning_rate_fraction"),
        kind="fraction",
    )
    warmup_fraction: float | None = option(
        None,
        "share of the run's steps over which the learning rate rises linearly from 0 to its peak, below 1 (the "
        "cosine decay needs steps after it) " + _defaults_by_preset("warmup_fraction"),
        kind="open_fraction",
    )
    clipnorm: float = option(10.0, "gradients are clipped to this norm (no NaN from one spike)", kind="positive_float")
    seed: int = option(0, "seed of the weights and of the data's shuffling", kind="int")
    model_args: dict = option(
        {}, "preset arguments as JSON, e.g. '{\"num_couplings\": 4}' (over the run's own)", kind="json_object"
    )
    run_dir: str = option("runs", "parent folder of run folders")
    name: str | None = option(None, "run and export name (default <preset>-<dataset>)")
    export_dir: str = option("saved_models", "where SavedModels go")
    export: bool = option(True, "export the trained flow as a TF Serving SavedModel", kind="flag")
    jit_compile: bool = option(False, "compile train steps with XLA", kind="flag")
    strategy: str = option("default", "tf.distribute strategy", choices=STRATEGIES)
    validation_batches: int = option(8, "validation batches scored after every epoch", kind="positive_int")
    restore_best: bool = option(
        True, "end with the best validation epoch's weights rather than the last epoch's", kind="flag"
    )
    num_plot_samples: int = option(2000, "points drawn in the run's figures", kind="positive_int")
    verbose: int = option(1, "no progress bar (Keras' fit verbose=0)", kind="int", flag="--quiet", const=0)
    conditional: bool = option(
        False,
        "train p(x | c) with c the one-hot label (datasets with a context shape, `tfp-flows list`)",
        kind="flag",
    )
    objective: str | None = option(
        None,
        f"variational inference (--dataset U1..U4) only: the bound trained on "
        f"(default {VARIATIONAL_DEFAULTS['objective']})",
        choices=OBJECTIVES,
    )
    num_importance_samples: int | None = option(
        None,
        f"variational inference only: K samples per estimate of the iw-elbo "
        f"(default {VARIATIONAL_DEFAULTS['num_importance_samples']})",
        kind="positive_int",
        metavar="K",
    )
    gradient_estimator: str | None = option(
        None,
        f"variational inference only: the gradient estimator (default "
        f"{VARIATIONAL_DEFAULTS['gradient_estimator']}; stl for the elbo, dreg for the iw-elbo)",
        choices=GRADIENT_ESTIMATORS,
    )


DEFAULTS: dict[str, Any] = dataclasses.asdict(TrainConfig())


def resolve_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` over `TrainConfig`'s defaults, names and values checked, the schedule's keys (`run_defaults`) and VI
    keys filled in and a run name chosen.

    Keys given as None take their default (a flag not passed); the result is a plain dict (config.json).
    """
    from keras_models.flows.presets import preset

    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown configuration keys {unknown}; expected keys among {sorted(DEFAULTS)}")
    resolved = dataclasses.asdict(TrainConfig(**{k: v for k, v in config.items() if v is not None or k == "name"}))
    entry = preset(resolved["preset"])  # raises with the valid names
    for key, default in run_defaults(entry.name).items():
        if resolved[key] is None:
            resolved[key] = default
    if resolved["data"] is not None:
        _resolve_data_keys(resolved, given_dataset=config.get("dataset"))
    elif not is_energy(resolved["dataset"]):
        from tfp_flows.datasets import list_datasets

        if resolved["dataset"] not in list_datasets():
            from tfp_flows.datasets.energies import ENERGIES

            raise ValueError(
                f"unknown dataset {resolved['dataset']!r}; expected one of "
                f"{sorted(list_datasets()) + sorted(name.upper() for name in ENERGIES)}"
            )
    _resolve_variational_keys(resolved)
    _check_conditional(resolved)
    _check_numbers(resolved)
    if resolved["strategy"] not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {list(STRATEGIES)}; received {resolved['strategy']!r}")
    data_name = _data_name(resolved["data"]) if resolved["data"] is not None else str(resolved["dataset"]).lower()
    resolved["name"] = resolved["name"] or f"{resolved['preset']}-{data_name}"
    return resolved


def _data_name(source: str) -> str:
    """A run name's data part for `--data`: the file's or folder's name without its suffix, in export-safe
    characters."""
    import os
    import re

    stem = os.path.splitext(os.path.basename(os.path.normpath(str(source))))[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-").lower() or "data"


def _resolve_data_keys(resolved: dict[str, Any], given_dataset: Any) -> None:
    """`data` replaces `dataset` (which becomes None); the two together, or `data` with an energy, are refused."""
    if given_dataset is not None:
        raise ValueError(
            f"`data` (--data) and `dataset` (--dataset) name two sources; expected one of them, received "
            f"data={resolved['data']!r} and dataset={given_dataset!r}"
        )
    if not isinstance(resolved["data"], str) or not resolved["data"]:
        raise ValueError(f"`data` (--data) must be a path; received {resolved['data']!r}")
    for key in ("columns", "log_columns"):
        value = resolved[key]
        if isinstance(value, (list, tuple)):  # a config file's list
            resolved[key] = ",".join(str(v) for v in value)
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"`{key}` must be comma-separated column names or a list; received {value!r}")
    if resolved["validation_fraction"] + resolved["test_fraction"] >= 1:
        raise ValueError(
            "`validation_fraction` + `test_fraction` must leave data for training (sum < 1); received "
            f"{resolved['validation_fraction']} + {resolved['test_fraction']}"
        )
    resolved["dataset"] = None


def _check_numbers(resolved: dict[str, Any]) -> None:
    """The numeric keys against their field's kind (what the command line's parser checks for flags)."""
    from tfp_flows.validation import check_int, check_number

    for field in dataclasses.fields(TrainConfig):
        value, kind = resolved[field.name], field.metadata["kind"]
        if value is None:
            continue
        if kind == "positive_int":
            check_int(value, field.name, minimum=1)
        elif kind == "int":
            check_int(value, field.name, minimum=None)
        elif kind == "positive_float":
            check_number(value, field.name, minimum=0, strict=True)
        elif kind == "fraction" and check_number(value, field.name, minimum=0) > 1:
            raise ValueError(f"`{field.name}` must be a number in [0, 1]; received {value!r}")
        elif kind == "open_fraction":
            check_number(value, field.name, minimum=0, below=1)


def _resolve_variational_keys(resolved: dict[str, Any]) -> None:
    """Fill in and check `objective` / `num_importance_samples` for a VI run; refuse them for a density run."""
    from tfp_flows.validation import check_int, check_one_of

    if resolved["data"] is not None or not is_energy(resolved["dataset"]):
        given = {key: resolved[key] for key in VARIATIONAL_DEFAULTS if resolved[key] is not None}
        if given:
            key, value = next(iter(given.items()))
            origin = f"--{key.replace('_', '-')}"
            raise ValueError(
                f"`{key}` ({origin}) applies only to variational inference on an "
                f"energy (--dataset U1..U4); received {key}={value!r} for the density-estimation "
                f"dataset {resolved['dataset']!r}"
            )
        return
    filled = {key: default if resolved[key] is None else resolved[key] for key, default in VARIATIONAL_DEFAULTS.items()}
    objective = check_one_of(filled["objective"], "objective", OBJECTIVES)
    k = check_int(filled["num_importance_samples"], "num_importance_samples", minimum=1)
    if objective == "elbo" and k > 1:
        raise ValueError(
            f"`num_importance_samples` > 1 needs objective 'iw-elbo' (--objective iw-elbo); received "
            f"num_importance_samples={k} with objective 'elbo'"
        )
    resolved["objective"], resolved["num_importance_samples"] = objective, k
    resolved["gradient_estimator"] = check_one_of(
        filled["gradient_estimator"], "gradient_estimator", GRADIENT_ESTIMATORS
    )


def _check_conditional(resolved: dict[str, Any]) -> None:
    """`conditional` needs labelled data and a preset with a conditional form; each refusal says which."""
    conditional = resolved["conditional"]
    if not isinstance(conditional, bool):
        raise TypeError(f"`conditional` must be true or false; received {conditional!r}")
    if not conditional:
        return
    from keras_models.flows.presets import PRESETS, preset
    from tfp_flows.datasets import dataset_info, list_datasets

    labelled = [name for name in list_datasets() if dataset_info(name).context_shape is not None]
    dataset = resolved["dataset"]
    if dataset is None:
        pass  # --data: the source says whether it has labels (an image folder with class subfolders)
    elif is_energy(dataset) or dataset_info(dataset).context_shape is None:
        raise ValueError(
            f"`conditional` (--conditional) needs a dataset with labels (a context_shape); "
            f"{dataset!r} has none. Expected one of {labelled}"
        )
    entry = preset(resolved["preset"])
    if not entry.conditional:
        conditional_presets = sorted(name for name, other in PRESETS.items() if other.conditional)
        raise ValueError(
            f"`conditional` (--conditional) needs a preset with a conditional form; preset {resolved['preset']!r} "
            f"({entry.model.__name__}) has none. Expected one of {conditional_presets}"
        )
