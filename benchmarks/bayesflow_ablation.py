"""What gives BayesFlow's `CouplingFlow` its edge on small tables: the peer of vs_plain_tfp.py with one of its
design choices turned off at a time, on the same folds, steps and optimiser, best validation checkpoint.

    python benchmarks/bayesflow_ablation.py [--data cancer30] [--seeds 0 1] [--variants NAME ...]

Variants (BayesFlow 2's `CouplingFlow` options): "default" (what a user gets: random permutations, ActNorm, an MLP
of hard-SiLU units with orthogonal init and dropout 0.05, the affine scale softplus(arcsinh(s)) shifted to 1 at
s = 0), "no-permutation", "no-actnorm", "relu-mlp" (ReLU, no dropout; residual blocks stay off as in the default)
and "no-clamp" (softplus(s) without the arcsinh).
Prints one line per fit and the median per variant; nothing is written.
"""

import argparse
import os
import statistics

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import vs_plain_tfp  # sets up the benchmark's imports (KERAS_BACKEND first)

VARIANTS = {
    "default": {},
    "no-permutation": {"permutation": None},
    "no-actnorm": {"use_actnorm": False},
    "relu-mlp": {"subnet_kwargs": {"activation": "relu", "residual": False, "dropout": 0.0}},
    # BayesFlow 2.0.12 passes `transform_kwargs` to the spline transform only, so the option goes in an instance.
    "no-clamp": {"transform": "affine-without-clamp"},
}


def _network_kwargs(name):
    kwargs = dict(VARIANTS[name])
    if kwargs.get("transform") == "affine-without-clamp":
        from bayesflow.networks.inference.coupling.transforms import AffineTransform

        kwargs["transform"] = AffineTransform(clamp=False)
    return kwargs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="cancer30", choices=list(vs_plain_tfp.unseen_data.TABULAR_BUILDERS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args(argv)
    best = {}
    for name in args.variants:
        for seed in args.seeds:
            fit = vs_plain_tfp.run_fit(
                args.data,
                "RealNVP",
                seed,
                False,
                plain=False,
                include_ours=False,
                keep_best=True,
                peer_args=_network_kwargs(name),
            )["peers"]["BayesFlow"]
            best.setdefault(name, []).append(fit[3])
            print(f"{args.data} seed {seed} BayesFlow {name}: best {fit[3]:.4f} at step {fit[4]} (last {fit[0]:.4f})")
    for name, values in best.items():
        print(f"{name}: median {statistics.median(values):.4f} ({min(values):.4f}-{max(values):.4f})")


if __name__ == "__main__":
    main()
