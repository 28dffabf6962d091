"""Every docstring example of tfp_flows, tfp_flows.datasets and keras_models runs and prints what it shows.

The same examples run with `python -m pytest --doctest-modules tfp_flows keras_models`; this file puts them in
the suite (one test per module, so a failure names the module). Examples are kept tiny (a few steps of `fit`
on a few batches); the few that need something the suite does not have (a TF Serving server, a TFDS download)
say so and are marked `# doctest: +SKIP`.
"""

import doctest
import importlib
import pkgutil

import pytest

import keras_models
import tfp_flows
import tfp_flows.datasets


def _module_names():
    names = set()
    # tfp_flows.datasets is installed from datasets/, outside tfp_flows/: walk it on its own.
    for package in (tfp_flows, tfp_flows.datasets, keras_models):
        names.add(package.__name__)
        names.update(info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."))
    return sorted(names)


def _has_examples(name):
    return any(test.examples for test in doctest.DocTestFinder().find(importlib.import_module(name)))


MODULES = [name for name in _module_names() if _has_examples(name)]


@pytest.mark.slow
def test_the_examples_cover_both_packages_and_the_datasets():
    assert {
        "tfp_flows.planar",
        "tfp_flows.datasets.pipeline",
        "keras_models.flows.realnvp",
        "keras_models.serving.export",
        "tfp_flows.validation",
    } <= set(MODULES)


@pytest.fixture(scope="module", autouse=True)
def _digits_prepared():
    """Examples read the digits through TFDS; the first read prepares them and prints TFDS' progress lines, which
    a doctest would take for output. Prepare them here, whichever test of the suite comes first."""
    tfp_flows.datasets.make_dataset("digits", split="train", batch_size=1)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.slow_params(
    "keras_models.core.flow_model",
    "keras_models.flows.cnf",
    "keras_models.flows.flow_plus_plus",
    "keras_models.flows.glow",
    "keras_models.flows.maf",
    "keras_models.flows.nice",
    "keras_models.flows.nsf",
    "keras_models.flows.planar_radial",
    "keras_models.flows.prelu_flow",
    "keras_models.flows.realnvp",
    "keras_models.flows.variational",
    "keras_models.serving.export",
)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in doctest.DocTestFinder().find(module):
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)
