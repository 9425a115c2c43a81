"""Confidence bounds for a binomial proportion: k violations in m i.i.d. Bernoulli samples.

Every method gives a one-sided upper bound, a one-sided lower bound and a two-sided interval at confidence
``1 - delta``; the two-sided interval spends ``delta / 2`` on each side. All functions broadcast over numpy
arrays of ``k``, ``m`` and ``delta``. ``k`` may be fractional (``k = p * m``) for planning sample sizes at an
expected proportion; certificates always pass integer counts.

Soundness (``Method.sound``) means guaranteed coverage ``>= 1 - delta`` for every true ``p`` and every ``m``;
the test-suite checks it exactly by summing the binomial pmf. Wilson, Agresti-Coull and Jeffreys are
approximate: their coverage dips below ``1 - delta`` for some ``(p, m)``, so they are never used for
certificates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from statsmodels.stats.proportion import proportion_confint

from .errors import EstimatorInputError
from .records import Interval, scalar_or_array

SIDES = ("upper", "lower", "two-sided")

# Bisection on [0, 1] halves the bracket each step; 64 steps take it below float64 resolution.
_BISECTION_STEPS = 64

UpperFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Method:
    """A bound construction.

    ``upper(k, m, delta)`` returns the one-sided upper bound at confidence ``1 - delta``; ``lower`` is the
    mirror image ``1 - upper(m - k, m, delta)`` unless the method supplies its own.
    """

    name: str
    sound: bool
    summary: str
    upper: UpperFn
    lower: UpperFn | None = None

    def one_sided(self, k: np.ndarray, m: np.ndarray, delta: np.ndarray, side: str) -> np.ndarray:
        # Nothing can be excluded beyond the observed extremes: upper is 1 at k = m, lower is 0 at k = 0.
        if side == "upper":
            return np.where(np.asarray(k) >= m, 1.0, self.upper(k, m, delta))
        own_lower = self.lower(k, m, delta) if self.lower is not None else 1.0 - self.upper(m - k, m, delta)
        return np.where(np.asarray(k) <= 0, 0.0, own_lower)


def _float_arrays(*arrays) -> list[np.ndarray]:
    """Broadcast to one shape as fresh, writable float64 arrays."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    return [np.array(np.broadcast_to(np.asarray(a, dtype=float), shape)) for a in arrays]


# --------------------------------------------------------------------------------------------------------
# Sound methods


def hoeffding_upper(k, m, delta):
    """Hoeffding: ``p_hat + sqrt(ln(1/delta) / (2m))``, clipped to 1. Sound for every p (AMBS Theorem 1).

    Notes
    -----
    Distribution-free and the basis of AMBS's sample-size theorems, but loose when p is near 0 or 1: at
    m = 512, k = 0, delta = 0.01 it gives 0.067 where Clopper-Pearson gives 0.00895.
    """
    k, m, delta = _float_arrays(k, m, delta)
    return np.minimum(1.0, k / m + np.sqrt(np.log(1.0 / delta) / (2.0 * m)))


def bernoulli_kl(p, q):
    """KL(Bernoulli(p) || Bernoulli(q)) in nats, with 0 log 0 = 0 and +inf where q excludes p's support."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    return special.rel_entr(p, q) + special.rel_entr(1.0 - p, 1.0 - q)


def kl_chernoff_upper(k, m, delta):
    """KL-Chernoff: the largest q >= p_hat with ``m * KL(p_hat || q) <= ln(1/delta)``. Sound for every p.

    Notes
    -----
    Chernoff's bound ``P(p_hat <= x) <= exp(-m KL(x || p))`` for ``x <= p`` inverted exactly by bisection
    (64 halvings, the upper end of the final bracket is returned, so rounding never makes it optimistic).
    At k = 0 it equals Clopper-Pearson, ``1 - delta**(1/m)``; elsewhere it lies between Clopper-Pearson and
    Hoeffding (Pinsker's inequality gives KL >= 2 (q - p)^2).
    """
    k, m, delta = _float_arrays(k, m, delta)
    p_hat = k / m
    budget = np.log(1.0 / delta) / m
    lo, hi = p_hat.copy(), np.ones_like(p_hat)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        inside = bernoulli_kl(p_hat, mid) <= budget
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return np.where(p_hat >= 1.0, 1.0, hi)


def clopper_pearson_upper(k, m, delta):
    """Clopper-Pearson: the ``1 - delta`` quantile of Beta(k + 1, m - k); 1 at k = m. Exact and sound.

    Notes
    -----
    The tightest bound that is guaranteed for every p: it inverts the binomial test itself, so its coverage
    is ``>= 1 - delta`` exactly (and conservative because the binomial is discrete).
    """
    k, m, delta = _float_arrays(k, m, delta)
    full = k >= m
    safe_b = np.where(full, 1.0, m - k)
    return np.where(full, 1.0, stats.beta.ppf(1.0 - delta, k + 1.0, safe_b))


def empirical_bernstein_upper(k, m, delta):
    """Empirical Bernstein (Maurer & Pontil 2009, Thm 4). Sound for every p when m >= 2; 1 when m < 2.

    ``p_hat + sqrt(2 V ln(2/delta) / m) + 7 ln(2/delta) / (3 (m - 1))`` with V the unbiased sample variance,
    ``m p_hat (1 - p_hat) / (m - 1)`` for 0/1 data.

    Notes
    -----
    Adapts to small variance like KL-Chernoff but pays a ``1/m`` term and a union bound (the 2 in
    ``ln(2/delta)``) for estimating the variance. For 0/1 data it is never tighter than KL-Chernoff (checked
    by the test-suite); it is offered because it generalises to bounded non-binary scores.
    """
    k, m, delta = _float_arrays(k, m, delta)
    p_hat = k / m
    m1 = np.maximum(m - 1.0, 1.0)
    log_term = np.log(2.0 / delta)
    variance = m * p_hat * (1.0 - p_hat) / m1
    bound = p_hat + np.sqrt(2.0 * variance * log_term / m) + 7.0 * log_term / (3.0 * m1)
    return np.where(m < 2, 1.0, np.minimum(1.0, bound))


# --------------------------------------------------------------------------------------------------------
# Approximate methods (statsmodels)


def _statsmodels_bound(sm_method: str, upper: bool) -> UpperFn:
    # statsmodels names one-sided intervals by the alternative hypothesis: 'larger' yields (0, upper),
    # 'smaller' yields (lower, 1). tests/test_intervals.py pins this.
    alternative = "larger" if upper else "smaller"

    def bound(k, m, delta):
        k, m, delta = _float_arrays(k, m, delta)
        lo, hi = proportion_confint(k, m, alpha=delta, method=sm_method, alternative=alternative)
        return np.clip(np.broadcast_to(hi if upper else lo, k.shape), 0.0, 1.0).astype(float)

    return bound


def _approximate(name: str, sm_method: str, summary: str) -> Method:
    return Method(
        name=name,
        sound=False,
        summary=summary,
        upper=_statsmodels_bound(sm_method, upper=True),
        lower=_statsmodels_bound(sm_method, upper=False),
    )


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("hoeffding", True, "Hoeffding's inequality (AMBS Theorem 1)", hoeffding_upper),
        Method("kl", True, "KL-Chernoff, exact inversion of m·KL(p̂‖q) = ln(1/δ)", kl_chernoff_upper),
        Method("clopper-pearson", True, "Clopper-Pearson exact binomial (scipy)", clopper_pearson_upper),
        Method("bernstein", True, "empirical Bernstein (Maurer & Pontil 2009)", empirical_bernstein_upper),
        _approximate("wilson", "wilson", "Wilson score (statsmodels); approximate, not sound"),
        _approximate("agresti-coull", "agresti_coull", "Agresti-Coull (statsmodels); approximate, not sound"),
        _approximate("jeffreys", "jeffreys", "Jeffreys equal-tailed (statsmodels); approximate, not sound"),
    )
}

ALIASES = {
    "kl-chernoff": "kl",
    "cp": "clopper-pearson",
    "clopper_pearson": "clopper-pearson",
    "exact": "clopper-pearson",
    "empirical-bernstein": "bernstein",
    "agresti_coull": "agresti-coull",
}

SOUND_METHODS = tuple(name for name, m in METHODS.items() if m.sound)


def get_method(name: str) -> Method:
    """Look a method up by name or alias (case-insensitive)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise EstimatorInputError(
            f"unknown method {name!r}; accepted: {', '.join(METHODS)} (aliases: {', '.join(ALIASES)})"
        )
    return METHODS[key]


def validate_counts(k, m, delta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check ``0 <= k <= m``, ``m >= 1`` and ``0 < delta < 1``; return them as float arrays."""
    k, m, delta = (np.asarray(a, dtype=float) for a in (k, m, delta))
    if not (np.all(np.isfinite(m)) and np.all(m >= 1)):
        raise EstimatorInputError(f"m must be a sample count >= 1 (got {_show(m)})")
    if not (np.all(np.isfinite(k)) and np.all(k >= 0)):
        raise EstimatorInputError(f"k must be a count >= 0 (got {_show(k)})")
    if np.any(k > m):
        raise EstimatorInputError(f"k must not exceed m: accepted 0 <= k <= m (got k={_show(k)}, m={_show(m)})")
    validate_delta(delta)
    return k, m, delta


def validate_delta(delta, name: str = "delta") -> np.ndarray:
    delta = np.asarray(delta, dtype=float)
    if not np.all((delta > 0) & (delta < 1)):
        raise EstimatorInputError(f"{name} must lie strictly between 0 and 1 (got {_show(delta)})")
    return delta


def _show(a: np.ndarray) -> str:
    a = np.asarray(a)
    return f"{a.item():g}" if a.size == 1 else np.array2string(a, threshold=6)


def interval(k, m, delta: float, method: str = "clopper-pearson", side: str = "two-sided") -> Interval:
    """Confidence bound for a binomial proportion from k violations in m samples at confidence 1 - delta.

    Parameters
    ----------
    k, m : array_like
        Violations and samples, broadcast together; ``0 <= k <= m``, ``m >= 1``.
    delta : float
        Allowed failure probability, in (0, 1). A two-sided interval spends ``delta / 2`` per side.
    method : str
        One of ``METHODS`` (or an alias in ``ALIASES``).
    side : {"upper", "lower", "two-sided"}

    Returns
    -------
    Interval
        ``estimate = k / m`` and the bounds, with the method's soundness flag.
    """
    chosen = get_method(method)
    if side not in SIDES:
        raise EstimatorInputError(f"unknown side {side!r}; accepted: {', '.join(SIDES)}")
    k, m, delta_arr = validate_counts(k, m, delta)
    shape = np.broadcast_shapes(k.shape, m.shape, delta_arr.shape)
    lower, upper = np.zeros(shape), np.ones(shape)
    if side == "upper":
        upper = chosen.one_sided(k, m, delta_arr, "upper")
    elif side == "lower":
        lower = chosen.one_sided(k, m, delta_arr, "lower")
    else:
        lower = chosen.one_sided(k, m, delta_arr / 2.0, "lower")
        upper = chosen.one_sided(k, m, delta_arr / 2.0, "upper")
    return Interval(
        estimate=scalar_or_array(np.broadcast_to(k / m, shape)),
        lower=scalar_or_array(np.broadcast_to(lower, shape)),
        upper=scalar_or_array(np.broadcast_to(upper, shape)),
        method=chosen.name,
        sound=chosen.sound,
        delta=scalar_or_array(delta_arr),
        k=scalar_or_array(k),
        m=scalar_or_array(m),
        side=side,
    )


def upper_bound(k, m, delta, method: str = "clopper-pearson") -> np.ndarray:
    """One-sided upper bound at confidence ``1 - delta`` (array, broadcast over the inputs)."""
    k, m, delta = validate_counts(k, m, delta)
    return get_method(method).one_sided(k, m, delta, "upper")


def lower_bound(k, m, delta, method: str = "clopper-pearson") -> np.ndarray:
    """One-sided lower bound at confidence ``1 - delta`` (array, broadcast over the inputs)."""
    k, m, delta = validate_counts(k, m, delta)
    return get_method(method).one_sided(k, m, delta, "lower")
