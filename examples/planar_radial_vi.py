"""Planar and radial flows as variational posteriors for the four test energies U1-U4.

Reproduces: D. Rezende & S. Mohamed (2015), "Variational Inference with Normalizing Flows", figure 3: a flow q
fitted to an unnormalised target p~(z) = exp(-U(z)) by maximising the ELBO (reverse KL),

    ELBO(q) = E_q[log p~(z) - log q(z)] = log Z - KL(q || p),

with K planar steps f(z) = z + u tanh(w.z + b) or K radial steps f(z) = z + beta (z - z0) / (alpha + |z - z0|)
(`keras_models.PlanarFlow`, `RadialFlow`, trained by `keras_models.VariationalFlow`). Planar steps bend the
Gaussian along hyperplanes and follow U2-U4's sine valleys; radial steps only contract or expand around points,
so they fit the ring U1 well and the valleys poorly, as in the paper. The figure is a grid with one row per
energy: target exp(-U) | planar q | radial q (densities on the paper's [-4, 4]^2); the ELBOs are printed.
(U2-U4 do not decay along z1, so they have no finite log Z; the ELBO still ranks the fits.)

Run:   python examples/planar_radial_vi.py          (--quick: a few steps; --out DIR; --num-layers K, default 16)
Time:  about 1.8 min on 2 CPU cores (--quick: about 15 s).
Writes: <out>/planar_radial_vi.png
"""

import matplotlib

matplotlib.use("Agg")
import _common
import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from keras_models import PlanarFlow, RadialFlow, VariationalFlow
from tfp_flows.datasets.energies import PLOT_LIMITS, get_energy

ENERGIES = ("U1", "U2", "U3", "U4")
FLOWS = {"planar": PlanarFlow, "radial": RadialFlow}


def fit_q(flow_class, energy, num_layers, steps):
    """A flow of `num_layers` steps fitted to exp(-energy) by `steps` Adam steps on the ELBO (256 samples)."""
    keras.utils.set_random_seed(0)
    vi = VariationalFlow(
        flow_class(event_shape=(2,), num_layers=num_layers), target_log_prob=energy, batch_size=256, seed=0
    )
    learning_rate = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=steps, alpha=0.05)
    vi.compile(optimizer=keras.optimizers.Adam(learning_rate), steps_per_execution=min(steps, 50))
    vi.fit(epochs=1, steps_per_epoch=steps, verbose=0)
    return vi


def main():
    args = _common.parse_args(
        __doc__,
        lambda parser: parser.add_argument(
            "--num-layers", type=int, default=16, help="flow steps K (the paper shows 2, 8, 32)"
        ),
    )
    tf.get_logger().setLevel("ERROR")  # eight models, eight traces: the retracing warning is expected
    num_layers, steps, resolution = (2, 5, 40) if args.quick else (args.num_layers, 1000, 100)

    (x0, x1), (y0, y1) = PLOT_LIMITS
    xx, yy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.stack([xx.ravel(), yy.ravel()], axis=-1).astype(np.float32)

    fig, axes = plt.subplots(len(ENERGIES), 1 + len(FLOWS), figsize=(7.5, 10))
    for row, energy in enumerate(ENERGIES):
        target = -np.asarray(get_energy(energy)(grid))
        panels = [(f"{energy}: target exp(-U)", np.exp(target - target.max()))]
        for name, flow_class in FLOWS.items():
            vi = fit_q(flow_class, energy, num_layers, steps)
            elbo = float(vi.elbo(10_000, seed=1))
            print(f"{energy} {name:6s} K={num_layers}: ELBO {elbo:.3f} nats")
            panels.append((f"{name} q, K={num_layers}", np.exp(np.asarray(vi.flow.log_prob(grid)))))
        for ax, (title, values) in zip(axes[row], panels):
            ax.imshow(values.reshape(xx.shape), origin="lower", extent=[x0, x1, y0, y1], cmap="viridis")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    _common.save_figure(fig, args.out, "planar_radial_vi.png")


if __name__ == "__main__":
    main()
