"""Small typed result records that round-trip through JSON.

Fields may hold Python floats or numpy arrays (the estimators are vectorised); ``to_dict`` turns arrays into
lists and ``from_dict`` turns lists back into arrays, so ``from_dict(to_dict(r)) == r`` element-wise.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Self

import numpy as np

Number = float | np.ndarray


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _restore(value: Any) -> Any:
    if isinstance(value, list):
        return np.asarray(value)
    return value


def scalar_or_array(a) -> float | np.ndarray:
    """A 0-d result as a Python float, anything else as a float array (records keep scalars plain)."""
    a = np.asarray(a, dtype=float)
    return float(a) if a.ndim == 0 else a


def scalar_or_int_array(a) -> int | np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    return int(a) if a.ndim == 0 else a


class Record:
    """Mixin: JSON serialisation for frozen dataclasses whose fields are numbers, arrays or strings."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fields for {cls.__name__}: {sorted(unknown)}; expected {sorted(names)}")
        return cls(**{k: _restore(v) for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))


@dataclasses.dataclass(frozen=True)
class Interval(Record):
    """A confidence bound for a binomial proportion from ``k`` violations in ``m`` samples.

    ``side`` is ``"upper"`` (``lower`` is 0), ``"lower"`` (``upper`` is 1) or ``"two-sided"``; the bound holds
    with probability at least ``1 - delta`` when ``sound`` is True, and only approximately otherwise.
    """

    estimate: Number
    lower: Number
    upper: Number
    method: str
    sound: bool
    delta: float
    k: Number
    m: Number
    side: str

    @property
    def confidence(self) -> float:
        return 1.0 - self.delta
