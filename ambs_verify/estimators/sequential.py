"""Sequential inference on a binomial proportion p: Wald's SPRT and an anytime-valid confidence sequence.

The fixed-sample bounds in ``intervals.py`` hold for one pre-chosen sample size ``m``; checking them after
every new episode and stopping when they look good inflates the error rate well beyond ``delta``. The tools
here are valid when the number of samples is decided on the fly:

* :class:`SPRT` -- Wald's sequential probability ratio test of ``p <= theta0`` against ``p >= theta1``, with
  exact operating characteristics (error probabilities and expected sample number) by dynamic programming.
* :func:`confidence_sequence` -- a beta-binomial mixture confidence sequence (Robbins 1970; Howard et al.
  2021): bounds ``(lower_t, upper_t)`` that contain p at all times ``t`` simultaneously with probability at
  least ``1 - delta``, so it may be monitored continuously and stopped at any data-dependent time.

The sequential shield rule (``shield.rule sequential``) decides with :func:`cs_excludes` through
:mod:`.threshold_test`; ``certify`` still draws a fixed number of samples (sequential certificates are planned), and
the SPRT is library-only.

It is implemented here rather than imported because the maintained library ``expectation`` requires
Python >= 3.12 and ``confseq`` is an unmaintained C++/boost source distribution.

References
----------
A. Wald, "Sequential tests of statistical hypotheses", Ann. Math. Statist. 16(2), 117-186, 1945.
H. Robbins, "Statistical methods related to the law of the iterated logarithm", Ann. Math. Statist. 41(5),
1397-1409, 1970.
S. R. Howard, A. Ramdas, J. McAuliffe and J. Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence
sequences", Ann. Statist. 49(2), 1055-1080, 2021.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import special

from .errors import EstimatorInputError
from .records import Number, Record, scalar_or_array, scalar_or_int_array

# Bisection halves the bracket between the float64 bit patterns of its ends (ordered like the values for
# p >= 0), so 64 steps leave two adjacent floats at any scale, also for ends as small as 1e-12.
_BISECTION_STEPS = 64


class Decision(IntEnum):
    """Outcome of an SPRT after some observations; arrays of decisions hold these integer codes."""

    CONTINUE = 0
    ACCEPT_H0 = 1  # p <= theta0: "safe"
    ACCEPT_H1 = 2  # p >= theta1: "unsafe", H0 rejected


@dataclass(frozen=True)
class SPRTResult(Record):
    """Where an SPRT stopped on each stream.

    ``decision`` holds :class:`Decision` codes; ``n`` is the number of observations used (the stream length
    ``T`` when ``decision`` is ``CONTINUE``) and ``k`` the violations among them. Scalars for one stream,
    arrays of the batch shape otherwise.
    """

    decision: Number
    n: Number
    k: Number


@dataclass(frozen=True)
class OperatingCharacteristic(Record):
    """Exact behaviour of an SPRT stopped after at most ``max_n`` observations when the true p is ``theta``.

    ``accept_h1 + accept_h0 + undecided == 1``; ``expected_n`` is ``E[min(N, max_n)]`` for the stopping
    time ``N``. Fields have the shape of ``theta``.
    """

    theta: Number
    accept_h1: Number
    accept_h0: Number
    undecided: Number
    expected_n: Number
    max_n: int


@dataclass(frozen=True)
class SequenceBounds(Record):
    """Time-uniform bounds on p from streams of 0/1 observations: the fields every confidence sequence here has.

    ``lower[..., t - 1]`` and ``upper[..., t - 1]`` bound p after ``t`` observations, all ``t`` at once, with
    probability at least ``1 - delta``; ``k`` holds the cumulative violation counts. Arrays of shape ``(..., T)``.
    """

    lower: Number
    upper: Number
    k: Number
    delta: float

    @property
    def confidence(self) -> float:
        return 1.0 - self.delta


@dataclass(frozen=True)
class ConfidenceSequence(SequenceBounds):
    """:class:`SequenceBounds` of the beta-binomial mixture; ``a, b`` are the Beta prior of the mixture."""

    a: float
    b: float


# --------------------------------------------------------------------------------------------------------
# Wald's SPRT


@dataclass(frozen=True)
class SPRT:
    """Wald's sequential probability ratio test of H0: ``p <= theta0`` against H1: ``p >= theta1``.

    Parameters
    ----------
    theta0, theta1 : float
        Indifference region ``(theta0, theta1)``; requires ``0 < theta0 < theta1 < 1``.
    alpha, beta : float
        Targets for the type I error (accept H1 when ``p = theta0``) and type II error (accept H0 when
        ``p = theta1``); each in (0, 1) with ``alpha + beta < 1``.

    Notes
    -----
    After ``n`` observations with ``k`` violations the log-likelihood ratio of ``theta1`` to ``theta0`` is
    ``k ln(theta1/theta0) + (n - k) ln((1 - theta1)/(1 - theta0))``. The test accepts H1 once it reaches
    ``A = ln((1 - beta)/alpha)``, accepts H0 once it falls to ``B = ln(beta/(1 - alpha))`` and continues in
    between (Wald 1945).

    Wald's boundaries do not give error probabilities of exactly ``alpha`` and ``beta``: because the ratio
    overshoots the boundary, the attained errors ``alpha'`` (at ``theta0``) and ``beta'`` (at ``theta1``)
    satisfy only ``alpha' <= alpha / (1 - beta)``, ``beta' <= beta / (1 - alpha)`` and
    ``alpha' + beta' <= alpha + beta``. In typical cases both are below their targets, but that is not
    guaranteed; :meth:`operating_characteristic` computes them exactly. By monotonicity of the likelihood
    ratio in p, the errors at ``p < theta0`` and ``p > theta1`` are smaller still.

    References
    ----------
    A. Wald, "Sequential tests of statistical hypotheses", Ann. Math. Statist. 16(2), 117-186, 1945.
    """

    theta0: float
    theta1: float
    alpha: float
    beta: float

    def __post_init__(self) -> None:
        t0, t1, a, b = self.theta0, self.theta1, self.alpha, self.beta
        if not (0.0 < t0 < t1 < 1.0):
            raise EstimatorInputError(f"SPRT needs 0 < theta0 < theta1 < 1 (got theta0={t0:g}, theta1={t1:g})")
        if not (0.0 < a < 1.0 and 0.0 < b < 1.0 and a + b < 1.0):
            raise EstimatorInputError(
                f"SPRT needs alpha and beta in (0, 1) with alpha + beta < 1 (got alpha={a:g}, beta={b:g})"
            )

    @property
    def upper_boundary(self) -> float:
        """``A = ln((1 - beta)/alpha)``: reaching it accepts H1."""
        return float(np.log((1.0 - self.beta) / self.alpha))

    @property
    def lower_boundary(self) -> float:
        """``B = ln(beta/(1 - alpha))``: reaching it accepts H0."""
        return float(np.log(self.beta / (1.0 - self.alpha)))

    def llr(self, k, n) -> np.ndarray:
        """Log-likelihood ratio after ``n`` observations with ``k`` violations (arrays broadcast together)."""
        k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
        per_violation = np.log(self.theta1 / self.theta0)
        per_clean = np.log1p(-self.theta1) - np.log1p(-self.theta0)
        return k * per_violation + (n - k) * per_clean

    def decide(self, k, n) -> np.ndarray:
        """Apply the stopping rule to ``k`` violations in ``n`` observations.

        Parameters
        ----------
        k, n : array_like of int
            Cumulative violations and observations, broadcast together; ``0 <= k <= n``.

        Returns
        -------
        numpy.ndarray of int8
            :class:`Decision` codes, shape of the broadcast inputs (0-d for scalars). This is the decision at
            ``(k, n)`` alone; a stream that crossed a boundary earlier stopped there (see :meth:`run`).
        """
        k, n = np.asarray(k), np.asarray(n)
        _check_counts(k, n, "decide")
        return self._codes(k, n)

    def _codes(self, k, n) -> np.ndarray:
        llr = self.llr(k, n)
        codes = np.where(llr >= self.upper_boundary, Decision.ACCEPT_H1, Decision.CONTINUE)
        return np.where(llr <= self.lower_boundary, Decision.ACCEPT_H0, codes).astype(np.int8)

    def run(self, xs) -> SPRTResult:
        """Run the test on streams of observations, stopping each at its first boundary crossing.

        Parameters
        ----------
        xs : array_like of {0, 1}, shape (..., T)
            Observations (1 = violation) along the last axis, ``T >= 1``; leading axes are independent
            streams.

        Returns
        -------
        SPRTResult
            Fields of shape ``(...)``: the decision, the stopping index ``n`` (1-based count of observations
            used; ``T`` for streams that never crossed) and the violations ``k`` among them.
        """
        xs = binary_streams(xs)
        k = np.cumsum(xs, axis=-1, dtype=np.int64)
        n = np.arange(1, xs.shape[-1] + 1)
        codes = self._codes(k, n)
        stopped = codes != Decision.CONTINUE
        crossed = stopped.any(axis=-1)
        # argmax finds the first crossing; streams that never cross read the last index instead.
        stop = np.where(crossed, np.argmax(stopped, axis=-1), xs.shape[-1] - 1)[..., None]
        decision = np.take_along_axis(codes, stop, axis=-1)[..., 0]
        return SPRTResult(
            decision=scalar_or_int_array(decision),
            n=scalar_or_int_array(stop[..., 0] + 1),
            k=scalar_or_int_array(np.take_along_axis(k, stop, axis=-1)[..., 0]),
        )

    def operating_characteristic(self, theta, max_n: int) -> OperatingCharacteristic:
        """Exact error probabilities and expected sample number when the true proportion is ``theta``.

        Parameters
        ----------
        theta : array_like of float
            True proportions in [0, 1], any shape.
        max_n : int
            Truncation: the test is stopped undecided after ``max_n`` observations (>= 1).

        Returns
        -------
        OperatingCharacteristic
            ``P(accept H1)``, ``P(accept H0)``, ``P(undecided after max_n)`` and ``E[min(N, max_n)]``, each of
            the shape of ``theta``.

        Notes
        -----
        Forward dynamic programming over the number of violations: the ratio depends on the path only through
        ``(n, k)``, so the law of ``k`` among streams still running after ``n`` observations determines
        everything. Each step costs ``O(max_n)`` vectorised work, ``O(max_n**2)`` in all, with no sampling
        error. Since the truncated test accepts less often than the untruncated one, the returned acceptance
        probabilities are lower bounds on Wald's and the gap is at most ``undecided``.
        """
        theta = np.asarray(theta, dtype=float)
        if not np.all((theta >= 0.0) & (theta <= 1.0)):
            raise EstimatorInputError("theta must lie in [0, 1]")
        if isinstance(max_n, bool) or not isinstance(max_n, int | np.integer) or max_n < 1:
            raise EstimatorInputError(f"max_n must be an integer >= 1 (got {max_n!r})")
        th = theta[..., None]
        ks = np.arange(max_n + 1)
        # running[..., k]: probability of still running with k violations after n - 1 observations.
        running = np.ones((*theta.shape, 1))
        accept_h1, accept_h0 = np.zeros(theta.shape), np.zeros(theta.shape)
        expected_n = np.zeros(theta.shape)
        for n in range(1, max_n + 1):
            # E[min(N, max_n)] is the sum of P(N >= n) over n = 1..max_n.
            expected_n += running.sum(axis=-1)
            step = np.zeros((*theta.shape, n + 1))
            step[..., :-1] = running * (1.0 - th)
            step[..., 1:] += running * th
            codes = self._codes(ks[: n + 1], n)
            accept_h1 += np.where(codes == Decision.ACCEPT_H1, step, 0.0).sum(axis=-1)
            accept_h0 += np.where(codes == Decision.ACCEPT_H0, step, 0.0).sum(axis=-1)
            running = np.where(codes == Decision.CONTINUE, step, 0.0)
        return OperatingCharacteristic(
            theta=scalar_or_array(theta),
            accept_h1=scalar_or_array(accept_h1),
            accept_h0=scalar_or_array(accept_h0),
            undecided=scalar_or_array(running.sum(axis=-1)),
            expected_n=scalar_or_array(expected_n),
            max_n=int(max_n),
        )


# --------------------------------------------------------------------------------------------------------
# Beta-binomial mixture confidence sequence


def _exclusion_level(k, n, delta, a, b) -> np.ndarray:
    """``ln(1/delta) - ln B(a + k, b + n - k) + ln B(a, b)``: p is excluded once its negative
    log-likelihood ``-k ln p - (n - k) ln(1 - p)`` reaches this, i.e. once ``ln M_n(p) >= ln(1/delta)``."""
    return np.log(1.0 / delta) - special.betaln(a + k, b + n - k) + special.betaln(a, b)


def _neg_log_likelihood(k, n, p) -> np.ndarray:
    return -special.xlogy(k, p) - special.xlogy(n - k, 1.0 - p)


def cs_excludes(k, n, p, delta: float, a: float = 0.5, b: float = 0.5) -> np.ndarray:
    """Whether the confidence sequence excludes ``p`` after ``k`` violations in ``n`` observations.

    Parameters
    ----------
    k, n, p : array_like
        Counts with ``0 <= k <= n`` and candidate proportions in [0, 1], broadcast together.
    delta : float
        Miscoverage level in (0, 1).
    a, b : float
        Beta prior of the mixture, both > 0 (see :func:`confidence_sequence`).

    Returns
    -------
    numpy.ndarray of bool
        ``ln M_n(p) >= ln(1/delta)``, shape of the broadcast inputs.
    """
    k, n, p = (np.asarray(v, dtype=float) for v in (k, n, p))
    _check_cs_inputs(delta, a, b)
    _check_counts(k, n, "cs_excludes")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise EstimatorInputError("p must lie in [0, 1]")
    return _neg_log_likelihood(k, n, p) >= _exclusion_level(k, n, delta, a, b)


def cs_bounds(k, n, delta: float, a: float = 0.5, b: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The confidence set ``{p : ln M_n(p) < ln(1/delta)}`` at one time, as ``(lower, upper)``.

    Parameters
    ----------
    k, n : array_like
        Violations and observations, broadcast together; ``0 <= k <= n``. At ``n = 0`` the set is [0, 1].
    delta : float
        Miscoverage level in (0, 1).
    a, b : float
        Beta prior of the mixture, both > 0 (see :func:`confidence_sequence`).

    Returns
    -------
    lower, upper : numpy.ndarray
        Ends of the set, shape of the broadcast inputs. This is the set at one time, without the running
        intersection that :func:`confidence_sequence` applies.

    Notes
    -----
    ``ln M_n(p)`` is convex in p and at most 0 at ``p = k/n`` (the mixture likelihood never exceeds the
    maximum likelihood), so the set is an interval around ``k/n``. Each end is found by 64 vectorised
    bisection steps on the float64 bit patterns, which end at two adjacent floats, one inside and one
    outside the set; the outside one is returned, so rounding only ever widens the interval.
    """
    _check_cs_inputs(delta, a, b)
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    _check_counts(k, n, "cs_bounds")
    # The p-free part of ln M_n(p) is computed once; each bisection step then costs two xlogy calls.
    level = _exclusion_level(k, n, delta, a, b)
    centre = np.divide(k, n, out=np.full(k.shape, 0.5), where=n > 0)
    # Row 0 brackets the lower end by [0, k/n], row 1 the upper end by [k/n, 1]; each keeps an outside and an
    # inside end. At k = 0 (k = n) the lower (upper) bracket is one point and stays there.
    outside = np.stack([np.zeros(k.shape), np.ones(k.shape)]).view(np.int64)
    inside = np.stack([centre, centre]).view(np.int64)
    for _ in range(_BISECTION_STEPS):
        mid = (outside + inside) // 2
        excluded = _neg_log_likelihood(k, n, mid.view(np.float64)) >= level
        outside, inside = np.where(excluded, mid, outside), np.where(excluded, inside, mid)
    out_lo, out_hi = outside.view(np.float64)
    empty = n == 0
    return np.where(empty, 0.0, out_lo), np.where(empty, 1.0, out_hi)


def confidence_sequence(xs, delta: float, a: float = 0.5, b: float = 0.5) -> ConfidenceSequence:
    """Anytime-valid bounds on p from streams of 0/1 observations (beta-binomial mixture).

    Parameters
    ----------
    xs : array_like of {0, 1}, shape (..., T)
        Observations (1 = violation) along the last axis, ``T >= 1``; leading axes are independent streams.
    delta : float
        Miscoverage level in (0, 1): p lies in every interval of a stream simultaneously with probability at
        least ``1 - delta``.
    a, b : float
        Beta(a, b) mixing prior, both > 0. The default a = b = 1/2 (Jeffreys; the Krichevsky-Trofimov
        mixture) has near-minimax regret, ``(1/2) ln t + O(1)``, for every p. Any prior gives a valid
        sequence; it only decides where the bounds are tightest: moving mass towards 0 (e.g. a = 0.1,
        b = 0.9) tightens the upper bound when violations are rare, at a small cost elsewhere.

    Returns
    -------
    ConfidenceSequence
        ``lower`` and ``upper`` of shape ``(..., T)``: the running intersection of the per-time sets of
        :func:`cs_bounds` (running max of lowers, running min of uppers), which is valid whenever they are.
        ``lower > upper`` can only happen on the probability-``delta`` event that p was excluded.

    Notes
    -----
    For ``k`` violations in ``t`` observations,
    ``ln M_t(p) = ln B(a + k, b + t - k) - ln B(a, b) - k ln p - (t - k) ln(1 - p)``
    is the log of the Beta(a, b)-mixture likelihood ratio against p, a nonnegative martingale with
    ``M_0 = 1`` when p is the true proportion. Ville's inequality gives
    ``P(exists t : M_t(p) >= 1/delta) <= delta``, so the sets ``{p : M_t(p) < 1/delta}`` cover p at all
    times at once (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon 2021). Their width shrinks like
    ``sqrt(ln t / t)`` rather than ``1/sqrt(t)``: the price of validity under optional stopping and
    continuous monitoring.
    """
    xs = binary_streams(xs)
    length = xs.shape[-1]
    k = np.cumsum(xs, axis=-1, dtype=np.int64)
    # The set depends only on (k, t), and a batch of streams revisits few distinct pairs: bisect each once.
    pairs, inverse = np.unique((k * length + np.arange(length)).ravel(), return_inverse=True)
    lower, upper = cs_bounds(pairs // length, pairs % length + 1, delta, a, b)
    lower, upper = lower[inverse].reshape(k.shape), upper[inverse].reshape(k.shape)
    return ConfidenceSequence(
        lower=np.maximum.accumulate(lower, axis=-1),
        upper=np.minimum.accumulate(upper, axis=-1),
        k=k,
        delta=float(delta),
        a=float(a),
        b=float(b),
    )


# --------------------------------------------------------------------------------------------------------
# Helpers


def _check_cs_inputs(delta, a, b) -> None:
    if not (np.ndim(delta) == 0 and 0.0 < delta < 1.0):
        raise EstimatorInputError(f"delta must be one number strictly between 0 and 1 (got {delta!r})")
    if not (np.ndim(a) == 0 and np.ndim(b) == 0 and a > 0.0 and b > 0.0 and np.isfinite(a + b)):
        raise EstimatorInputError(f"prior Beta(a, b) needs finite a > 0 and b > 0 (got a={a!r}, b={b!r})")


def _check_counts(k, n, caller: str) -> None:
    if not (np.all(n >= 0) and np.all(k >= 0) and np.all(k <= n)):
        raise EstimatorInputError(f"{caller} needs counts with 0 <= k <= n")


def binary_streams(xs) -> np.ndarray:
    """Check a (..., T) array of 0/1 observations with T >= 1; return it as int8."""
    xs = np.asarray(xs)
    if xs.ndim == 0 or xs.shape[-1] == 0:
        raise EstimatorInputError(f"observations must have shape (..., T) with T >= 1 (got shape {xs.shape})")
    if not np.all((xs == 0) | (xs == 1)):
        raise EstimatorInputError("observations must be 0 (no violation) or 1 (violation)")
    return xs.astype(np.int8)
