"""A run's configuration: the keys `tfp-flows train` flags and config files mirror, checked and defaulted.

`conditional` trains p(x | c) on `make_dataset(..., conditional=True)`'s (x, c) pairs: it needs a dataset with
a `context_shape` (labels) and a preset whose constructor takes `context_shape` (checked on its signature, through
**kwargs up the class hierarchy), and says which is missing otherwise.

`objective` and `num_importance_samples` belong to variational inference (`--dataset U1`..`U4`): they become
`VariationalFlow(objective=..., num_importance_samples=...)` and default there to "elbo" and 1; a
density-estimation run refuses them rather than silently ignoring them. So does `gradient_estimator` (a config
file key, no flag: `VariationalFlow(gradient_estimator=...)`, "reparameterized" by default, which checks it).
"""

import inspect

from keras_models.flows.presets import preset_class
from keras_models.flows.variational import OBJECTIVES
from tfp_flows.validation import check_int, check_one_of

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
    "conditional": False,
    # Variational inference only (None: not given; a VI run then uses "elbo" and 1).
    "objective": None,
    "num_importance_samples": None,
    "gradient_estimator": None,
}

VARIATIONAL_KEYS = ("objective", "num_importance_samples", "gradient_estimator")


def is_energy(name):
    from tfp_flows.datasets.energies import ENERGIES

    return str(name).lower() in ENERGIES


def resolve_config(config):
    """Defaults filled in, names checked, and a run name chosen."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown configuration keys {unknown}; expected keys among {sorted(DEFAULTS)}")
    resolved = dict(DEFAULTS, **{k: v for k, v in config.items() if v is not None or k == "name"})
    preset_class(resolved["preset"])  # raises with the valid names
    if not is_energy(resolved["dataset"]):
        from tfp_flows.datasets import list_datasets

        if resolved["dataset"] not in list_datasets():
            from tfp_flows.datasets.energies import ENERGIES

            raise ValueError(
                f"unknown dataset {resolved['dataset']!r}; expected one of "
                f"{sorted(list_datasets()) + sorted(name.upper() for name in ENERGIES)}"
            )
    _resolve_variational_keys(resolved)
    _check_conditional(resolved)
    for key in ("epochs", "steps_per_epoch", "batch_size"):
        check_int(resolved[key], key)
    if not resolved["learning_rate"] > 0:
        raise ValueError(f"`learning_rate` must be > 0; received {resolved['learning_rate']!r}")
    resolved["name"] = resolved["name"] or f"{resolved['preset']}-{str(resolved['dataset']).lower()}"
    return resolved


def _resolve_variational_keys(resolved):
    """Fill in and check `objective` / `num_importance_samples` for a VI run; refuse them for a density run."""
    if not is_energy(resolved["dataset"]):
        given = {key: resolved[key] for key in VARIATIONAL_KEYS if resolved[key] is not None}
        if given:
            key, value = next(iter(given.items()))
            origin = "a config file key" if key == "gradient_estimator" else f"--{key.replace('_', '-')}"
            raise ValueError(
                f"`{key}` ({origin}) applies only to variational inference on an "
                f"energy (--dataset U1..U4); received {key}={value!r} for the density-estimation "
                f"dataset {resolved['dataset']!r}"
            )
        return
    objective = check_one_of(resolved["objective"] or "elbo", "objective", OBJECTIVES)
    k = check_int(
        1 if resolved["num_importance_samples"] is None else resolved["num_importance_samples"],
        "num_importance_samples",
        minimum=1,
    )
    if objective == "elbo" and k > 1:
        raise ValueError(
            f"`num_importance_samples` > 1 needs objective 'iw-elbo' (--objective iw-elbo); received "
            f"num_importance_samples={k} with objective 'elbo'"
        )
    resolved["objective"], resolved["num_importance_samples"] = objective, k


def takes_keyword(cls, name):
    """Whether `cls(...)` accepts the keyword argument `name`: named by its `__init__`, or passed on through
    `**kwargs` to a base class whose `__init__` names it."""
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters
        if name in parameters:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return False
    return False


def _check_conditional(resolved):
    """`conditional` needs labelled data and a preset that takes `context_shape`; each refusal says which."""
    conditional = resolved["conditional"]
    if not isinstance(conditional, bool):
        raise TypeError(f"`conditional` must be true or false; received {conditional!r}")
    if not conditional:
        return
    from tfp_flows.datasets import dataset_info, list_datasets

    labelled = [name for name in list_datasets() if dataset_info(name).context_shape is not None]
    dataset = resolved["dataset"]
    if is_energy(dataset) or dataset_info(dataset).context_shape is None:
        raise ValueError(
            f"`conditional` (--conditional) needs a dataset with labels (a context_shape); "
            f"{dataset!r} has none. Expected one of {labelled}"
        )
    model_class = preset_class(resolved["preset"])
    if not takes_keyword(model_class, "context_shape"):
        raise ValueError(
            f"`conditional` (--conditional) needs a preset whose constructor takes `context_shape`; "
            f"preset {resolved['preset']!r} ({model_class.__name__}) does not"
        )
