"""Sample sizes: the AMBS theorem figures and consistency with the bounds they invert."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambs_verify.estimators import (
    SOUND_METHODS,
    EstimatorInputError,
    SampleSize,
    samples_for_upper_bound,
    theorem1,
    theorem2,
    upper_bound,
)


def test_paper_figures():
    # ε = 0.09, δ = 0.01 (AMBS Table 4's setting): 327.1, 284.3 and 1308.2 rounded up.
    assert theorem1(0.09, 0.01).m == 328
    assert theorem1(0.09, 0.01, one_sided=True).m == 285
    t2 = theorem2(0.09, 0.01, horizon=30)
    assert t2.m == 1309
    assert t2.eps_model == pytest.approx(0.045) and t2.eps_sampling == pytest.approx(0.045)
    assert t2.alpha_max == pytest.approx(0.09 / 30)  # α ≤ ε/n at the paper's equal split


@given(eps=st.floats(0.005, 0.5), delta=st.floats(1e-6, 0.5), one_sided=st.booleans())
def test_theorem1_inverts_hoeffding(eps, delta, one_sided):
    m = theorem1(eps, delta, one_sided).m
    tails = 1 if one_sided else 2

    def half_width(n):
        return math.sqrt(math.log(tails / delta) / (2 * n))

    assert half_width(m) <= eps
    assert m == 1 or half_width(m - 1) > eps


@given(eps=st.floats(0.01, 0.5), delta=st.floats(1e-6, 0.5), share=st.floats(0.0, 0.9))
def test_theorem2_is_theorem1_at_the_sampling_share(eps, delta, share):
    t2 = theorem2(eps, delta, model_share=share)
    assert t2.eps_model + t2.eps_sampling == pytest.approx(eps)
    assert t2.m == theorem1(t2.eps_sampling, delta).m


def test_theorem2_paper_closed_form():
    for eps, delta in [(0.09, 0.01), (0.05, 0.05), (0.2, 1e-4)]:
        assert theorem2(eps, delta).m == math.ceil(2 / eps**2 * math.log(2 / delta))


@pytest.mark.parametrize("method", SOUND_METHODS)
@given(p=st.floats(0.0, 0.3), gap=st.floats(0.01, 0.3), delta=st.floats(1e-4, 0.2))
def test_upper_bound_sample_size_is_smallest(method, p, gap, delta):
    target = min(p + gap, 0.99)
    m = samples_for_upper_bound(p, target, delta, method).m

    def bound(n):
        return float(upper_bound(p * n, n, delta, method))

    assert bound(m) <= target
    assert m == 1 or bound(m - 1) > target


def test_hoeffding_inverse_at_zero_is_one_sided_theorem1():
    assert samples_for_upper_bound(0.0, 0.09, 0.01, "hoeffding").m == theorem1(0.09, 0.01, one_sided=True).m


def test_tighter_bounds_need_fewer_samples():
    m = {name: samples_for_upper_bound(0.01, 0.05, 0.01, name).m for name in SOUND_METHODS}
    assert m["clopper-pearson"] <= m["kl"] <= m["hoeffding"]
    assert m["clopper-pearson"] == 147 and m["kl"] == 187


def test_sample_size_round_trips_through_json():
    for record in (
        theorem1(0.09, 0.01),
        theorem2(0.09, 0.01, horizon=30),
        samples_for_upper_bound(0, 0.1, 0.01),
    ):
        assert SampleSize.from_json(record.to_json()) == record


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: theorem1(0.0, 0.01), "eps must lie strictly between 0 and 1"),
        (lambda: theorem1(0.1, 0.0), "delta must lie strictly between 0 and 1"),
        (lambda: theorem2(0.1, 0.01, model_share=1.0), "model_share must lie in [0, 1)"),
        (lambda: samples_for_upper_bound(0.0, 0.1, 0.01, "wilson"), "need a sound method"),
        (lambda: samples_for_upper_bound(0.2, 0.1, 0.01), "p_expected must satisfy"),
    ],
)
def test_bad_input(call, fragment):
    with pytest.raises(EstimatorInputError, match=None) as info:
        call()
    assert fragment in str(info.value)


def test_unreachable_target_reports_the_limit():
    with pytest.raises(EstimatorInputError, match="no m <= 1000"):
        samples_for_upper_bound(0.0, 1e-4, 0.01, "clopper-pearson", max_m=1000)
    assert np.isfinite(samples_for_upper_bound(0.0, 1e-4, 0.01).m)
