"""Data parallelism over several devices: the learner's batch and the shield's imagined traces split along one mesh
axis, ``data``; parameters and optimiser states replicated on every device.

The train step is jitted with the batch sharded along its first axis and the state replicated (``jax.sharding``),
and XLA's SPMD partitioner inserts the all-reduce that averages the gradients. Every loss is a mean over the whole
batch, so one update gives the single-device parameters up to float summation order. ``shard_map`` with a
``pmean`` of per-device gradients would not: DreamerV3 normalises returns by percentiles over the whole batch, and
per-device percentiles would change the update.

Inside a jitted function traced under :meth:`DataParallel.active`, :func:`shard_rows` asks XLA to split an array's
rows (the shield's ``N * m`` traces, the learner's ``B * T`` imagination starts) over the devices; elsewhere it
returns its input unchanged, so the pure functions of :mod:`ambs_verify.agents` run the same on one device.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

__all__ = ["DATA", "DataParallel", "shard_rows"]

DATA = "data"  # the mesh axis the batch and the traces are split along


def shard_rows(tree):
    """``tree`` with every array's first axis split over the active mesh's ``data`` axis (inside ``jax.jit``),
    or unchanged when no :class:`DataParallel` is active."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or DATA not in mesh.axis_names:
        return tree
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, PartitionSpec(DATA)), tree)


@dataclass(frozen=True)
class DataParallel:
    """A one-axis mesh over ``devices``: where the learner's state, batch and traces live.

    Parameters
    ----------
    devices : the devices to split over (at least two; one device needs no mesh).
    """

    devices: tuple[jax.Device, ...]

    def __post_init__(self) -> None:
        if len(self.devices) < 2:
            raise ValueError("data parallelism needs at least two devices")

    @classmethod
    def over(cls, devices: Sequence[jax.Device]) -> DataParallel | None:
        """A :class:`DataParallel` over ``devices``, or None for a single device."""
        return cls(tuple(devices)) if len(devices) > 1 else None

    @property
    def size(self) -> int:
        return len(self.devices)

    @functools.cached_property
    def mesh(self) -> Mesh:
        # Auto axes: XLA propagates the shardings through the step (explicit axes would need every op annotated)
        return jax.make_mesh((self.size,), (DATA,), axis_types=(AxisType.Auto,), devices=self.devices)

    @property
    def replicated(self) -> NamedSharding:
        """The same whole array on every device (parameters, optimiser states, keys, metrics)."""
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def rows(self) -> NamedSharding:
        """An array's first axis split over the devices (the batch's ``B``)."""
        return NamedSharding(self.mesh, PartitionSpec(DATA))

    def replicate(self, tree):
        """``tree`` copied onto every device."""
        return jax.device_put(tree, self.replicated)

    def jit_step(self, step: Callable, donate: bool = True) -> Callable:
        """``step(state, batch, rng) -> (state, metrics)`` jitted with the batch's rows split over the devices and
        everything else replicated; the state's buffers donated. Call it under :meth:`active`."""
        rep = self.replicated
        return jax.jit(
            step,
            in_shardings=(rep, self.rows, rep),
            out_shardings=(rep, rep),
            donate_argnums=(0,) if donate else (),
        )

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make the mesh the one :func:`shard_rows` splits over while a jitted function is traced and run."""
        with jax.set_mesh(self.mesh):
            yield
