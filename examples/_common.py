"""The scaffolding every script in examples/ shares: its command line, its seed, where its figure goes.

Each script is run as `python examples/<script>.py [--quick] [--out DIR]` (its own folder is on sys.path, so
`import _common` finds this module); tests/test_examples.py runs them so with --quick.

>>> args = parse_args("A demo.", argv=["--quick", "--out", "/tmp/figures"])
>>> args.quick, args.out
(True, '/tmp/figures')
"""

import argparse
import os

import keras

FIGURES = os.path.join("examples", "figures")


def parse_args(doc, add_arguments=None, argv=None, seed=0):
    """The script's arguments: --out DIR (default examples/figures, created) and --quick, plus those
    `add_arguments(parser)` adds; Python, NumPy and TensorFlow are seeded with `seed`
    (`keras.utils.set_random_seed`).

    Args:
      doc: the script's module docstring; its first line is the --help description.
      add_arguments: None, or a callable taking the `argparse.ArgumentParser` to add the script's own flags.
      argv: the arguments (default: sys.argv[1:]).
      seed: the seed set before the script runs.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=FIGURES, help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="a tiny budget (seconds), for tests")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(seed)
    return args


def save_figure(fig, out, name, dpi=80):
    """Write the matplotlib figure `fig` to `out`/`name` as a PNG, say so, and return the path."""
    path = os.path.join(out, name)
    fig.savefig(path, dpi=dpi)
    return wrote(path)


def wrote(path):
    """Print which file a script wrote (the last line of every script's output) and return its path."""
    print(f"wrote {path}")
    return path
