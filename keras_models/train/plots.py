"""Figures for runs, made with matplotlib (Agg backend, files only): densities, sample grids, curves."""

from collections.abc import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import ArrayLike


def _grid(limits, resolution):
    (x0, x1), (y0, y1) = limits
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    xx, yy = np.meshgrid(xs, ys)
    return xx, yy, np.stack([xx.ravel(), yy.ravel()], axis=-1).astype(np.float32)


def limits_of(points: ArrayLike, margin: float = 0.15) -> list[tuple[float, float]]:
    """Square-ish plot limits that hold `points` with a margin."""
    lo, hi = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    pad = (hi - lo) * margin + 1e-3
    return [(lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])]


def plot_density_2d(
    log_prob_fn: Callable[[np.ndarray], np.ndarray],
    path: str,
    data: ArrayLike | None = None,
    samples: ArrayLike | None = None,
    target_log_prob_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    limits: Sequence[tuple[float, float]] | None = None,
    resolution: int = 150,
    title: str = "learned density",
    data_classes: ArrayLike | None = None,
    sample_classes: ArrayLike | None = None,
) -> str:
    """Heat map of exp(log_prob_fn) on a grid beside the data, the samples and (for VI) the target.

    `data_classes` / `sample_classes` (int arrays, optional) colour each point by its class (conditional runs).
    """
    reference = samples if data is None else data
    limits = limits or limits_of(np.asarray(reference))
    xx, yy, points = _grid(limits, resolution)
    panels = [(title, np.exp(np.asarray(log_prob_fn(points))).reshape(xx.shape))]
    if target_log_prob_fn is not None:
        target = np.asarray(target_log_prob_fn(points)).reshape(xx.shape)
        panels.insert(0, ("target exp(-U)", np.exp(target - target.max())))
    scatters = [
        (name, pts, classes)
        for name, pts, classes in (("data", data, data_classes), ("samples", samples, sample_classes))
        if pts is not None
    ]
    fig, axes = plt.subplots(1, len(panels) + len(scatters), figsize=(4 * (len(panels) + len(scatters)), 4))
    axes = np.atleast_1d(axes)
    for ax, (name, values) in zip(axes, panels):
        ax.imshow(values, origin="lower", extent=[*limits[0], *limits[1]], aspect="auto", cmap="viridis")
        ax.set_title(name)
    for ax, (name, pts, classes) in zip(axes[len(panels) :], scatters):
        pts = np.asarray(pts)
        if classes is None:
            ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5)
        else:
            ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, c=np.asarray(classes), cmap="tab10", vmin=0, vmax=9)
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        ax.set_title(name)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def image_grid(images: ArrayLike, columns: int = 8, pad: int = 0, pad_value: float = 1.0) -> np.ndarray:
    """Tile [N, H, W, C] images in [0, 1] into one [rows*(H+pad)-pad, columns*(W+pad)-pad, C] array, with `pad`
    pixels of `pad_value` between tiles (digits touch their 8 x 8 borders: without a gap, rows run together)."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    rows = int(np.ceil(n / columns))
    canvas = np.full([rows * (h + pad) - pad, columns * (w + pad) - pad, c], pad_value, np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = r * (h + pad), col * (w + pad)
        canvas[top : top + h, left : left + w] = image
    return canvas


def plot_images(rows: Sequence[ArrayLike], path: str, titles: Sequence[str] | None = None, columns: int = 8) -> str:
    """One figure with a tiled grid per entry of `rows` (e.g. samples at two temperatures).

    Each panel is as tall as its grid's aspect ratio asks (plus room for a title), so one row of images gives a
    short strip, not a square canvas.
    """
    canvases = [image_grid(images, columns) for images in rows]
    width = columns * 0.8
    heights = [width * canvas.shape[0] / canvas.shape[1] + (0.35 if titles else 0.1) for canvas in canvases]
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, sum(heights)), gridspec_kw={"height_ratios": heights})
    axes = np.atleast_1d(axes)
    for i, (ax, canvas) in enumerate(zip(axes, canvases)):
        ax.imshow(
            canvas.squeeze(-1) if canvas.shape[-1] == 1 else canvas,
            cmap="gray",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.axis("off")
        if titles:
            ax.set_title(titles[i])
    fig.tight_layout()
    fig.savefig(path, dpi=100)  # a one-row strip is then 115 px tall
    plt.close(fig)
    return path


def plot_image_rows(rows: Sequence[ArrayLike], path: str, row_labels: Sequence[str], title: str | None = None) -> str:
    """One grid with a row of images per entry of `rows` (e.g. samples of one class each), labelled on the left.

    Every row holds the same number of [H, W, C] images in [0, 1]; `row_labels` names each row (a class name).
    """
    columns = len(rows[0])
    canvas = image_grid(np.concatenate([np.asarray(images)[:columns] for images in rows]), columns, pad=1)
    height = (canvas.shape[0] + 1) / len(rows)  # one tile and its gap
    width = columns * 0.8
    fig, ax = plt.subplots(figsize=(width + 1.2, width * canvas.shape[0] / canvas.shape[1] + (0.4 if title else 0.1)))
    ax.imshow(
        canvas.squeeze(-1) if canvas.shape[-1] == 1 else canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set_xticks([])
    ax.set_yticks((np.arange(len(rows)) + 0.5) * height - 0.5, labels=[str(label) for label in row_labels])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_training_curve(history: Mapping[str, Sequence[float]], path: str) -> str:
    """The NLL (bits/dim, ELBO when present) per epoch for training and validation; a loss that is no likelihood
    (CNF's flow-matching loss: the training logs hold `loss` but no `nll`) gets its own panel."""
    keys = [k for k in ("nll", "bits_per_dim", "elbo") if k in history or f"val_{k}" in history]
    if "loss" in history and "nll" not in history and "elbo" not in history:
        keys.insert(0, "loss")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        epochs = np.arange(1, len(history.get(key, history.get(f"val_{key}"))) + 1)
        if key in history:
            ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history and key != "loss":
            ax.plot(epochs, history[f"val_{key}"], marker="s", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_pairwise(data: ArrayLike, samples: ArrayLike, columns: Sequence[str], path: str, max_columns: int = 6) -> str:
    """Pairwise marginals of tabular `data` against the model's `samples`, for the first `max_columns` columns.

    Diagonal: each column's histogram (data and samples overlaid, on the data's 0.5-99.5 percentile range);
    off the diagonal: scatter plots of each pair of columns, data below the diagonal and samples above it, so
    the two triangles mirror each other when the model is right.
    """
    data, samples = np.asarray(data)[:, :max_columns], np.asarray(samples)[:, :max_columns]
    count = data.shape[1]
    lo, hi = np.nanpercentile(data, 0.5, axis=0), np.nanpercentile(data, 99.5, axis=0)
    pad = (hi - lo) * 0.1 + 1e-12
    lo, hi = lo - pad, hi + pad
    fig, axes = plt.subplots(count, count, figsize=(1.9 * count + 0.6, 1.9 * count + 0.4), squeeze=False)
    for i in range(count):
        for j in range(count):
            ax = axes[i, j]
            if i == j:
                bins = np.linspace(lo[i], hi[i], 40)
                ax.hist(data[:, i], bins=bins, density=True, alpha=0.5, color="tab:blue", label="data")
                ax.hist(samples[:, i], bins=bins, density=True, alpha=0.5, color="tab:orange", label="samples")
            else:
                points, color = (data, "tab:blue") if i > j else (samples, "tab:orange")
                ax.scatter(points[:, j], points[:, i], s=1, alpha=0.3, color=color)
                ax.set_xlim(lo[j], hi[j])
                ax.set_ylim(lo[i], hi[i])
            ax.tick_params(labelsize=6)
            if i == count - 1:
                ax.set_xlabel(columns[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(columns[i], fontsize=8)
    axes[0, 0].legend(fontsize=6, loc="upper right")
    fig.suptitle("data (blue, lower left) against samples (orange, upper right)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
