"""Coupling masks: 0/1 arrays of the event shape (1 = passed through and fed to the conditioner, 0 = transformed).

Alternate `parity=0` and `parity=1` in successive couplings so every entry gets transformed (Dinh et al. 2017,
"Density estimation using Real NVP", sec. 3.4). All helpers return float32 NumPy arrays, usable as the `mask`
of `AdditiveCoupling`, `AffineCoupling` and `LogisticMixtureCoupling`.

`half` and `channel` split the last axis into two contiguous blocks, which the couplings recognise and
implement by slicing (no multiplication by the mask); `checkerboard` takes the multiplicative path.

Example:
    >>> from tfp_flows import masks
    >>> masks.half(5)
    array([1., 1., 0., 0., 0.], dtype=float32)
    >>> masks.checkerboard(2, 2, 1)[..., 0]
    array([[1., 0.],
           [0., 1.]], dtype=float32)
"""

import numpy as np

from tfp_flows.validation import check_int

__all__ = ["half", "checkerboard", "channel"]


def half(event_size: int, parity: int = 0) -> np.ndarray:
    """Vector mask of shape [event_size]: the first floor(event_size / 2) entries are 1 when parity = 0.

    parity = 1 flips it (the first floor(event_size / 2) entries are 0, the last ceil(event_size / 2) are 1).
    The floor matches `tfb.RealNVP(fraction_masked=0.5)`, which passes through x[..., :event_size // 2].

    Raises:
      ValueError: `event_size` < 2 (a coupling needs both parts) or `parity` not in {0, 1}.
    """
    event_size = check_int(event_size, "event_size", minimum=2)
    parity = check_int(parity, "parity", minimum=0, maximum=1)
    mask = (np.arange(event_size) < event_size // 2).astype(np.float32)
    return 1.0 - mask if parity else mask


def checkerboard(height: int, width: int, channels: int, parity: int = 0) -> np.ndarray:
    """Image mask of shape [height, width, channels]: 1 where (row + column) is even when parity = 0.

    The same pattern in every channel (Dinh et al. 2017, fig. 3); parity = 1 flips it.

    Raises:
      ValueError: a non-positive size, a 1x1 image (no checkerboard exists), or `parity` not in {0, 1}.
    """
    height = check_int(height, "height", minimum=1)
    width = check_int(width, "width", minimum=1)
    channels = check_int(channels, "channels", minimum=1)
    parity = check_int(parity, "parity", minimum=0, maximum=1)
    if height * width < 2:
        raise ValueError(f"a checkerboard mask needs at least 2 pixels; received height={height}, width={width}")
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    pattern = ((rows + cols) % 2 == parity).astype(np.float32)
    return np.repeat(pattern[:, :, np.newaxis], channels, axis=2)


def channel(height: int, width: int, channels: int, parity: int = 0) -> np.ndarray:
    """Image mask of shape [height, width, channels]: the first floor(channels / 2) channels are 1 when parity = 0.

    parity = 1 flips it (Dinh et al. 2017, fig. 3, channel-wise masking).

    Raises:
      ValueError: a non-positive height or width, `channels` < 2, or `parity` not in {0, 1}.
    """
    height = check_int(height, "height", minimum=1)
    width = check_int(width, "width", minimum=1)
    channels = check_int(channels, "channels", minimum=2)
    row = half(channels, parity)
    return np.broadcast_to(row, (height, width, channels)).astype(np.float32)
