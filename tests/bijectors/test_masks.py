"""The coupling masks (tfp_flows.masks): half, checkerboard and channel, and their argument errors."""

import numpy as np
import pytest

from tfp_flows import masks

# --- Mask helpers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 3, 6, 7])
def test_half_mask(size):
    even, odd = masks.half(size), masks.half(size, parity=1)
    assert even.shape == (size,) and even.dtype == np.float32
    assert even.sum() == size // 2 and np.all(even[: size // 2] == 1)  # floor(size / 2) ones first
    np.testing.assert_array_equal(odd, 1.0 - even)


def test_checkerboard_mask():
    mask = masks.checkerboard(3, 4, 2)
    assert mask.shape == (3, 4, 2) and mask.dtype == np.float32
    assert mask[0, 0, 0] == 1
    np.testing.assert_array_equal(mask[..., 0], mask[..., 1])
    assert np.all(mask[1:, :] != mask[:-1, :]) and np.all(mask[:, 1:] != mask[:, :-1])  # neighbours differ
    np.testing.assert_array_equal(masks.checkerboard(3, 4, 2, parity=1), 1.0 - mask)
    assert mask.sum() == 12


def test_channel_mask():
    mask = masks.channel(2, 3, 5)
    assert mask.shape == (2, 3, 5) and mask.dtype == np.float32
    np.testing.assert_array_equal(mask[1, 2], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(masks.channel(2, 3, 5, parity=1), 1.0 - mask)


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda: masks.half(1), "event_size"),
        (lambda: masks.half(4.0), "event_size"),
        (lambda: masks.half(4, parity=2), "parity"),
        (lambda: masks.channel(2, 2, 1), "channels"),
        (lambda: masks.channel(0, 2, 4), "height"),
        (lambda: masks.checkerboard(1, 1, 3), "pixels"),
        (lambda: masks.checkerboard(2, 2, 3, parity=-1), "parity"),
        (lambda: masks.checkerboard(2, 0, 3), "width"),
    ],
)
def test_mask_helpers_reject_bad_arguments(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
