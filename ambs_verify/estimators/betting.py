"""A betting confidence sequence for a binomial proportion p (Waudby-Smith & Ramdas 2024).

The beta-binomial mixture of :mod:`.sequential` bets on every alternative at once through a prior; the betting
construction instead bets, at every candidate mean ``m``, a predictable fraction of its capital on the next
observation being above (``K+``) or below (``K-``) ``m``. The fraction follows the running variance of the data,
so the bounds adapt to it: for rare violations the variance ``p(1 - p)`` is small and the bets are large.

* :func:`betting_cs` -- anytime-valid bounds ``(lower_t, upper_t)`` for every ``t`` of 0/1 streams.
* :func:`betting_excludes` -- whether the sequence has excluded a given p, from either side, by each ``t``:
  ``O(T)`` per stream, what a sequential test of ``p <= eps`` needs.
* :func:`expected_decision_n` -- the mean number of observations until such a test decides, for this sequence
  (by seeded simulation) and for the mixture's :class:`~.threshold_test.ThresholdTest` (exact).

References
----------
I. Waudby-Smith and A. Ramdas, "Estimating means of bounded random variables by betting", J. R. Stat. Soc.
Series B 86(1), 1-27, 2024 (arXiv:2010.09686).
J. Ville, "Étude critique de la notion de collectif", Gauthier-Villars, 1939.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import EstimatorInputError
from .records import Record
from .sequential import SequenceBounds, binary_streams
from .threshold_test import ThresholdTest

__all__ = ["BettingCS", "DecisionCost", "betting_cs", "betting_excludes", "expected_decision_n"]

# Starting brackets for the ends come from a grid of 0, 1 and points spaced geometrically towards both, about
# T/4 on each side (16 to 256): enough for brackets ~10% wide at T >= 1000, while the grid's O(T) evaluations
# per point stay cheaper than root finding's O(T^2) ones.
_GRID_POINTS = (16, 256)
# Root finding ends at two adjacent floats; every _BISECT_EVERY-th round halves the bracket's bit patterns, so
# 64 * _BISECT_EVERY rounds always suffice, whatever regula falsi does in between (it takes about ten).
_BISECT_EVERY = 8
_MAX_ROUNDS = 64 * _BISECT_EVERY
# Elements per block of row evaluations (small enough for the temporaries to stay in cache), and per chunk of
# whole streams (the grid stage and the simulations hold a few float64 arrays of this size).
_BLOCK = 1 << 16
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BettingCS(SequenceBounds):
    """Time-uniform bounds on p from streams of 0/1 observations, by betting.

    ``lower[..., t - 1]`` and ``upper[..., t - 1]`` bound p after ``t`` observations, all ``t`` at once, with
    probability at least ``1 - delta``; ``k`` holds the cumulative violation counts. Arrays of shape
    ``(..., T)``. ``c`` caps the bets and ``theta`` weighs the upward bet (see :func:`betting_cs`).
    """

    c: float
    theta: float


@dataclass(frozen=True)
class DecisionCost(Record):
    """How a sequential test of ``p <= threshold`` against ``p > threshold`` fares when the true p is ``p``.

    ``expected_n`` is the mean of ``min(N, max_n)`` for the stopping time ``N``, ``wrong`` the probability of
    the wrong decision (either decision is wrong at ``p == threshold``) and ``undecided`` of stopping at
    ``max_n`` without one. ``streams`` is the number of simulated streams, 0 where the numbers are exact, and
    ``expected_n_se`` the standard error of ``expected_n`` (0 when exact).
    """

    method: str
    p: float
    threshold: float
    delta: float
    expected_n: float
    expected_n_se: float
    wrong: float
    undecided: float
    max_n: int
    streams: int


# --------------------------------------------------------------------------------------------------------
# The capital processes


def _predictable_bets(xs: np.ndarray, delta: float) -> np.ndarray:
    """WSR's predictable plug-in bets ``lambda_t`` (before truncation), shape of ``xs``.

    ``lambda_t = sqrt(2 ln(2/delta) / (sigma2_{t-1} t ln(t + 1)))`` with
    ``mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1)`` and ``sigma2_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1)``,
    ``sigma2_0 = 1/4``: ``lambda_t`` uses the first ``t - 1`` observations only.
    """
    x = xs.astype(np.float64)
    t = np.arange(1, x.shape[-1] + 1, dtype=np.float64)
    mu = (0.5 + np.cumsum(x, axis=-1)) / (t + 1.0)
    sigma2 = (0.25 + np.cumsum((x - mu) ** 2, axis=-1)) / (t + 1.0)
    previous = np.concatenate([np.full((*x.shape[:-1], 1), 0.25), sigma2[..., :-1]], axis=-1)
    return np.sqrt(2.0 * np.log(2.0 / delta) / (previous * t * np.log1p(t)))


def _log_factors(lam, lam_x, m, c: float, upper: bool) -> np.ndarray:
    """``ln(1 + min(lam, c/m)(x - m))`` (``K+``) or, with ``upper``, ``ln(1 - min(lam, c/(1 - m))(x - m))``
    (``K-``), elementwise, from ``lam`` and ``lam_x = lam * x`` (x in {0, 1}, so ``lam_x`` is exact).

    The truncated bet is written as a clipped step, ``lam (x - m)`` clipped to ``[-c, c (1 - m)/m]`` for
    ``K+``: when ``x = 0`` the stake ``min(lam m, c)`` is lost, when ``x = 1`` the gain is
    ``min(lam (1 - m), c (1/m - 1))``. Every rounded operation is monotone in m, so the result is nonincreasing
    in m for ``K+`` (nondecreasing for ``K-``) in floating point too, as the root finding assumes.
    """
    # 1/0 (or 1/tiny) = inf caps nothing; ln(1 - c) = -inf at c = 1 is a lost stake
    with np.errstate(divide="ignore", over="ignore"):
        if upper:
            return np.log1p(np.minimum(np.maximum(lam * m - lam_x, -c), c * (1.0 / (1.0 - m) - 1.0)))
        return np.log1p(np.minimum(np.maximum(lam_x - lam * m, -c), c * (1.0 / m - 1.0)))


def _log_capital(lam, lam_x, m, c: float, upper: bool) -> np.ndarray:
    """``ln K+_t(m)`` (``ln K-_t(m)`` with ``upper``) for every t: cumulative sums along the last axis."""
    return np.cumsum(_log_factors(lam, lam_x, m, c, upper), axis=-1)


def _levels(delta: float, theta: float) -> tuple[float, float]:
    """``ln(1/(theta delta))`` and ``ln(1/((1 - theta) delta))``: ``K+`` (``K-``) excludes m at or above its
    level; ``inf`` for a side of weight 0, which never excludes."""
    with np.errstate(divide="ignore"):
        return float(-np.log(theta) - np.log(delta)), float(-np.log1p(-theta) - np.log(delta))


def betting_excludes(xs, p, delta: float, c: float = 0.5, theta: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Whether the betting confidence sequence has excluded ``p`` by each time, and from which side.

    Parameters
    ----------
    xs : array_like of {0, 1}, shape (..., T)
        Observations (1 = violation) along the last axis, ``T >= 1``; leading axes are independent streams.
    p : array_like of float
        Candidate proportion(s) in [0, 1], broadcast against ``xs.shape[:-1]`` (one per stream, or one for all).
    delta, c, theta : float
        As in :func:`betting_cs`.

    Returns
    -------
    below, above : numpy.ndarray of bool, shape (..., T)
        ``below[..., t - 1]``: by time ``t`` the sequence excluded ``p`` because the data lie below it
        (``(1 - theta) K-_s(p) >= 1/delta`` for some ``s <= t``; a test of ``p <= eps`` decides "safe").
        ``above``: excluded because the data lie above it (``theta K+_s(p) >= 1/delta``; "unsafe"). Once true,
        each stays true (running intersection). Both at once means the set is empty, which happens only on the
        probability-``delta`` event that the true p was excluded.

    Notes
    -----
    When p is the true proportion, ``P(below or above at any t) <= delta`` (Ville's inequality; see
    :func:`betting_cs`), so a test that decides "safe" on ``below`` and "unsafe" on ``above`` errs with
    probability at most ``delta`` whenever it stops. Only the capital at ``m = p`` is needed: ``O(T)`` per
    stream. The decisions agree with the bounds of :func:`betting_cs` bit for bit (the same cumulative sums):
    for p in (0, 1), ``above[..., t - 1]`` exactly when ``p <= lower[..., t - 1]`` and ``below[..., t - 1]``
    exactly when ``p >= upper[..., t - 1]``.
    """
    xs = binary_streams(xs)
    _check_parameters(delta, c, theta)
    p = np.asarray(p, dtype=np.float64)
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise EstimatorInputError("p must lie in [0, 1]")
    m = np.broadcast_to(p[..., None], (*np.broadcast_shapes(p.shape, xs.shape[:-1]), 1))
    lam = _predictable_bets(xs, delta)
    lam_x = lam * xs
    level_plus, level_minus = _levels(delta, theta)
    above = _log_capital(lam, lam_x, m, c, upper=False) >= level_plus
    below = _log_capital(lam, lam_x, m, c, upper=True) >= level_minus
    return np.logical_or.accumulate(below, axis=-1), np.logical_or.accumulate(above, axis=-1)


# --------------------------------------------------------------------------------------------------------
# The bounds


def _grid_brackets(lam, lam_x, c: float, level: float, upper: bool):
    """For every (stream, time), the grid points next to the per-time end of the ``K+`` (``K-``) exclusions.

    ``K+_t(m)`` is nonincreasing in m, so the excluded m are ``[0, L_t]``: ``outside`` is the largest excluded
    grid point (``L_t >= outside``) and ``inside`` the next one, with ``h = ln K - level`` at each (``h >= 0``
    outside, ``< 0`` inside). Mirrored for ``K-`` and the upper end ``U_t``. Where no grid point is excluded
    the end is the domain's own (0 or 1) and ``outside`` is that, with ``h_out = nan``.
    """
    side = np.geomspace(1e-12, 0.5, int(np.clip(lam.shape[-1] // 4, *_GRID_POINTS)))
    grid = np.unique(np.concatenate([[0.0, 1.0], side, 1.0 - side]))
    grid = grid[::-1] if upper else grid
    outside = np.full(lam.shape, grid[0])
    inside = np.full(lam.shape, np.nan)
    h_out, h_in = np.full(lam.shape, np.nan), np.full(lam.shape, np.nan)
    for point in grid:
        h = _log_capital(lam, lam_x, point, c, upper) - level
        excluded = h >= 0.0
        fresh = ~excluded & np.isnan(inside)
        outside, h_out = np.where(excluded, point, outside), np.where(excluded, h, h_out)
        inside, h_in = np.where(fresh, point, inside), np.where(fresh, h, h_in)
        if not np.any(excluded):
            break  # monotone: no later grid point is excluded anywhere
    return outside, inside, h_out, h_in


def _row_log_capital(lam, lam_x, stream, time, m, c: float, upper: bool) -> np.ndarray:
    """``ln K_t(m)`` for rows ``(stream, time, m)`` (0-based ``time``, sorted ascending), by the same cumulative
    sums as :func:`betting_excludes`, so both agree to the last bit. Rows go in blocks of similar length."""
    out = np.empty(len(stream))
    width = time + 1
    start = 0
    while start < len(stream):
        stop = int(np.searchsorted(width, 1.25 * width[start] + 16, side="right"))
        stop = min(stop, start + max(1, _BLOCK // int(width[stop - 1])))
        span = int(width[stop - 1])
        rows = stream[start:stop]
        sums = _log_capital(lam[rows, :span], lam_x[rows, :span], m[start:stop, None], c, upper)
        out[start:stop] = sums[np.arange(stop - start), width[start:stop] - 1]
        start = stop
    return out


def _dominated(ends, stream, time, inside, upper: bool) -> np.ndarray:
    """Rows that cannot move the running intersection. ``ends[s, t + 1]`` holds the outside end of stream s's row
    at time t (neutral elsewhere); for the upper end a row is dominated once ``U_t >= inside_t >= min_{r<t}
    outside_r``, as the running minimum of the outside ends then reaches below it already. Only the streams of
    the given rows are scanned."""
    streams, position = np.unique(stream, return_inverse=True)
    running = (np.minimum if upper else np.maximum).accumulate(ends[streams], axis=-1)[position, time]
    return inside >= running if upper else inside <= running


def _refine(lam, lam_x, stream, time, bracket, c: float, level: float, upper: bool) -> np.ndarray:
    """Shrink each row's bracket ``(outside, inside, h_out, h_in)`` to two adjacent floats; return ``outside``.

    Regula falsi with the Anderson-Bjorck modification (the end kept in a round has its ``h`` scaled by
    ``1 - h_new/h_replaced``, or halved), on float64 bit patterns (ordered like the values in [0, 1]), with a
    bisection of the bit patterns every ``_BISECT_EVERY``-th round. Each round evaluates only the rows neither
    adjacent nor dominated (:func:`_dominated`; a dominated row keeps its outside end, which the running
    intersection ignores). Only ``outside`` is ever returned, and it was evaluated excluded (or is 0 or 1).
    """
    outside, inside = (v.view(np.int64).copy() for v in bracket[:2])
    h_out, h_in = bracket[2].copy(), bracket[3].copy()
    ends = np.full((lam.shape[0], lam.shape[1] + 1), 1.0 if upper else 0.0)
    ends[stream, time + 1] = bracket[0]
    active = np.flatnonzero(np.abs(outside - inside) > 1)
    for round_ in range(_MAX_ROUNDS):
        active = active[~_dominated(ends, stream[active], time[active], inside[active].view(np.float64), upper)]
        if active.size == 0:
            break
        o, n, ho, hn = outside[active], inside[active], h_out[active], h_in[active]
        ov, nv = o.view(np.float64), n.view(np.float64)
        # Near the end the capital rounds to the level exactly over a run of floats (h_out == 0): aim at where
        # it first rounds below, taking h_out as one rounding step of the level.
        lead = np.where(ho > 0.0, ho, np.spacing(level))
        with np.errstate(invalid="ignore"):
            guess = (ov + lead / (lead - hn) * (nv - ov)).view(np.int64)
        bisect = (round_ % _BISECT_EVERY == _BISECT_EVERY - 1) | ~np.isfinite(hn)
        guess = np.clip(np.where(bisect, (o + n) // 2, guess), np.minimum(o, n) + 1, np.maximum(o, n) - 1)
        h = _row_log_capital(lam, lam_x, stream[active], time[active], guess.view(np.float64), c, upper) - level
        excluded = h >= 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = 1.0 - h / np.where(excluded, ho, hn)
        scale = np.where(scale > 0.0, scale, 0.5)
        outside[active], h_out[active] = np.where(excluded, guess, o), np.where(excluded, h, ho * scale)
        inside[active], h_in[active] = np.where(excluded, n, guess), np.where(excluded, hn * scale, h)
        ends[stream[active], time[active] + 1] = outside[active].view(np.float64)
        active = active[np.abs(outside[active] - inside[active]) > 1]
    return outside.view(np.float64)


def _ends(lam, lam_x, x, c: float, level: float, upper: bool) -> np.ndarray:
    """Per-time ends ``L_t`` (``U_t`` with ``upper``) rounded outwards, at the times that can move the running
    intersection; the neutral 0 (1) elsewhere. Shape of ``x``, which is (streams, T)."""
    neutral = 1.0 if upper else 0.0
    ends = np.full(x.shape, neutral)
    if not np.isfinite(level):
        return ends
    outside, inside, h_out, h_in = _grid_brackets(lam, lam_x, c, level, upper)
    # A step with x = 1 multiplies K-(m) by at most 1 for every m, so U_t >= U_{t-1} and the running minimum
    # does not move; likewise x = 0 never raises L_t. Only the other steps need their end.
    needed = (x == (0 if upper else 1)) & ~np.isnan(h_out)
    time, stream = np.nonzero(needed.T)  # sorted by time, as _row_log_capital wants
    bracket = tuple(v[stream, time] for v in (outside, inside, h_out, h_in))
    ends[stream, time] = _refine(lam, lam_x, stream, time, bracket, c, level, upper)
    return ends


def betting_cs(xs, delta: float, c: float = 0.5, theta: float = 0.5) -> BettingCS:
    """Anytime-valid bounds on p from streams of 0/1 observations (hedged betting capital).

    Parameters
    ----------
    xs : array_like of {0, 1}, shape (..., T)
        Observations (1 = violation) along the last axis, ``T >= 1``; leading axes are independent streams.
    delta : float
        Miscoverage level in (0, 1): p lies in every interval of a stream simultaneously with probability at
        least ``1 - delta``.
    c : float
        Bet cap in (0, 1]: the upward bet at m is at most ``c/m`` and the downward one at most ``c/(1 - m)``, so
        one observation can cost at most a fraction ``c`` of the capital. WSR use 1/2 (or 3/4).
    theta : float
        Weight in [0, 1] of the upward bet ``K+`` in the hedge; 1/2 splits ``delta`` evenly between the sides.

    Returns
    -------
    BettingCS
        ``lower`` and ``upper`` of shape ``(..., T)`` (running max of the per-time lower ends, running min of
        the upper ends), each rounded outwards to the last bit. ``lower > upper`` can only happen on the
        probability-``delta`` event that p was excluded.

    Notes
    -----
    For a candidate mean m the capital processes are ``K+_t(m) = prod_{i<=t} (1 + min(lambda_i, c/m)(x_i - m))``
    and ``K-_t(m) = prod_{i<=t} (1 - min(lambda_i, c/(1 - m))(x_i - m))``, with WSR's predictable plug-in bets
    ``lambda_t = sqrt(2 ln(2/delta) / (sigma2_{t-1} t ln(t + 1)))``; ``sigma2_{t-1}`` is a regularised running
    variance of the first ``t - 1`` observations (``mu_t = (1/2 + sum x_i)/(t + 1)``,
    ``sigma2_t = (1/4 + sum (x_i - mu_i)^2)/(t + 1)``). Every factor is >= ``1 - c >= 0``, and when m is the
    true p each has conditional mean 1, so ``theta K+_t(p) + (1 - theta) K-_t(p)`` is a nonnegative
    martingale starting at 1. Ville's inequality gives ``P(exists t : theta K+_t(p) + (1 - theta) K-_t(p) >=
    1/delta) <= delta``, and the hedged capital ``max(theta K+_t(m), (1 - theta) K-_t(m))`` is at most that
    sum, so ``P(exists t : p not in C_t) <= delta`` for ``C_t = {m : max(theta K+_s(m), (1 - theta) K-_s(m))
    < 1/delta for all s <= t}`` (Waudby-Smith & Ramdas 2024, Theorem 3 and Section 5.1).

    ``K+_t(m)`` is nonincreasing and ``K-_t(m)`` nondecreasing in m, so each per-time set is an interval
    ``(L_t, U_t)`` and ``C_t`` is ``(max_s L_s, min_s U_s)``. Each end is bracketed on a fixed grid, then found
    by regula falsi/bisection on float64 bit patterns down to two adjacent floats, of which the excluded one is
    returned: rounding only widens. An evaluation at time t costs ``O(t)``, so a stream costs ``O(T^2)`` per
    root-finding round (about ten rounds); only the ``T`` ends that can move the running intersection are found
    (``L_t`` after a 1, ``U_t`` after a 0).
    """
    xs = binary_streams(xs)
    _check_parameters(delta, c, theta)
    flat = xs.reshape(-1, xs.shape[-1])
    level_plus, level_minus = _levels(delta, theta)
    lower, upper = np.empty(flat.shape), np.empty(flat.shape)
    chunk = max(1, _CHUNK // flat.shape[-1])
    for start in range(0, len(flat), chunk):
        part = flat[start : start + chunk]
        lam = _predictable_bets(part, delta)
        lam_x = lam * part
        lower[start : start + chunk] = _ends(lam, lam_x, part, c, level_plus, upper=False)
        upper[start : start + chunk] = _ends(lam, lam_x, part, c, level_minus, upper=True)
    return BettingCS(
        lower=np.maximum.accumulate(lower, axis=-1).reshape(xs.shape),
        upper=np.minimum.accumulate(upper, axis=-1).reshape(xs.shape),
        k=np.cumsum(xs, axis=-1, dtype=np.int64),
        delta=float(delta),
        c=float(c),
        theta=float(theta),
    )


# --------------------------------------------------------------------------------------------------------
# Cost of a sequential threshold decision


def expected_decision_n(
    p_true: float,
    threshold: float,
    delta: float,
    max_n: int,
    method: str = "betting",
    *,
    streams: int = 2000,
    seed: int = 0,
    c: float = 0.5,
    theta: float = 0.5,
    a: float = 0.5,
    b: float = 0.5,
) -> DecisionCost:
    """Mean observations and wrong-decision rate of the test "``p <= threshold`` or ``p > threshold``".

    The test draws one observation at a time and stops when the confidence sequence excludes ``threshold``:
    "safe" when it is excluded from below (the data lie below it), "unsafe" from above; undecided after
    ``max_n``.

    Parameters
    ----------
    p_true, threshold : float
        The true proportion in [0, 1] and the threshold in (0, 1).
    delta : float
        The sequence's miscoverage, in (0, 1); it bounds the wrong-decision probability.
    max_n : int
        The budget (>= 1).
    method : {"betting", "mixture"}
        ``"betting"``: :func:`betting_excludes`, with ``c`` and ``theta``, over ``streams`` streams simulated
        with ``numpy.random.default_rng(seed)``. ``"mixture"``: the beta-binomial mixture with prior
        ``Beta(a, b)``, exactly, by :meth:`~.threshold_test.ThresholdTest.operating_characteristic` with
        ``batch=1`` (``streams`` and ``seed`` unused).

    Returns
    -------
    DecisionCost

    Notes
    -----
    Either test decides wrongly with probability at most ``delta`` at every p: a wrong decision needs the
    sequence to exclude the true p at some time. The mixture's test decides on the side of ``k/n`` rather than
    of the exclusion, which is the same thing since its sets are intervals around ``k/n``.
    """
    if not (0.0 <= p_true <= 1.0):
        raise EstimatorInputError(f"p_true must lie in [0, 1] (got {p_true!r})")
    if isinstance(max_n, bool) or not isinstance(max_n, int | np.integer) or max_n < 1:
        raise EstimatorInputError(f"max_n must be an integer >= 1 (got {max_n!r})")
    if method == "mixture":
        test = ThresholdTest(eps=threshold, delta=delta, batch=1, max_n=int(max_n), a=a, b=b)
        oc = test.operating_characteristic(p_true)
        wrong = (oc.safe if p_true >= threshold else 0.0) + (oc.unsafe if p_true <= threshold else 0.0)
        fields = (oc.expected_n, 0.0, wrong, oc.undecided, max_n, 0)
        return DecisionCost("mixture", float(p_true), float(threshold), float(delta), *_plain(fields))
    if method != "betting":
        raise EstimatorInputError(f"method must be 'betting' or 'mixture' (got {method!r})")
    if not (0.0 < threshold < 1.0):
        raise EstimatorInputError(f"threshold must lie in (0, 1) (got {threshold!r})")
    if isinstance(streams, bool) or not isinstance(streams, int | np.integer) or streams < 1:
        raise EstimatorInputError(f"streams must be an integer >= 1 (got {streams!r})")
    n, safe, unsafe = _simulate_betting_test(p_true, threshold, delta, int(max_n), int(streams), seed, c, theta)
    wrong = (safe & (p_true >= threshold)) | (unsafe & (p_true <= threshold))
    se = n.std(ddof=1) / np.sqrt(len(n)) if len(n) > 1 else 0.0
    fields = (n.mean(), se, np.mean(wrong), np.mean(~(safe | unsafe)), max_n, streams)
    return DecisionCost("betting", float(p_true), float(threshold), float(delta), *_plain(fields))


def _plain(fields) -> tuple:
    """``(expected_n, expected_n_se, wrong, undecided, max_n, streams)`` as Python floats and ints."""
    return (*(float(v) for v in fields[:4]), int(fields[4]), int(fields[5]))


def _simulate_betting_test(p_true, threshold, delta, max_n: int, streams: int, seed, c, theta):
    """Stopping index (1-based, ``max_n`` if undecided) and the safe/unsafe decisions of simulated streams."""
    rng = np.random.default_rng(seed)
    n, safe, unsafe = [], [], []
    chunk = max(1, _CHUNK // max_n)
    for start in range(0, streams, chunk):
        xs = rng.random((min(chunk, streams - start), max_n)) < p_true
        below, above = betting_excludes(xs, threshold, delta, c, theta)
        stopped = below | above
        decided = stopped[:, -1]
        stop = np.where(decided, np.argmax(stopped, axis=-1), max_n - 1)
        is_unsafe = decided & above[np.arange(len(xs)), stop]  # a tie (both at once) counts as "unsafe"
        n.append(stop + 1)
        unsafe.append(is_unsafe)
        safe.append(decided & ~is_unsafe)
    return np.concatenate(n), np.concatenate(safe), np.concatenate(unsafe)


# --------------------------------------------------------------------------------------------------------
# Helpers


def _check_parameters(delta, c, theta) -> None:
    if not (np.ndim(delta) == 0 and 0.0 < delta < 1.0):
        raise EstimatorInputError(f"delta must be one number strictly between 0 and 1 (got {delta!r})")
    if not (np.ndim(c) == 0 and 0.0 < c <= 1.0):
        raise EstimatorInputError(f"bet cap c must be one number in (0, 1] (got {c!r})")
    if not (np.ndim(theta) == 0 and 0.0 <= theta <= 1.0):
        raise EstimatorInputError(f"hedge weight theta must be one number in [0, 1] (got {theta!r})")
