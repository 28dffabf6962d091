"""Ranks CNF's flow-matching training options at equal steps on two moons: the KL gap after N steps.

    python benchmarks/cnf_training_options.py [--steps 8000] [--seed 0] [--options constant-2e-3 cosine-2e-2 ...]
                                              [--out benchmarks/results-cnf-training-options.json]

Equal steps rather than equal time: on a machine shared with other jobs, a 20-s wall-time budget bought from 7,000
to 11,000 steps of the same model, which swamped the differences being ranked; each option's seconds are reported
beside its gap, so a costlier step shows. The data, the model (`CNF(hidden_units=(64, 64), seed=0)`, batch 256) and
the scoring (KL gap on 5,000 held-out points) are benchmarks/cnf_vs_coupling.py's. Options:

  constant-R       Adam at the constant learning rate R
  cosine-R         Adam with R reached by linear warmup over the first 2 % of the steps, then cosine decay to 0
                   (`keras.optimizers.schedules.CosineDecay`)
  ema-...          the same with an EMA of the weights (Keras' `use_ema=True`, momentum 0.999), swapped in at the end
  batch1024-...    batch 1,024
  ot-...           `CNF(coupling="ot")`: minibatch optimal-transport pairing
  tight-...        also scores the trained model with the solver at rtol = atol = 1e-8 (evaluation only)
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cnf_vs_coupling
import keras
import tensorflow as tf
from harness import device_description, versions

from keras_models import CNF

DEFAULT_OPTIONS = ["constant-2e-3", "constant-5e-3", "cosine-2e-3", "cosine-1e-2", "cosine-2e-2", "cosine-4e-2"]


def parse(option):
    """(flags, schedule, learning rate) of an option name such as "ema-cosine-2e-2"."""
    parts = option.split("-")
    schedules = [i for i, part in enumerate(parts) if part in ("constant", "cosine")]
    flags = set(parts[: schedules[0]]) if schedules else {"?"}
    if not schedules or not flags <= {"ema", "batch1024", "ot", "tight"}:
        raise ValueError(f"--options: expected [ema-][batch1024-][ot-][tight-]constant|cosine-RATE; received {option}")
    return flags, parts[schedules[0]], float("-".join(parts[schedules[0] + 1 :]))


def run_option(option, steps, seed, train, test, true_log_prob):
    flags, schedule, rate = parse(option)
    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            rate * 0.01, decay_steps=steps, warmup_target=rate, warmup_steps=steps // 50
        )
    keras.utils.set_random_seed(seed)
    coupling = "ot" if "ot" in flags else "independent"
    model = CNF((2,), hidden_units=(64, 64), seed=0, coupling=coupling)
    optimizer = keras.optimizers.Adam(rate, use_ema="ema" in flags, ema_momentum=0.999)
    model.compile(optimizer=optimizer, steps_per_execution=10)
    batch = 1024 if "batch1024" in flags else cnf_vs_coupling.BATCH
    dataset = tf.data.Dataset.from_tensor_slices(train).shuffle(len(train), seed=seed).batch(batch, drop_remainder=True)
    start = time.perf_counter()
    model.fit(dataset.repeat().prefetch(2), epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - start
    gap, error, _ = cnf_vs_coupling.kl_gap_and_timing(model, test, true_log_prob)
    record = dict(option=option, steps=steps, seed=seed, kl_gap=gap, kl_gap_error=error, train_seconds=seconds)
    if "tight" in flags:
        tight = CNF((2,), hidden_units=(64, 64), seed=0, rtol=1e-8, atol=1e-8)
        tight(test[:2])
        tight.set_weights(model.get_weights())
        record["kl_gap_tight_solver"] = cnf_vs_coupling.kl_gap_and_timing(tight, test, true_log_prob)[0]
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", nargs="+", default=DEFAULT_OPTIONS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    for option in args.options:
        parse(option)  # every name checked before hours of training
    train, test, true_log_prob = cnf_vs_coupling.density_data("two_moons", args.seed, 200_000, 5000)
    records = []
    for option in args.options:
        record = run_option(option, args.steps, args.seed, train, test, true_log_prob)
        records.append(record)
        print(
            f"  {option:28} KL gap {record['kl_gap']:.4f} +- {record['kl_gap_error']:.4f} in "
            f"{record['train_seconds']:.0f} s",
            flush=True,
        )
    if args.out:
        command = " ".join(["python benchmarks/cnf_training_options.py"] + (argv if argv is not None else sys.argv[1:]))
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(
                dict(command=command, device=device_description(), versions=versions(), records=records),
                handle,
                indent=1,
            )
            handle.write("\n")


if __name__ == "__main__":
    main()
