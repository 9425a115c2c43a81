"""Samples a sequential decision needs against a fixed sample size at the same guarantee (issue 19), exactly.

``python -m benchmarks.sequential_samples [--quick]``:

* **shield**: the sequential rule's test of p <= 0.01 against p > 0.01 at error 0.01 each way, looks at 32, 64, ...,
  512 traces (the default ``shield.growth`` 2) and every 32 traces: the exact expected traces per decision
  (:meth:`~ambs_verify.estimators.threshold_test.ThresholdTest.operating_characteristic`) at p in {0, 0.001, 0.01,
  0.05, 0.2, 0.5} against the fixed m = 512, and both error probabilities' maxima over a grid of p;
* **certification**: deciding p <= 0.05 at δ 0.01 when the true p is 0.01 (the issue's peer figures), one
  observation at a time: the mixture confidence sequence's exact expected observations and 90 % quantile, the
  betting confidence sequence's (seeded simulation), against a fixed n sized in advance for 90 % power with
  Clopper-Pearson and with Hoeffding (the smallest n at which P(upper bound <= 0.05) >= 0.9 when p = 0.01).

Every number is computed, none timed; the ratios come from one run.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import main, row

SHIELD_P = (0.0, 0.001, 0.01, 0.05, 0.2, 0.5)
CERT_P = (0.0, 0.01, 0.02, 0.1)
EPS, DELTA, FIXED_M = 0.01, 0.01, 512
P_MAX, TRUE_P, POWER = 0.05, 0.01, 0.9


def shield_rows() -> list[dict]:
    from ambs_verify.estimators.threshold_test import ThresholdTest

    grid = np.union1d(np.linspace(0.0, 1.0, 201), [EPS])
    out = []
    for growth in (2, 1):
        test = ThresholdTest(EPS, DELTA, 32, FIXED_M, growth)
        oc = test.operating_characteristic(np.asarray(SHIELD_P))
        errors = test.operating_characteristic(grid)
        out.append(
            {
                "looks": [int(n) for n in test.looks],
                "p": list(SHIELD_P),
                "expected_traces": [float(x) for x in oc.expected_n],
                "traces_ratio": [FIXED_M / float(x) for x in oc.expected_n],
                "max_error_safe": float(errors.safe[grid >= EPS].max()),  # acts although p >= eps
                "max_error_unsafe": float(errors.unsafe[grid <= EPS].max()),  # overrides although p <= eps
            }
        )
    return out


def sized_in_advance(method: str, limit: int = 5000) -> int:
    """The smallest n at which a fixed-n one-sided upper bound at δ is <= P_MAX with probability >= POWER when the
    true p is TRUE_P."""
    from scipy import stats

    from ambs_verify.estimators import intervals

    for n in range(1, limit + 1):
        k = np.arange(n + 1)
        ok = np.asarray(intervals.upper_bound(k, n, DELTA, method)) <= P_MAX
        if ok.any() and stats.binom.cdf(int(np.flatnonzero(ok).max()), n, TRUE_P) >= POWER:
            return n
    raise RuntimeError(f"no n <= {limit} for {method}")


def certification(quick: bool) -> dict:
    from ambs_verify.estimators.betting import expected_decision_n
    from ambs_verify.estimators.threshold_test import ThresholdTest

    test = ThresholdTest(P_MAX, DELTA, 1, 4000)
    oc = test.operating_characteristic(np.asarray(CERT_P))
    looks, safe, _ = test.decided_by(TRUE_P)
    streams = 500 if quick else 4000
    betting = [expected_decision_n(p, P_MAX, DELTA, 4000, "betting", streams=streams, seed=2024) for p in CERT_P]
    cp, hoeffding = sized_in_advance("clopper-pearson"), sized_in_advance("hoeffding")
    mixture_n = float(oc.expected_n[CERT_P.index(TRUE_P)])
    return {
        "p": list(CERT_P),
        "mixture_expected_n": [float(x) for x in oc.expected_n],
        "mixture_wrong": [float(x) for x in np.where(np.asarray(CERT_P) <= P_MAX, oc.unsafe, oc.safe)],
        "mixture_q90_at_true_p": int(looks[np.argmax(safe >= POWER)]),
        "betting_expected_n": [float(b.expected_n) for b in betting],
        "betting_se": [float(b.expected_n_se) for b in betting],
        "betting_streams": streams,
        "clopper_pearson_sized": cp,
        "hoeffding_sized": hoeffding,
        "cp_ratio": cp / mixture_n,
        "hoeffding_ratio": hoeffding / mixture_n,
    }


def run(quick: bool) -> dict:
    return {"shield": shield_rows(), "certification": certification(quick)}


def headline(result: dict) -> list[dict]:
    out = []
    for r in result["shield"]:
        traces = ", ".join(f"p {p:g}: {n:.0f}" for p, n in zip(r["p"], r["expected_traces"], strict=True))
        out.append(
            row(
                f"shield test p <= {EPS} at error {DELTA}, looks {r['looks'][:3]}...",
                f"exact E[traces] ({traces}); max errors {r['max_error_safe']:.2g} / {r['max_error_unsafe']:.2g}",
                ratio=f"fixed 512 / sequential at p 0.2 ×{r['traces_ratio'][SHIELD_P.index(0.2)]:.1f}",
            )
        )
    c = result["certification"]
    i = c["p"].index(TRUE_P)
    out.append(
        row(
            f"certify p <= {P_MAX} at δ {DELTA}, true p {TRUE_P}",
            f"sequential (mixture) E[n] {c['mixture_expected_n'][i]:.1f} (90 % by {c['mixture_q90_at_true_p']}), "
            f"betting {c['betting_expected_n'][i]:.1f}; Clopper-Pearson sized in advance {c['clopper_pearson_sized']}, "
            f"Hoeffding {c['hoeffding_sized']}",
            ratio=f"CP / sequential ×{c['cp_ratio']:.2f}; Hoeffding / sequential ×{c['hoeffding_ratio']:.2f}",
        )
    )
    return out


if __name__ == "__main__":
    main("sequential_samples", run)
