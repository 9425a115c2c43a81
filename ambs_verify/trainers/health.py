"""Training health: divergence (non-finite losses or parameters) and a collapsed world model.

A diverged run stops with :class:`TrainingDiverged` (one line: which quantity, at which step, the last good
checkpoint); no checkpoint with a non-finite parameter is ever written (:func:`first_non_finite` guards
``checkpoint.save``), so resuming or certifying always starts from finite parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "HEALTH_RATIO",
    "HEALTH_UPDATES",
    "TrainingDiverged",
    "diverged_metric",
    "world_model_collapse",
]


class TrainingDiverged(RuntimeError):
    """Training produced a non-finite loss or parameter; the message names it, the step and the last checkpoint."""


def diverged_metric(metrics: Mapping[str, Any]) -> tuple[str, float] | None:
    """The first loss or gradient norm in an update's ``metrics`` that is not finite, with its value."""
    for part in ("loss", "grad_norm"):  # a loss names the cause better than the gradient norm it produced
        for name, value in metrics.items():
            if part in name and np.ndim(value) == 0 and not np.isfinite(value):
                return name, float(value)
    return None


def divergence_message(quantity: str, value: Any, step: int, last_saved: int | None, where: Any) -> str:
    """The one line a diverged run stops with."""
    last = (
        f"the last good checkpoint is step {last_saved} in {where}"
        if last_saved is not None
        else "no checkpoint was written"
    )
    return (
        f"training diverged at step {step}: {quantity} is {value}; stopped without saving, {last} "
        "(lower the learning rates, e.g. --model_opt.lr, or resume from it)"
    )


# The world-model health check: after this many updates, a vector reconstruction loss still at 90 % or more of
# the loss of always predicting the batch's mean vector means the model has not learned the state.
HEALTH_UPDATES = 500
HEALTH_RATIO = 0.9


def world_model_collapse(scalars: dict[str, Any], free_bits: float) -> str | None:
    """A one-line diagnosis when a log record shows a collapsed world model, else None."""
    ratio, kl = scalars.get("train/wm/vector_vs_mean"), scalars.get("train/wm/model_kl")
    if ratio is None or scalars.get("train/updates", 0) < HEALTH_UPDATES or ratio < HEALTH_RATIO:
        return None
    kl_text = (
        ""
        if kl is None
        else f"; the posterior's KL is {kl:.2f}"
        + (f", below free bits ({free_bits:g}), so the KL term gives no gradient" if kl < free_bits else "")
    )
    return (
        f"the world model is not learning the observations after {scalars['train/updates']} updates: its vector "
        f"reconstruction loss is {ratio:.0%} of always predicting the mean{kl_text}; imagined returns and the "
        "shield's estimates then carry no information about the state (README: world-model health)"
    )
