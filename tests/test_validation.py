"""One set of argument checks (`tfp_flows.validation`) serves the bijectors, the datasets and the models: the
same wrong value gets the same message, naming the argument, what was expected and what was received."""

import pytest

from keras_models import RealNVP
from tfp_flows.datasets import bits_per_dim, get_density, make_dataset
from tfp_flows.squeeze import Squeeze
from tfp_flows.validation import check_int, check_number, check_one_of


@pytest.mark.parametrize(
    "call, arg_name",
    [
        (lambda value: Squeeze(factor=value), "factor"),
        (lambda value: make_dataset("two_moons", batch_size=value), "batch_size"),
        (lambda value: bits_per_dim(0.0, num_dims=value), "num_dims"),
        (lambda value: get_density("two_moons").sample(value), "num_samples"),
        (lambda value: RealNVP((2,), num_couplings=value), "num_couplings"),
    ],
    ids=["bijector", "make_dataset", "bits_per_dim", "toy_density", "model"],
)
@pytest.mark.parametrize(
    "value, received",
    [(0, "0"), (True, "True of type bool"), (2.5, "2.5 of type float"), ("3", "'3' of type str")],
    ids=["zero", "bool", "float", "str"],
)
def test_every_package_refuses_a_bad_count_with_the_same_message(call, arg_name, value, received):
    with pytest.raises(ValueError, match=rf"`{arg_name}` must be an int >= 1; received {received}$"):
        call(value)


def test_check_int_bounds_and_none():
    assert check_int(-3, "seed", minimum=None) == -3
    assert check_int(None, "num_examples", allow_none=True) is None
    with pytest.raises(ValueError, match=r"^Glow: `num_levels` must be None or an int in \[1, 4\]; received 5$"):
        check_int(5, "num_levels", maximum=4, owner="Glow", allow_none=True)


def test_check_number_with_an_open_upper_bound():
    assert check_number(0.0, "dropout", minimum=0, below=1) == 0.0
    for value in (1, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=rf"^NSF: `dropout` must be a number in \[0, 1\); received {value!r}$"):
            check_number(value, "dropout", minimum=0, below=1, owner="NSF")
    with pytest.raises(ValueError, match=r"^`scale` must be a finite number < 2; received 2$"):
        check_number(2, "scale", below=2)


def test_check_one_of_names_the_choices():
    assert check_one_of(None, "dequantize", ("uniform", None)) is None
    with pytest.raises(ValueError, match=r"^`dequantize` must be one of \('uniform', None\); received 'gaussian'$"):
        check_one_of("gaussian", "dequantize", ("uniform", None))
