"""How many latent traces a bound needs: AMBS Theorems 1 and 2, and the inverse of any sound bound.

Each function is the inverse of a bound in ``intervals``; the test-suite checks that the returned ``m`` makes
that bound meet its target while ``m - 1`` does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import EstimatorInputError
from .intervals import SOUND_METHODS, get_method, validate_delta
from .records import Record


@dataclass(frozen=True)
class SampleSize(Record):
    """A required number of samples and the error budget behind it.

    ``eps`` is the total accuracy, split into ``eps_sampling`` (estimating the model's probability from ``m``
    traces) and ``eps_model`` (how far the model's probability may be from the real one). ``alpha_max`` is the
    per-step total-variation error of the model that keeps the model part within ``eps_model`` over
    ``horizon`` steps (AMBS Lemma 7: ``alpha * n / 2 <= eps_model``); it is None when no horizon was given.
    """

    m: int
    rule: str
    eps: float
    delta: float
    one_sided: bool
    eps_sampling: float
    eps_model: float
    horizon: int | None = None
    alpha_max: float | None = None


MIN_EPS = 1e-6  # smaller accuracies need more than 10^12 samples (and 2·eps² underflows near 1e-162)


def _check_eps(eps: float, name: str = "eps") -> float:
    if not (0.0 < eps < 1.0):
        raise EstimatorInputError(f"{name} must lie strictly between 0 and 1 (got {eps:g})")
    if eps < MIN_EPS:
        raise EstimatorInputError(f"{name} must be at least {MIN_EPS:g}: less needs over 10^12 samples (got {eps:g})")
    return float(eps)


def hoeffding_samples(eps: float, delta: float, one_sided: bool = False) -> int:
    """Smallest m with Hoeffding half-width ``<= eps``: ``ceil(ln(c/delta) / (2 eps^2))``, c = 2 or 1.

    Two-sided is AMBS Theorem 1 (``P(|p_hat - p| >= eps) <= 2 exp(-2 m eps^2)``); one-sided drops the 2.
    """
    eps = _check_eps(eps)
    validate_delta(delta)
    tails = 1.0 if one_sided else 2.0
    return math.ceil(math.log(tails / delta) / (2.0 * eps * eps))


def theorem1(eps: float, delta: float, one_sided: bool = False) -> SampleSize:
    """AMBS Theorem 1 (exact model): traces for an eps-accurate estimate with probability ``1 - delta``.

    Examples
    --------
    >>> theorem1(0.09, 0.01).m, theorem1(0.09, 0.01, one_sided=True).m
    (328, 285)
    """
    m = hoeffding_samples(eps, delta, one_sided)
    rule = "theorem1-one-sided" if one_sided else "theorem1"
    return SampleSize(m, rule, float(eps), float(delta), one_sided, float(eps), 0.0)


def theorem2(
    eps: float,
    delta: float,
    model_share: float = 0.5,
    horizon: int | None = None,
    one_sided: bool = False,
) -> SampleSize:
    """AMBS Theorem 2 (learned model): split ``eps`` between model error and sampling error.

    Parameters
    ----------
    eps, delta : float
        Total accuracy and failure probability.
    model_share : float
        Fraction of ``eps`` reserved for model error, in [0, 1). The paper's choice is 0.5, which gives
        ``m >= (2 / eps^2) ln(2 / delta)``.
    horizon : int, optional
        Property horizon n; when given, ``alpha_max = 2 * model_share * eps / n`` is the largest per-step
        total-variation error of the model compatible with the split (``alpha <= eps / n`` at share 0.5).
    one_sided : bool
        Use the one-sided Hoeffding bound for the sampling part.

    Notes
    -----
    The model term is an assumption of the theorem, not something the samples establish; certificates replace
    it by an audited bound (``composition.model_error_bound``) where the simulator can be restored.

    Examples
    --------
    >>> theorem2(0.09, 0.01).m
    1309
    """
    eps = _check_eps(eps)
    if not (0.0 <= model_share < 1.0):
        raise EstimatorInputError(f"model_share must lie in [0, 1) (got {model_share:g})")
    if horizon is not None and horizon < 1:
        raise EstimatorInputError(f"horizon must be a step count >= 1 (got {horizon})")
    eps_model = model_share * eps
    eps_sampling = eps - eps_model
    m = hoeffding_samples(eps_sampling, delta, one_sided)
    alpha_max = None if horizon is None else 2.0 * eps_model / horizon
    rule = "theorem2-one-sided" if one_sided else "theorem2"
    return SampleSize(m, rule, eps, float(delta), one_sided, eps_sampling, eps_model, horizon, alpha_max)


def samples_for_upper_bound(
    p_expected: float,
    target: float,
    delta: float,
    method: str = "clopper-pearson",
    max_m: int = 10**9,
) -> SampleSize:
    """Smallest m for which a sound one-sided upper bound at ``k = p_expected * m`` stays ``<= target``.

    Parameters
    ----------
    p_expected : float
        The violation probability one expects to observe, in [0, target).
    target : float
        The largest acceptable upper bound, in (0, 1).
    delta : float
        Failure probability of the bound.
    method : str
        A sound method of ``intervals.METHODS``.
    max_m : int
        Search limit; an error says so when even ``max_m`` samples do not suffice.

    Notes
    -----
    ``k`` is taken as the real number ``p_expected * m`` (the expected count), for which every sound bound
    here is non-increasing in m, so a doubling-then-bisection search finds the smallest m. Observed counts are
    integers and fluctuate around ``p * m``: plan with some slack. With Hoeffding and ``p_expected = 0`` this
    reproduces the one-sided Theorem 1 count for ``eps = target``.
    """
    chosen = get_method(method)
    if not chosen.sound:
        raise EstimatorInputError(
            f"sample sizes need a sound method; accepted: {', '.join(SOUND_METHODS)} (got {method!r})"
        )
    target = _check_eps(target, "target")
    if not (0.0 <= p_expected < target):
        raise EstimatorInputError(
            f"p_expected must satisfy 0 <= p_expected < target (got {p_expected:g}, target {target:g})"
        )
    validate_delta(delta)

    def meets(m: int) -> bool:
        bound = chosen.one_sided(np.asarray(p_expected * m), np.asarray(float(m)), np.asarray(delta), "upper")
        return bool(bound <= target)

    hi = 1
    while not meets(hi):
        if hi >= max_m:
            raise EstimatorInputError(
                f"no m <= {max_m} brings the {chosen.name} bound at p={p_expected:g} below {target:g}"
            )
        hi = min(2 * hi, max_m)
    lo = hi // 2  # meets(lo) is False (or lo == 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return SampleSize(
        m=hi,
        rule=f"upper-bound:{chosen.name}",
        eps=target - p_expected,
        delta=float(delta),
        one_sided=True,
        eps_sampling=target - p_expected,
        eps_model=0.0,
    )
