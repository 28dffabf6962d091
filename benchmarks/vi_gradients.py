"""Low-variance VI gradients: `VariationalFlow(gradient_estimator=...)` "stl" and "dreg" against "reparameterized".

    python benchmarks/vi_gradients.py [--quick] [--targets U1 U2 U3 U4 gaussian] [--steps N] [--out results.json]

Two comparisons per target, each from the same initial flow and the same sampler seed, at equal steps:
  - the ELBO (K = 1): "reparameterized" against "stl" (Roeder, Wu & Duvenaud 2017);
  - the importance-weighted bound L_K: "reparameterized" against "dreg" (Tucker et al. 2019).
Reported per run: the final ELBO (10^4 draws), L_K (objective "iw-elbo"), and log Z estimated by importance
sampling from q (`estimate_log_normalizer`, 2 x 10^4 draws); and per comparison, at the flow trained with the
plain estimator, the gradient variance over 100 repeated estimates (each from one step's draws): the sum over all
weights of the per-weight variance, and its ratio (below 1: the low-variance estimator wins).

Targets: Rezende & Mohamed's U1-U4 (log p~ = -U; only U1 has a finite log Z, by quadrature here; U2-U4 do not decay
along z1, so their "log Z" is the mass within q's reach) and "gaussian", a correlated 2-D Gaussian times e^2
(log Z = 2 exactly). q: RealNVP without ActNorm (no data to initialise it from). `--quick`: 2 couplings of 16
units, 150 steps of 64 draws, K = 4: about 2 minutes on 2 shared cores.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras
import numpy as np
import tensorflow as tf
from harness import device_description

from keras_models import RealNVP, VariationalFlow
from tfp_flows.datasets.energies import get_energy

GAUSSIAN_LOG_Z = 2.0
GAUSSIAN_MEAN = np.array([1.0, -1.0])
GAUSSIAN_COVARIANCE = np.array([[1.0, 0.6], [0.6, 0.8]])
COMPARISONS = (("elbo", "stl"), ("iw-elbo", "dreg"))
REPEATS = 100


def gaussian_target(z):
    """log N(z; GAUSSIAN_MEAN, GAUSSIAN_COVARIANCE) + GAUSSIAN_LOG_Z."""
    precision = tf.constant(np.linalg.inv(GAUSSIAN_COVARIANCE), z.dtype)
    centred = z - tf.constant(GAUSSIAN_MEAN, z.dtype)
    quadratic = tf.reduce_sum(tf.matmul(centred, precision) * centred, axis=-1)
    log_norm = -np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(GAUSSIAN_COVARIANCE)[1]
    return -0.5 * quadratic + log_norm + GAUSSIAN_LOG_Z


def known_log_z(name):
    """The exact log Z of "gaussian", U1's by quadrature on [-8, 8]^2, None for U2-U4 (infinite mass)."""
    if name == "gaussian":
        return GAUSSIAN_LOG_Z
    if name != "U1":
        return None
    grid = np.linspace(-8.0, 8.0, 801)
    points = np.stack(np.meshgrid(grid, grid), axis=-1).astype(np.float32)
    energy = get_energy("U1")(points).numpy().astype(np.float64)
    return float(np.log(np.sum(np.exp(-energy)) * (grid[1] - grid[0]) ** 2))


def target_of(name):
    return gaussian_target if name == "gaussian" else name


def gradient_variance(vi_models, batch_size, repeats):
    """{estimator: total variance} of `repeats` gradient estimates (each from `batch_size` draws)."""
    dummy = tf.zeros([batch_size])

    def estimate(model):
        weights = model.flow.trainable_weights
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=dummy, y_pred=model(dummy, training=True))
        return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, weights)], axis=0)

    result = {}
    for estimator, model in vi_models.items():
        step = tf.function(lambda m=model: estimate(m))
        samples = np.stack([step().numpy() for _ in range(repeats)])
        result[estimator] = float(np.sum(samples.var(axis=0, ddof=1)))
    return result


def run_comparison(target, objective, better, args):
    """Train q with "reparameterized" and with `better` at equal steps; returns the records."""
    k = 1 if objective == "elbo" else args.num_importance_samples
    records, trained = [], {}
    for estimator in ("reparameterized", better):
        keras.utils.set_random_seed(args.seed)
        flow = RealNVP((2,), num_couplings=args.couplings, hidden_units=(args.hidden,) * 2, actnorm=False)
        vi = VariationalFlow(
            flow,
            target_log_prob=target_of(target),
            batch_size=args.batch_size,
            seed=args.seed,
            objective=objective,
            num_importance_samples=k,
            gradient_estimator=estimator,
        )
        vi.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        start = time.perf_counter()
        vi.fit(epochs=1, steps_per_epoch=args.steps, verbose=0)
        seconds = time.perf_counter() - start
        estimate = vi.estimate_log_normalizer(20_000, seed=1)
        trained[estimator] = flow
        records.append(
            dict(
                target=target,
                objective=objective,
                num_importance_samples=k,
                estimator=estimator,
                steps=args.steps,
                elbo=float(vi.elbo(10_000, seed=1)),
                iw_elbo=float(vi.iw_elbo(2_000, num_importance_samples=k, seed=1)) if k > 1 else None,
                log_z=estimate.log_z,
                log_z_standard_error=estimate.standard_error,
                ess=estimate.ess,
                train_seconds=round(seconds, 2),
            )
        )
    # The variance of both estimators at one trained flow (the plain estimator's), over the same draws.
    flow = trained["reparameterized"]
    models = {
        e: VariationalFlow(
            flow,
            target_log_prob=target_of(target),
            batch_size=args.batch_size,
            seed=args.seed + 1,
            objective=objective,
            num_importance_samples=k,
            gradient_estimator=e,
        )
        for e in ("reparameterized", better)
    }
    variance = gradient_variance(models, args.batch_size, REPEATS)
    for record in records:
        record["gradient_variance"] = variance[record["estimator"]]
        record["variance_ratio"] = variance[record["estimator"]] / variance["reparameterized"]
    return records


def _fmt(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--targets", nargs="+", default=["U1", "U2", "U3", "U4", "gaussian"])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON file for the records")
    args = parser.parse_args(argv)
    args.couplings, args.hidden = (2, 16) if args.quick else (6, 64)
    args.steps = args.steps or (150 if args.quick else 2000)
    args.batch_size = 64 if args.quick else 256
    args.num_importance_samples = 4 if args.quick else 16
    args.learning_rate = 1e-2 if args.quick else 1e-3
    start = time.time()
    print(
        f"device: {device_description()}; RealNVP {args.couplings} couplings x {args.hidden} units, {args.steps} "
        f"steps of {args.batch_size} draws, K = {args.num_importance_samples}, variance over {REPEATS} estimates"
    )
    header = (
        f"{'target':8} {'objective':9} {'estimator':16} {'ELBO':>8} {'L_K':>8} {'log Z':>8} {'(true)':>7} "
        f"{'grad var':>10} {'ratio':>6}"
    )
    print(header)
    records = []
    for target in args.targets:
        truth = known_log_z(target)
        for objective, better in COMPARISONS:
            for record in run_comparison(target, objective, better, args):
                record["true_log_z"] = truth
                records.append(record)
                print(
                    f"{target:8} {objective:9} {record['estimator']:16} {_fmt(record['elbo']):>8} "
                    f"{_fmt(record['iw_elbo']):>8} {_fmt(record['log_z']):>8} {_fmt(truth, 2):>7} "
                    f"{record['gradient_variance']:10.3g} {record['variance_ratio']:6.2f}",
                    flush=True,
                )
    print(f"wall time {time.time() - start:.0f} s")
    if args.out:
        command = " ".join(["python benchmarks/vi_gradients.py"] + sys.argv[1:])
        with open(args.out, "w") as handle:
            json.dump({"command": command, "records": records}, handle, indent=1)


if __name__ == "__main__":
    main()
