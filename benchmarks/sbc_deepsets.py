"""Amortised inference with a set encoder: is p(theta | x_1..n) from a flow with a DeepSets `context_network`
calibrated, and does it match the analytic posterior?

    python benchmarks/sbc_deepsets.py [--quick] [--dry-run] [--task mean scale] [--preset nsf] [--seeds 0]
                                      [--context-network deepsets|mlp]
                                      [--out results.json] [--figure ranks.png]

Two Gaussian tasks, each observed through a set x = {x_1, .., x_n} of n = 20 points in R^2 (the context, of shape
[n, 2], embedded by `DeepSetsEmbedding`: phi per point, mean pool, rho; Zaheer et al. 2017):
  - "mean": theta ~ N(0, I_2), x_i | theta ~ N(theta, sigma^2 I_2) with sigma = 1 known. The posterior is
    N(m, s^2 I_2), s^2 = 1 / (1 + n / sigma^2), m = s^2 n xbar / sigma^2 (conjugate normal).
  - "scale": the issue's task, the mean and log-scale of a 2-D Gaussian, theta = (mu_1, mu_2, log sigma), with the
    conjugate normal-inverse-gamma prior sigma^2 ~ InvGamma(a0, b0), mu | sigma^2 ~ N(0, sigma^2 / k0 I_2), and
    x_i | theta ~ N(mu, sigma^2 I_2). The posterior is normal-inverse-gamma with k_n = k0 + n, m_n = n xbar / k_n,
    a_n = a0 + n, b_n = b0 + S / 2 + k0 n |xbar|^2 / (2 k_n), S = sum_i |x_i - xbar|^2 (Murphy 2007,
    "Conjugate Bayesian analysis of the Gaussian distribution", sec. 6 with d = 2 dimensions sharing sigma).

A conditional flow q(theta | x) (the preset, by default NSF, with the DeepSets embedding shared by its couplings
and a `ConditionalGaussianBase`) is trained by maximum likelihood on simulated (theta, x) pairs, then checked:
  - simulation-based calibration (Talts et al. 2018, "Validating Bayesian inference algorithms with
    simulation-based calibration", algorithm 2): for M draws theta* ~ p(theta), x* ~ p(x | theta*), draw L
    samples theta_l ~ q(theta | x*) and take the rank of theta* among them per dimension, #{l: theta_l < theta*}
    in 0..L. A calibrated q makes the ranks uniform: a chi-square test (scipy.stats.chisquare) of their histogram
    in B bins, which must not reject at the 1% level for any dimension;
  - the analytic posterior: the expected KL divergence E_x KL(p(. | x) || q(. | x)) = E_(theta, x) [log p(theta |
    x) - log q(theta | x)] in nats, and on K held-out sets the error of q's posterior mean (in units of the true
    posterior std) and the ratio of q's std to the true one, per dimension (from 1000 samples each).

`--context-network mlp` swaps the set encoder for `MLPEmbedding` on the flattened set (same widths: hidden
(64, 64, 64), the same embedding size), which must learn the set's symmetry from data.

Exit status 1 when a task fails the SBC test or its posterior means are off by more than 0.25 posterior stds on
average or its stds by more than 25%. `--quick`: a smaller budget, under 3 minutes on 2 CPU cores for both tasks.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import tensorflow as tf
from scipy import special, stats

from keras_models import ConditionalGaussianBase, DeepSetsEmbedding, MLPEmbedding
from keras_models.flows.presets import build_model

NUM_OBS, OBS_DIM, SIGMA = 20, 2, 1.0  # "mean": n points in R^2 with a known noise scale
A0, B0, K0 = 3.0, 3.0, 1.0  # "scale": the normal-inverse-gamma prior
TASKS = ("mean", "scale")

FULL = dict(num_train=50_000, steps=4000, batch=256, lr=1e-3, num_layers=4, hidden=(64, 64), embedding=16)
QUICK = dict(num_train=20_000, steps=1200, batch=256, lr=2e-3, num_layers=3, hidden=(64, 64), embedding=16)
DRY = dict(QUICK, num_train=512, steps=5)
SBC = dict(num_draws=500, num_samples=99, num_bins=10, num_check=50, check_samples=1000, kl_draws=5000)
SBC_QUICK = dict(SBC, num_draws=300)
SBC_DRY = dict(num_draws=20, num_samples=9, num_bins=5, num_check=3, check_samples=50, kl_draws=50)


# ------------------------------------------------------------------------------------------------------------
# The tasks: prior draws, the simulator and the analytic posterior.
def simulate(task, num, rng):
    """(theta [num, D], x [num, NUM_OBS, OBS_DIM]) from the prior and the simulator, float64."""
    if task == "mean":
        theta = rng.normal(size=(num, OBS_DIM))
        x = theta[:, None] + SIGMA * rng.normal(size=(num, NUM_OBS, OBS_DIM))
        return theta, x
    variance = B0 / rng.gamma(A0, size=num)  # sigma^2 ~ InvGamma(a0, b0)
    scale = np.sqrt(variance)
    mu = rng.normal(size=(num, OBS_DIM)) * (scale / np.sqrt(K0))[:, None]
    x = mu[:, None] + scale[:, None, None] * rng.normal(size=(num, NUM_OBS, OBS_DIM))
    return np.concatenate([mu, np.log(scale)[:, None]], axis=1), x


def posterior_parameters(task, x):
    """The analytic posterior's parameters for sets x [num, NUM_OBS, OBS_DIM] (module docstring)."""
    n, xbar = x.shape[1], x.mean(axis=1)
    if task == "mean":
        variance = 1.0 / (1.0 + n / SIGMA**2)
        return dict(mean=variance * n * xbar / SIGMA**2, variance=variance)
    k_n = K0 + n
    spread = ((x - xbar[:, None]) ** 2).sum(axis=(1, 2))
    a_n = A0 + n * OBS_DIM / 2
    b_n = B0 + spread / 2 + K0 * n * (xbar**2).sum(axis=1) / (2 * k_n)
    return dict(m=n * xbar / k_n, k=k_n, a=a_n, b=b_n)


def posterior_log_prob(task, theta, x):
    """log p(theta | x), theta [num, D] (for "scale": the density of (mu, log sigma), Jacobian 2 sigma^2 included)."""
    post = posterior_parameters(task, x)
    if task == "mean":
        return stats.norm(post["mean"], np.sqrt(post["variance"])).logpdf(theta).sum(axis=1)
    mu, log_sigma = theta[:, :OBS_DIM], theta[:, OBS_DIM]
    variance = np.exp(2 * log_sigma)
    log_mu = stats.norm(post["m"], np.sqrt(variance / post["k"])[:, None]).logpdf(mu).sum(axis=1)
    log_variance = stats.invgamma(post["a"], scale=post["b"]).logpdf(variance)
    return log_mu + log_variance + np.log(2 * variance)


def posterior_moments(task, x):
    """(mean [num, D], std [num, D]) of the analytic posterior."""
    post = posterior_parameters(task, x)
    if task == "mean":
        return post["mean"], np.full_like(post["mean"], np.sqrt(post["variance"]))
    a, b, k = post["a"], post["b"], post["k"]
    mu_std = np.sqrt(b / (k * (a - 1)))  # the marginal Student-t's std, 2a degrees of freedom
    log_sigma_mean = 0.5 * (np.log(b) - special.digamma(a))  # log sigma = (log sigma^2) / 2, sigma^2 ~ IG(a, b)
    log_sigma_std = np.full_like(b, 0.5 * np.sqrt(special.polygamma(1, a)))  # a_n is the same for every set
    mean = np.concatenate([post["m"], log_sigma_mean[:, None]], axis=1)
    std = np.concatenate([np.repeat(mu_std[:, None], OBS_DIM, axis=1), log_sigma_std[:, None]], axis=1)
    return mean, std


# ------------------------------------------------------------------------------------------------------------
def context_network(kind, budget):
    if kind == "mlp":
        return MLPEmbedding(embedding_dim=budget["embedding"], hidden_units=(64, 64, 64))
    return DeepSetsEmbedding(embedding_dim=budget["embedding"], phi_units=(64, 64), rho_units=(64,))


def train(task, preset, budget, seed, embedding="deepsets"):
    """A conditional flow q(theta | x) with a context network (DeepSets by default), fitted to simulated pairs."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    theta, x = simulate(task, budget["num_train"], rng)
    size = theta.shape[1]
    args = dict(hidden_units=budget["hidden"], context_shape=(NUM_OBS, OBS_DIM))
    args["num_couplings" if preset == "realnvp" else "num_layers"] = budget["num_layers"]
    model = build_model(
        preset,
        (size,),
        context_network=context_network(embedding, budget),
        base_distribution=ConditionalGaussianBase(hidden_units=(64,)),
        **args,
    )
    pairs = tf.data.Dataset.from_tensor_slices((theta.astype(np.float32), x.astype(np.float32)))
    batches = pairs.shuffle(len(theta), seed=seed).repeat().batch(budget["batch"], drop_remainder=True).prefetch(2)
    schedule = keras.optimizers.schedules.CosineDecay(budget["lr"], budget["steps"], alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    start = time.perf_counter()
    history = model.fit(batches, epochs=1, steps_per_epoch=budget["steps"], verbose=0)
    return model, time.perf_counter() - start, float(history.history["nll"][-1])


def posterior_samples(model, x, num_samples, seed):
    """[len(x), num_samples, D] draws of q(theta | x) for each set of x, in one batched call."""
    contexts = np.repeat(x.astype(np.float32), num_samples, axis=0)
    samples = model.sample(len(contexts), contexts, seed=seed).numpy().astype(np.float64)
    return samples.reshape(len(x), num_samples, -1)


def sbc(model, task, checks, seed):
    """Ranks of theta* among L posterior draws, per dimension, and the chi-square test of their uniformity."""
    rng = np.random.default_rng(seed + 1000)
    theta, x = simulate(task, checks["num_draws"], rng)
    draws = posterior_samples(model, x, checks["num_samples"], seed=[seed, 1])
    ranks = (draws < theta[:, None]).sum(axis=1)  # [M, D], values 0..L
    bins = checks["num_bins"]
    per_bin = (checks["num_samples"] + 1) // bins  # L + 1 rank values, an equal number per bin
    histograms = [np.bincount(r // per_bin, minlength=bins)[:bins].tolist() for r in ranks.T]
    tests = [stats.chisquare(h) for h in histograms]
    return dict(
        histograms=histograms,
        chi2=[float(t.statistic) for t in tests],
        p_values=[float(t.pvalue) for t in tests],
        passed=bool(all(t.pvalue > 0.01 for t in tests)),
    )


def against_truth(model, task, checks, seed):
    """Expected KL(p || q) over the joint, and q's posterior mean error and std ratio on held-out sets."""
    rng = np.random.default_rng(seed + 2000)
    theta, x = simulate(task, checks["kl_draws"], rng)
    log_q = model.log_prob(theta.astype(np.float32), x.astype(np.float32)).numpy().astype(np.float64)
    expected_kl = float(np.mean(posterior_log_prob(task, theta, x) - log_q))
    _, x = simulate(task, checks["num_check"], rng)
    draws = posterior_samples(model, x, checks["check_samples"], seed=[seed, 2])
    mean, std = posterior_moments(task, x)
    mean_error = np.abs(draws.mean(axis=1) - mean) / std  # in posterior stds
    std_ratio = draws.std(axis=1) / std
    return dict(
        expected_kl=expected_kl,
        mean_error_in_stds=mean_error.mean(axis=0).tolist(),
        std_ratio=np.median(std_ratio, axis=0).tolist(),
        passed=bool(mean_error.mean() < 0.25 and np.all(np.abs(np.median(std_ratio, axis=0) - 1) < 0.25)),
    )


def run_task(task, preset, budget, checks, seed, embedding="deepsets"):
    model, train_seconds, nll = train(task, preset, budget, seed, embedding)
    row = dict(
        task=task, preset=preset, context_network=embedding, seed=seed, train_seconds=train_seconds, final_train_nll=nll
    )
    row["sbc"] = sbc(model, task, checks, seed)
    row["posterior"] = against_truth(model, task, checks, seed)
    row["passed"] = row["sbc"]["passed"] and row["posterior"]["passed"]
    names = ["mu_1", "mu_2"] + (["log_sigma"] if task == "scale" else [])
    print(
        f"{task}: {preset} with {embedding}, {budget['steps']} steps in {train_seconds:.0f} s "
        f"(train NLL {nll:.3f}); SBC chi2 p = "
        + ", ".join(f"{n} {p:.3f}" for n, p in zip(names, row["sbc"]["p_values"]))
        + f"; E KL(p||q) {row['posterior']['expected_kl']:.4f} nats; mean error (stds) "
        + ", ".join(f"{v:.3f}" for v in row["posterior"]["mean_error_in_stds"])
        + "; std ratio "
        + ", ".join(f"{v:.3f}" for v in row["posterior"]["std_ratio"])
        + f" -> {'pass' if row['passed'] else 'FAIL'}",
        flush=True,
    )
    return row


def plot(rows, checks, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(row, d) for row in rows for d in range(len(row["sbc"]["histograms"]))]
    figure, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.4), squeeze=False)
    for axis, (row, d) in zip(axes[0], panels):
        histogram = row["sbc"]["histograms"][d]
        expected = checks["num_draws"] / checks["num_bins"]
        band = stats.binom(checks["num_draws"], 1 / checks["num_bins"]).ppf([0.005, 0.995])
        axis.axhspan(*band, color="0.85")
        axis.axhline(expected, color="0.4", lw=0.8)
        axis.bar(np.arange(len(histogram)), histogram, width=0.9, color="tab:blue")
        name = (["mu_1", "mu_2"] + (["log sigma"] if row["task"] == "scale" else []))[d]
        axis.set_title(f"{row['task']}: {name}\np = {row['sbc']['p_values'][d]:.2f}", fontsize=9)
        axis.set_xticks([])
    figure.suptitle("SBC rank histograms (grey: 99% band per bin)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller budget: under 3 minutes for both tasks")
    parser.add_argument("--dry-run", action="store_true", help="a few steps and draws (no verdict)")
    parser.add_argument("--task", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--preset", default="nsf", help="a conditional preset: nsf (default), realnvp or maf")
    parser.add_argument("--context-network", default="deepsets", choices=("deepsets", "mlp"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run of every task per seed")
    parser.add_argument("--out", default=None, help="JSON file for the results (default: none written)")
    parser.add_argument("--figure", default=None, help="PNG of the SBC rank histograms (default: none)")
    args = parser.parse_args(argv)
    budget = DRY if args.dry_run else QUICK if args.quick else FULL
    checks = SBC_DRY if args.dry_run else SBC_QUICK if args.quick else SBC
    start = time.perf_counter()
    rows = [
        run_task(task, args.preset, budget, checks, seed, args.context_network)
        for seed in args.seeds
        for task in args.task
    ]
    seconds = time.perf_counter() - start
    print(f"{seconds:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                dict(
                    command="python benchmarks/sbc_deepsets.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                    budget={k: list(v) if isinstance(v, tuple) else v for k, v in budget.items()},
                    checks=checks,
                    tasks=dict(num_obs=NUM_OBS, obs_dim=OBS_DIM, sigma=SIGMA, a0=A0, b0=B0, k0=K0),
                    total_seconds=seconds,
                    tensorflow=tf.__version__,
                    keras=keras.__version__,
                    rows=rows,
                ),
                f,
                indent=1,
            )
    if args.figure:
        plot([row for row in rows if row["seed"] == args.seeds[0]], checks, args.figure)  # the first seed's
    if args.dry_run:
        return 0
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
