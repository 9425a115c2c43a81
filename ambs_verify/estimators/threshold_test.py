"""An anytime-valid test of ``p <= eps`` against ``p > eps`` that looks at the data on a fixed schedule: the
sequential shield's decision rule, with exact operating characteristics.

The looks are at ``n = batch, 2 batch, ..., max_n`` observations (``growth`` 1) or at ``n = batch, growth * batch,
growth^2 * batch, ...`` capped at ``max_n`` (``growth`` >= 2: the shield's default, 32, 64, 128, 256, 512, draws as many
traces as a fixed 512 when the state is undecided, in five calls rather than sixteen). After each look, with ``k``
violations among the ``n`` observations, the test

* decides **safe** (``p < eps``) when the beta-binomial mixture confidence sequence at level ``delta``
  (:func:`~.sequential.cs_excludes`) excludes ``eps`` and ``k / n < eps``;
* decides **unsafe** (``p > eps``) when it excludes ``eps`` and ``k / n > eps``;
* otherwise draws another batch; after ``max_n`` it is undecided.

Both decisions are integer thresholds per look, computed once: safe when ``k <= safe_max[j]``, unsafe when
``k >= unsafe_min[j]``, so a jitted loop only compares counts with two small tables.

Notes
-----
Guarantee, for every p and whatever the number of looks: ``P(decide safe) <= delta`` when ``p >= eps`` and
``P(decide unsafe) <= delta`` when ``p <= eps``. The confidence set at time n is an interval around ``k / n``
(``ln M_n(p)`` is convex in p), so a wrong decision needs the set to exclude the true p at some time, which Ville's
inequality bounds by ``delta`` for the mixture martingale. Both errors share that one event, so ``delta`` is not
split. :meth:`ThresholdTest.operating_characteristic` computes both error probabilities and the expected number of
observations exactly, by dynamic programming over the looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .errors import EstimatorInputError
from .records import Number, Record, scalar_or_array
from .sequential import cs_excludes

__all__ = ["CONTINUE", "SAFE", "UNSAFE", "ThresholdOC", "ThresholdTest", "look_schedule"]

SAFE, UNSAFE, CONTINUE = 1, 2, 0


def look_schedule(batch: int, max_n: int, growth: int) -> np.ndarray:
    """``n`` at each look: every ``batch`` (``growth`` 1) or ``batch * growth^j`` capped at ``max_n`` (module doc)."""
    if growth == 1:
        return np.arange(batch, max_n + 1, batch)
    looks = [batch]
    while looks[-1] < max_n:
        looks.append(min(looks[-1] * growth, max_n))
    return np.asarray(looks)


@dataclass(frozen=True)
class ThresholdOC(Record):
    """Exact behaviour of a :class:`ThresholdTest` when the true proportion is ``p``.

    ``safe + unsafe + undecided == 1``; ``expected_n`` is the mean number of observations drawn (at most
    ``max_n``). Fields have the shape of ``p``.
    """

    p: Number
    safe: Number
    unsafe: Number
    undecided: Number
    expected_n: Number
    max_n: int


@dataclass(frozen=True)
class ThresholdTest:
    """The test of the module docstring.

    Parameters
    ----------
    eps : float
        The threshold, in (0, 1).
    delta : float
        Each error's probability bound, in (0, 1).
    batch : int
        Observations at the first look (>= 1).
    max_n : int
        The budget, a multiple of ``batch``.
    growth : int
        1: a look every ``batch`` observations; >= 2: each look at ``growth`` times the last one's ``n``, the last
        at ``max_n``.
    a, b : float
        The mixture's Beta prior (Jeffreys' 0.5, 0.5 by default, as :func:`~.sequential.confidence_sequence`).

    Attributes
    ----------
    looks : (L,) int
        ``n`` at each look.
    draws : (L,) int
        New observations drawn for each look (``looks`` differenced).
    safe_max, unsafe_min : (L,) int
        The decision thresholds per look (``-1`` / ``n + 1`` where that decision is out of reach).
    """

    eps: float
    delta: float
    batch: int
    max_n: int
    growth: int = 1
    a: float = 0.5
    b: float = 0.5
    looks: np.ndarray = field(init=False, repr=False, compare=False)
    draws: np.ndarray = field(init=False, repr=False, compare=False)
    safe_max: np.ndarray = field(init=False, repr=False, compare=False)
    unsafe_min: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (0.0 < self.eps < 1.0 and 0.0 < self.delta < 1.0):
            raise EstimatorInputError(f"eps and delta must lie in (0, 1) (got {self.eps}, {self.delta})")
        if self.batch < 1 or self.max_n < self.batch or self.max_n % self.batch:
            raise EstimatorInputError(f"max_n ({self.max_n}) must be a positive multiple of batch ({self.batch})")
        if self.growth < 1:
            raise EstimatorInputError(f"growth must be an integer >= 1 (got {self.growth})")
        looks = look_schedule(self.batch, self.max_n, self.growth)
        safe_max, unsafe_min = [], []
        for n in looks:
            k = np.arange(n + 1)
            excluded = cs_excludes(k, n, self.eps, self.delta, self.a, self.b)
            below, above = excluded & (k < n * self.eps), excluded & (k > n * self.eps)
            # the set is an interval around k/n: the excluded counts below (above) n*eps are a prefix (suffix)
            safe_max.append(int(np.flatnonzero(below).max()) if below.any() else -1)
            unsafe_min.append(int(np.flatnonzero(above).min()) if above.any() else int(n) + 1)
        object.__setattr__(self, "looks", looks)
        object.__setattr__(self, "draws", np.diff(looks, prepend=0))
        object.__setattr__(self, "safe_max", np.asarray(safe_max))
        object.__setattr__(self, "unsafe_min", np.asarray(unsafe_min))

    def decide(self, k, look) -> np.ndarray:
        """Decision codes (0 continue, 1 safe, 2 unsafe) for ``k`` violations at look index ``look``."""
        k, look = np.asarray(k), np.asarray(look)
        return np.where(k <= self.safe_max[look], SAFE, np.where(k >= self.unsafe_min[look], UNSAFE, CONTINUE))

    def needed(self, k, limit: int = 1 << 22) -> np.ndarray:
        """The fewest observations ``n`` at which ``k`` violations decide **safe** (at any ``n``, not only at a look):
        how many a state undecided after the budget would need if no further violation came. ``-1`` where no
        ``n <= limit`` does.

        Parameters
        ----------
        k : array_like of int
            Violations, any shape.
        limit : int
            The largest ``n`` searched.

        Notes
        -----
        Exact: every ``n`` from ``k + 1`` to ``limit`` is tried (vectorised, in chunks), the first that decides is
        returned.
        """
        ks = np.atleast_1d(np.asarray(k, dtype=np.int64))
        out = np.full(ks.shape, -1, np.int64)
        chunk = 1 << 16
        for i, kk in np.ndenumerate(ks):
            for start in range(int(kk) + 1, limit + 1, chunk):
                n = np.arange(start, min(start + chunk, limit + 1))
                ok = (kk < n * self.eps) & cs_excludes(kk, n, self.eps, self.delta, self.a, self.b)
                if ok.any():
                    out[i] = n[np.argmax(ok)]
                    break
        return out.reshape(np.shape(k))

    def operating_characteristic(self, p) -> ThresholdOC:
        """Exact decision probabilities and expected observations at true proportion(s) ``p`` in [0, 1]."""
        ps = np.atleast_1d(np.asarray(p, dtype=float))
        if not np.all((ps >= 0.0) & (ps <= 1.0)):
            raise EstimatorInputError("p must lie in [0, 1]")
        rows = np.array([self._dynamic_programme(q) for q in ps.ravel()]).reshape(*ps.shape, 4)
        fields = [scalar_or_array(rows[..., i].reshape(np.shape(p))) for i in range(4)]
        return ThresholdOC(scalar_or_array(p), *fields, max_n=self.max_n)

    def decided_by(self, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(looks, safe, unsafe)``: the exact probabilities of having decided safe / unsafe by each look at true
        proportion ``p`` (cumulative, shape ``(L,)``): the stopping time's distribution."""
        safe, unsafe, _ = self._per_look(float(p))
        return self.looks, np.cumsum(safe), np.cumsum(unsafe)

    def _dynamic_programme(self, p: float) -> tuple[float, float, float, float]:
        """``(safe, unsafe, undecided, expected_n)`` at one p."""
        safe, unsafe, running = self._per_look(p)
        # every path still undecided before a look draws that look's observations
        expected = float(np.dot(self.draws, np.concatenate([[1.0], running[:-1]])))
        return float(safe.sum()), float(unsafe.sum()), float(running[-1]), expected

    def _per_look(self, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per look: the mass decided safe, decided unsafe, and still undecided after it (forward DP over k)."""
        mass = np.ones(1)  # k = 0 before the first look
        out = np.zeros((3, len(self.looks)))
        for j, draw in enumerate(self.draws):
            mass = np.convolve(mass, stats.binom.pmf(np.arange(draw + 1), draw, p))
            cut_safe, cut_unsafe = self.safe_max[j] + 1, self.unsafe_min[j]
            out[0, j], out[1, j] = mass[:cut_safe].sum(), mass[cut_unsafe:].sum()
            mass[:cut_safe] = 0.0
            mass[cut_unsafe:] = 0.0
            out[2, j] = mass.sum()
        return out[0], out[1], out[2]
