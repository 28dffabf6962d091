"""Glow on 8x8 digits: bits/dim, samples at temperatures 1.0, 0.7 and 0.5, and a latent interpolation.

Reproduces: D. Kingma & P. Dhariwal (2018), "Glow: Generative Flow with Invertible 1x1 Convolutions", its
temperature-reduced samples (fig. 8: z ~ N(0, T^2 I) trades diversity for quality) and its latent
interpolations (fig. 5: decode (1 - t) f^-1(x1) + t f^-1(x2)), on scikit-learn's offline 8x8 digits instead of
CelebA. Each level: squeeze, K steps of [ActNorm, invertible 1x1 conv, affine coupling], split with a learned
prior (`keras_models.Glow`). Digits have 17 grey levels, so they are dequantized at those, x = (level + u) / 17
(`make_dataset`), and the script prints the test bits/dim of the discrete model that defines,
log2 17 - log p(x) / (D ln 2): a model that knows only which 17 levels occur scores log2 17 = 4.09. Sampling runs each
coupling's sigmoid scale g backwards (divides by g <= 1); `Glow` floors g at exp(-2), so no sample overflows. With
Glow's bare sigmoid (`Glow(..., log_scale_limit=math.inf)`) about 7% of the T = 1 samples of this model overflowed
to inf/NaN (0.2% at T = 0.7). The script prints the share of non-finite samples per temperature (now 0) and shows
finite samples only.

Run:   python examples/glow_digits.py               (--quick: a few steps; --out DIR: where the figure goes)
Time:  about 5 min on 2 CPU cores shared with other jobs (3,000 steps, the best validation epoch kept;
       --quick: about 15 s).
Writes: <out>/glow_digits.png (rows: samples at T = 1.0, 0.7, 0.5; an interpolation between two test digits)
"""

import matplotlib

matplotlib.use("Agg")
import _common
import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_models import Glow
from keras_models.train.plots import image_grid
from tfp_flows.datasets import dataset_info, make_dataset

TEMPERATURES = (1.0, 0.7, 0.5)
COLUMNS = 10
DRAWS = 500  # samples drawn per temperature (to report how many overflow)


def main():
    args = _common.parse_args(__doc__)

    epochs, steps, width = (1, 3, 4) if args.quick else (100, 30, 64)
    model = Glow(
        event_shape=(8, 8, 1),
        num_levels=2,
        num_steps=2 if args.quick else 8,
        hidden_channels=width,
        seed=0,
        pixel_levels=dataset_info("digits").num_levels,
    )
    learning_rate = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=epochs * steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), steps_per_execution=steps)
    model.fit(
        make_dataset("digits", "train", batch_size=64, repeat=True),
        epochs=epochs,
        steps_per_epoch=steps,
        validation_data=make_dataset("digits", "validation", batch_size=250, shuffle=False),
        # 1,297 training images: keep the epoch that fits the held-out digits best, not the last one
        # (patience = epochs: it never stops early, it only restores the best weights at the end).
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs, restore_best_weights=True)],
        verbose=2,
    )

    test = make_dataset("digits", "test", batch_size=250, shuffle=False)
    print(
        f"test bits/dim: {model.evaluate(test, return_dict=True, verbose=0)['bits_per_dim']:.3f} "
        "(uniform dequantization at 17 levels; log2 17 = 4.09 = knowing only which levels occur)"
    )

    rows = []
    for temperature in TEMPERATURES:
        draws = model.sample(DRAWS, temperature=temperature, seed=1).numpy()
        finite = draws[np.isfinite(draws).all(axis=(1, 2, 3))]
        # Without the coupling scale floor, some T = 1 latents would overflow here (see the docstring).
        share = 1 - len(finite) / DRAWS
        print(f"T = {temperature}: {share:.1%} of {DRAWS} samples overflowed to inf/NaN")
        rows.append(
            (
                f"samples, T = {temperature}" + (f" ({share:.1%} of draws non-finite, not shown)" if share else ""),
                finite[:COLUMNS],
            )
        )
    first, second = next(iter(test))[:2]
    rows.append(("interpolation between two test digits", model.interpolate(first, second, num_steps=COLUMNS)))

    fig, axes = plt.subplots(len(rows), 1, figsize=(0.8 * COLUMNS, 1.25 * len(rows)))
    for ax, (title, images) in zip(axes, rows):
        # A 1-pixel white gap between tiles: digits touch their 8 x 8 borders, and touching tiles run together.
        ax.imshow(image_grid(images, COLUMNS, pad=1)[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    _common.save_figure(fig, args.out, "glow_digits.png")


if __name__ == "__main__":
    main()
