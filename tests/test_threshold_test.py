"""The sequential shield's test of p <= eps against p > eps: its exact operating characteristics against brute
force, both error probabilities within delta on a grid of p, and the traces it saves where p is far from eps."""

import itertools
import math

import numpy as np
import pytest

from ambs_verify.estimators.errors import EstimatorInputError
from ambs_verify.estimators.threshold_test import ThresholdTest


def brute_force(test: ThresholdTest, p: float) -> tuple[float, float, float, float]:
    """Every sequence of max_n outcomes, weighted by its probability, run through the rule look by look."""
    safe = unsafe = undecided = expected = 0.0
    for xs in itertools.product((0, 1), repeat=test.max_n):
        weight = math.prod(p if x else 1 - p for x in xs)
        outcome = None
        for j, n in enumerate(test.looks):
            code = int(test.decide(sum(xs[:n]), j))
            if code:
                outcome = (code, n)
                break
        if outcome is None:
            undecided += weight
            expected += weight * test.max_n
        else:
            safe += weight * (outcome[0] == 1)
            unsafe += weight * (outcome[0] == 2)
            expected += weight * outcome[1]
    return safe, unsafe, undecided, expected


@pytest.mark.parametrize("growth", [1, 2])
@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.6, 1.0])
def test_the_dynamic_programme_equals_brute_force(p, growth):
    test = ThresholdTest(eps=0.3, delta=0.3, batch=2, max_n=12, growth=growth)
    assert test.looks.tolist() == ([2, 4, 6, 8, 10, 12] if growth == 1 else [2, 4, 8, 12])
    assert (test.safe_max >= 0).any() and (test.unsafe_min <= test.looks).any()  # both decisions reachable
    oc = test.operating_characteristic(p)
    np.testing.assert_allclose([oc.safe, oc.unsafe, oc.undecided, oc.expected_n], brute_force(test, p), atol=1e-12)


@pytest.mark.parametrize("growth", [1, 4])
@pytest.mark.parametrize(("eps", "delta"), [(0.01, 0.01), (0.05, 0.01), (0.1, 0.05), (0.3, 0.2)])
def test_neither_error_exceeds_delta_at_any_p(eps, delta, growth):
    test = ThresholdTest(eps, delta, batch=32, max_n=512, growth=growth)
    ps = np.union1d(np.linspace(0.0, 1.0, 401), [eps])
    oc = test.operating_characteristic(ps)
    np.testing.assert_allclose(oc.safe + oc.unsafe + oc.undecided, 1.0, atol=1e-12)
    assert oc.safe[ps >= eps].max() <= delta  # the task policy allowed to act although p >= eps
    assert oc.unsafe[ps <= eps].max() <= delta  # overridden although p <= eps


def test_traces_saved_far_from_eps_and_the_floor_near_zero():
    """Against the shield's fixed m = 512 at eps = 0.01, delta = 0.01: a state with p >= 0.2 is decided in at most a
    fifth of the traces. "p < 0.01" can never be decided at delta = 0.01 in 512 traces by any test: with k = 0 it
    needs (1 - eps)^n <= delta, n >= 459, and the confidence sequence pays a log factor on top; such states run
    the whole budget and fall back to the paper's rule (the shield's docstring)."""
    test = ThresholdTest(0.01, 0.01, batch=32, max_n=512, growth=2)  # the shield's looks: 32, 64, ..., 512
    oc = test.operating_characteristic([0.2, 0.5])
    assert np.all(oc.unsafe > 0.999) and np.all(oc.expected_n <= 512 / 5)
    assert test.operating_characteristic(0.0).expected_n == 512  # undecided states draw what a fixed rule draws
    floor = math.log(1 / 0.01) / -math.log(1 - 0.01)
    assert floor > 458 and np.all(test.safe_max[test.looks < floor] == -1)
    loose = ThresholdTest(0.1, 0.01, batch=32, max_n=512, growth=2)  # a looser eps: safe states decided early too
    assert loose.operating_characteristic(0.0).expected_n <= 512 / 4


def test_bad_parameters_are_named():
    with pytest.raises(EstimatorInputError, match="multiple of batch"):
        ThresholdTest(0.1, 0.01, batch=32, max_n=100)
    with pytest.raises(EstimatorInputError, match="growth must be an integer >= 1"):
        ThresholdTest(0.1, 0.01, batch=32, max_n=512, growth=0)
    with pytest.raises(EstimatorInputError, match=r"must lie in \(0, 1\)"):
        ThresholdTest(0.0, 0.01, batch=32, max_n=512)
