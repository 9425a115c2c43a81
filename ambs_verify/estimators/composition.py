"""Putting bounds together: model-level bound + audited model error = real-level bound; δ across many tests.

Every function here records how the failure probability was spent, so a certificate can show the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .errors import EstimatorInputError
from .intervals import interval, validate_counts, validate_delta
from .records import Interval, Number, Record

SPLIT_METHODS = ("bonferroni", "holm")


@dataclass(frozen=True)
class ModelErrorBound(Record):
    """A bound on ``|p_real - p_model|`` at the same states, from real and latent rollouts there.

    ``bound`` holds with probability ``>= 1 - delta`` (jointly over the two samples) when ``sound``.
    """

    bound: Number
    delta: float
    method: str
    sound: bool
    real_lower: Number
    real_upper: Number
    model_lower: Number
    model_upper: Number
    k_real: Number
    m_real: Number
    k_model: Number
    m_model: Number


@dataclass(frozen=True)
class ComposedBound(Record):
    """Real-environment upper bound ``model_upper + model_error`` (clipped to 1) and its δ budget.

    ``delta = delta_model + delta_error`` by the union bound: with probability ``>= 1 - delta`` both parts
    hold at once, hence so does the sum.
    """

    upper: Number
    model_upper: Number
    model_error: Number
    delta: float
    delta_model: float
    delta_error: float
    model_method: str
    error_method: str
    sound: bool


@dataclass(frozen=True)
class DeltaSplit(Record):
    """How a total failure probability was divided among ``len(parts)`` statements (Bonferroni)."""

    total: float
    method: str
    parts: np.ndarray


@dataclass(frozen=True)
class MultipleTestResult(Record):
    """Family-wise decisions for many one-sided tests at level ``alpha`` (``reject[i]`` = claim holds)."""

    method: str
    alpha: float
    reject: np.ndarray
    pvalues: np.ndarray
    pvalues_adjusted: np.ndarray


def model_error_bound(
    k_real, m_real, k_model, m_model, delta: float, method: str = "clopper-pearson"
) -> ModelErrorBound:
    """Bound ``|p_real - p_model|`` from k_real of m_real real rollouts and k_model of m_model latent traces.

    Each proportion gets a two-sided interval at ``delta / 2``; the distance between the two true values is
    then at most ``max(real_upper - model_lower, model_upper - real_lower, 0)`` with probability
    ``>= 1 - delta``. Vectorised over states (arrays broadcast together).

    Notes
    -----
    This is the ``alpha * n / 2`` term of AMBS Theorem 2 measured at the audited states instead of assumed
    for all states. It says nothing about states that were not audited.
    """
    validate_delta(delta)
    real = interval(k_real, m_real, delta / 2.0, method, "two-sided")
    model = interval(k_model, m_model, delta / 2.0, method, "two-sided")
    gap = np.maximum(np.maximum(np.subtract(real.upper, model.lower), np.subtract(model.upper, real.lower)), 0.0)
    return ModelErrorBound(
        bound=gap if np.ndim(gap) else float(gap),
        delta=float(delta),
        method=real.method,
        sound=real.sound,
        real_lower=real.lower,
        real_upper=real.upper,
        model_lower=model.lower,
        model_upper=model.upper,
        k_real=real.k,
        m_real=real.m,
        k_model=model.k,
        m_model=model.m,
    )


def compose_real_bound(model: Interval, error: ModelErrorBound) -> ComposedBound:
    """Real-level upper bound from a model-level upper bound and an audited model-error bound.

    ``p_real <= p_model + |p_real - p_model| <= model.upper + error.bound``, with the two failure
    probabilities
    added. The result is sound only if both parts are.
    """
    if model.side not in ("upper", "two-sided"):
        raise EstimatorInputError(
            f"the model bound must have an upper side: accepted upper, two-sided (got {model.side})"
        )
    upper = np.minimum(1.0, np.add(model.upper, error.bound))
    return ComposedBound(
        upper=upper if np.ndim(upper) else float(upper),
        model_upper=model.upper,
        model_error=error.bound,
        delta=float(model.delta) + error.delta,
        delta_model=float(model.delta),
        delta_error=error.delta,
        model_method=model.method,
        error_method=error.method,
        sound=bool(model.sound and error.sound),
    )


def split_delta(total: float, weights) -> DeltaSplit:
    """Bonferroni split of ``total`` over statements, proportional to ``weights`` (an int n: n equal parts).

    The statements then hold simultaneously with probability ``>= 1 - total`` (union bound), whatever their
    dependence.
    """
    validate_delta(total, "total delta")
    w = np.ones(int(weights)) if np.ndim(weights) == 0 else np.asarray(weights, dtype=float)
    if w.size == 0 or np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise EstimatorInputError("weights must be a count >= 1 or a non-empty list of positive numbers")
    return DeltaSplit(total=float(total), method="bonferroni", parts=total * w / w.sum())


def pvalue_below(k, m, theta) -> np.ndarray:
    """Exact p-value for H0: p >= theta against H1: p < theta, from k violations in m samples.

    ``P(Bin(m, theta) <= k)``. Small values are evidence that the violation probability is below theta;
    ``pvalue_below(k, m, theta) <= delta`` exactly when the Clopper-Pearson upper bound at ``1 - delta`` is
    ``<= theta``.
    """
    k, m, _ = validate_counts(k, m, 0.5)
    theta = np.asarray(theta, dtype=float)
    if not np.all((theta > 0) & (theta < 1)):
        raise EstimatorInputError("theta must lie strictly between 0 and 1")
    return stats.binom.cdf(k, m, theta)


def multiple_test(pvalues, alpha: float, method: str = "holm") -> MultipleTestResult:
    """Family-wise error control over many tests with statsmodels' ``multipletests``.

    Parameters
    ----------
    pvalues : array_like, shape (n,)
    alpha : float
        Family-wise error rate: the probability that any rejected null is true is ``<= alpha``.
    method : {"holm", "bonferroni"}
        Holm's step-down procedure is uniformly more powerful than Bonferroni and needs no independence.
    """
    validate_delta(alpha, "alpha")
    if method not in SPLIT_METHODS:
        raise EstimatorInputError(f"unknown method {method!r}; accepted: {', '.join(SPLIT_METHODS)}")
    p = np.atleast_1d(np.asarray(pvalues, dtype=float))
    if p.size == 0 or np.any((p < 0) | (p > 1)):
        raise EstimatorInputError("pvalues must be a non-empty list of numbers in [0, 1]")
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method=method)
    return MultipleTestResult(method, float(alpha), reject.astype(bool), p, adjusted)
