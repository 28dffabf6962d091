"""A run's configuration: the keys `tfp-flows train` flags and config files mirror, checked and defaulted."""
from keras_models.flows.presets import preset_class
from tfp_flows.validation import check_int

DEFAULTS = {
    "preset": "realnvp",
    "dataset": "two_moons",
    "epochs": 12,
    "steps_per_epoch": 200,
    "batch_size": 256,
    "learning_rate": 2e-3,
    "seed": 0,
    "model_args": {},
    "run_dir": "runs",
    "name": None,
    "export_dir": "saved_models",
    "export": True,
    "jit_compile": False,
    "strategy": "default",
    "validation_batches": 8,
    "restore_best": True,
    "num_plot_samples": 2000,
    "verbose": 1,
}


def is_energy(name):
    from tfp_flows.datasets.energies import ENERGIES  # noqa: PLC0415

    return str(name).lower() in ENERGIES


def resolve_config(config):
    """Defaults filled in, names checked, and a run name chosen."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown configuration keys {unknown}; expected keys among {sorted(DEFAULTS)}")
    resolved = dict(DEFAULTS, **{k: v for k, v in config.items() if v is not None or k == "name"})
    preset_class(resolved["preset"])  # raises with the valid names
    if not is_energy(resolved["dataset"]):
        from tfp_flows.datasets import list_datasets  # noqa: PLC0415

        if resolved["dataset"] not in list_datasets():
            from tfp_flows.datasets.energies import ENERGIES  # noqa: PLC0415

            raise ValueError(f"unknown dataset {resolved['dataset']!r}; expected one of "
                             f"{sorted(list_datasets()) + sorted(name.upper() for name in ENERGIES)}")
    for key in ("epochs", "steps_per_epoch", "batch_size"):
        check_int(resolved[key], key)
    if not resolved["learning_rate"] > 0:
        raise ValueError(f"`learning_rate` must be > 0; received {resolved['learning_rate']!r}")
    resolved["name"] = resolved["name"] or f"{resolved['preset']}-{str(resolved['dataset']).lower()}"
    return resolved
