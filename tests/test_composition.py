"""Composition of model-level and audited model-error bounds; δ splitting and multiple testing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ambs_verify.estimators import (
    ComposedBound,
    DeltaSplit,
    EstimatorInputError,
    ModelErrorBound,
    MultipleTestResult,
    compose_real_bound,
    interval,
    model_error_bound,
    multiple_test,
    pvalue_below,
    split_delta,
    upper_bound,
)


@pytest.mark.parametrize(("p_real", "p_model"), [(0.05, 0.05), (0.1, 0.02), (0.3, 0.5), (0.01, 0.0)])
def test_model_error_bound_has_exact_joint_coverage(p_real, p_model):
    # Sum the product pmf over every (k_real, k_model) whose bound covers |p_real - p_model|.
    m_real, m_model, delta = 40, 60, 0.05
    kr, km = np.meshgrid(np.arange(m_real + 1), np.arange(m_model + 1), indexing="ij")
    bound = model_error_bound(kr, m_real, km, m_model, delta).bound
    weight = np.outer(
        stats.binom.pmf(np.arange(m_real + 1), m_real, p_real),
        stats.binom.pmf(np.arange(m_model + 1), m_model, p_model),
    )
    coverage = weight[np.abs(p_real - p_model) <= bound].sum()
    assert coverage >= 1 - delta


def test_model_error_bound_is_zero_floor_and_symmetric():
    a = model_error_bound(5, 100, 7, 200, 0.01)
    b = model_error_bound(7, 200, 5, 100, 0.01)
    assert a.bound == pytest.approx(b.bound)
    assert a.bound >= 0 and a.sound
    assert a.bound == pytest.approx(max(a.real_upper - a.model_lower, a.model_upper - a.real_lower))


def test_composed_bound_adds_parts_and_deltas():
    model = interval(4, 512, 0.005, "kl", "upper")
    error = model_error_bound(3, 100, 5, 512, 0.005)
    real = compose_real_bound(model, error)
    assert real.upper == pytest.approx(model.upper + error.bound)
    assert real.delta == pytest.approx(0.01) and (real.delta_model, real.delta_error) == (0.005, 0.005)
    assert real.sound
    assert ComposedBound.from_json(real.to_json()) == real
    unsound = compose_real_bound(interval(4, 512, 0.005, "wilson", "upper"), error)
    assert not unsound.sound


def test_composed_bound_is_clipped_and_rejects_lower_only():
    real = compose_real_bound(interval(400, 512, 0.01, "hoeffding", "upper"), model_error_bound(90, 100, 1, 100, 0.01))
    assert real.upper == 1.0
    with pytest.raises(EstimatorInputError, match="upper side"):
        compose_real_bound(interval(4, 512, 0.01, "kl", "lower"), model_error_bound(1, 10, 1, 10, 0.01))


def test_composed_bound_vectorised_over_states():
    k = np.array([0, 2, 8])
    real = compose_real_bound(interval(k, 512, 0.01, "kl", "upper"), model_error_bound(k // 2, 64, k, 512, 0.01))
    assert real.upper.shape == (3,) and np.all(np.diff(real.upper) > 0)


def test_split_delta():
    equal = split_delta(0.01, 4)
    assert np.allclose(equal.parts, 0.0025) and equal.method == "bonferroni"
    weighted = split_delta(0.03, [1, 2])
    assert np.allclose(weighted.parts, [0.01, 0.02]) and weighted.parts.sum() == pytest.approx(0.03)
    back = DeltaSplit.from_json(weighted.to_json())
    np.testing.assert_allclose(back.parts, weighted.parts)
    with pytest.raises(EstimatorInputError):
        split_delta(0.01, [1, -1])
    with pytest.raises(EstimatorInputError):
        split_delta(1.5, 3)


def test_holm_against_hand_computation():
    # Holm: sorted p = .001, .012, .03, .2 against α/4, α/3, α/2, α/1 at α = .05: rejects the first two only.
    p = [0.03, 0.001, 0.2, 0.012]
    holm = multiple_test(p, 0.05, "holm")
    assert holm.reject.tolist() == [False, True, False, True]
    np.testing.assert_allclose(holm.pvalues_adjusted, [0.06, 0.004, 0.2, 0.036])
    bonf = multiple_test(p, 0.05, "bonferroni")
    assert bonf.reject.tolist() == [False, True, False, True]
    np.testing.assert_allclose(bonf.pvalues_adjusted, [0.12, 0.004, 0.8, 0.048])
    back = MultipleTestResult.from_json(holm.to_json())
    assert back.reject.tolist() == holm.reject.tolist()


@settings(max_examples=30, deadline=None)
@given(p=st.lists(st.floats(0, 1), min_size=1, max_size=30), alpha=st.floats(0.001, 0.2))
def test_holm_rejects_at_least_what_bonferroni_rejects(p, alpha):
    holm, bonf = multiple_test(p, alpha, "holm"), multiple_test(p, alpha, "bonferroni")
    assert np.all(holm.reject >= bonf.reject)


@given(m=st.integers(1, 2000), theta=st.floats(0.001, 0.5), delta=st.floats(1e-4, 0.2))
def test_pvalue_below_matches_clopper_pearson(m, theta, delta):
    k = np.arange(m + 1)
    pv = pvalue_below(k, m, theta)
    cp = upper_bound(k, m, delta, "clopper-pearson")
    # Equivalent statements up to floating point at the exact boundary.
    clear = np.abs(pv - delta) > 1e-9 * delta
    assert np.array_equal((pv <= delta)[clear], (cp <= theta)[clear])


def test_model_error_record_round_trip():
    record = model_error_bound([1, 2], 50, [3, 4], 512, 0.02)
    back = ModelErrorBound.from_json(record.to_json())
    np.testing.assert_allclose(back.bound, record.bound)


def test_multiple_test_rejects_bad_input():
    with pytest.raises(EstimatorInputError, match="accepted: bonferroni, holm"):
        multiple_test([0.1], 0.05, "fdr")
    with pytest.raises(EstimatorInputError, match="in \\[0, 1\\]"):
        multiple_test([1.5], 0.05)
