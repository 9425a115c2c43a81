"""Bounds, sample sizes, sequential tests and composition for violation probabilities.

Every number a certificate states comes from here. Pure numpy/scipy/statsmodels; the jit-able ``jax_bounds``
variants are imported on demand so that this package does not pull JAX in.
"""

from .betting import BettingCS, DecisionCost, betting_cs, betting_excludes, expected_decision_n
from .composition import (
    ComposedBound,
    DeltaSplit,
    ModelErrorBound,
    MultipleTestResult,
    compose_real_bound,
    model_error_bound,
    multiple_test,
    pvalue_below,
    split_delta,
)
from .errors import EstimatorInputError
from .intervals import METHODS, SOUND_METHODS, get_method, interval, lower_bound, upper_bound
from .records import Interval
from .sample_size import SampleSize, samples_for_upper_bound, theorem1, theorem2
from .sequential import (
    SPRT,
    ConfidenceSequence,
    Decision,
    OperatingCharacteristic,
    SPRTResult,
    confidence_sequence,
    cs_bounds,
    cs_excludes,
)
from .threshold_test import ThresholdOC, ThresholdTest

__all__ = [
    "METHODS",
    "SOUND_METHODS",
    "SPRT",
    "BettingCS",
    "ComposedBound",
    "ConfidenceSequence",
    "Decision",
    "DecisionCost",
    "DeltaSplit",
    "EstimatorInputError",
    "Interval",
    "ModelErrorBound",
    "MultipleTestResult",
    "OperatingCharacteristic",
    "SPRTResult",
    "SampleSize",
    "ThresholdOC",
    "ThresholdTest",
    "betting_cs",
    "betting_excludes",
    "compose_real_bound",
    "confidence_sequence",
    "cs_bounds",
    "cs_excludes",
    "expected_decision_n",
    "get_method",
    "interval",
    "lower_bound",
    "model_error_bound",
    "multiple_test",
    "pvalue_below",
    "samples_for_upper_bound",
    "split_delta",
    "theorem1",
    "theorem2",
    "upper_bound",
]
