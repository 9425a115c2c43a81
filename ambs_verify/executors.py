"""Where independent jobs run: a local pool of fresh processes, or Ray tasks on a cluster (or a local one).

A job is a call ``fn(*args)`` of a module-level function whose arguments and result pickle. Both executors run each
job in a process of its own that ends with it (``max_tasks_per_child=1`` / Ray's ``max_calls=1``): a JAX process
keeps its compiled programs and device memory for life, so one process per job keeps jobs from sharing either, and
a job's failure cannot leave a worker in a bad state for the next.

- ``local`` (the default): :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method (a
  forked JAX process is unsafe), ``workers`` processes at a time (default: the machine's cores). On Linux each
  worker asks the kernel to kill it when the process that started it dies (``PR_SET_PDEATHSIG``), so a sweep killed
  with ``kill -9`` leaves no job running behind it.
- ``ray``: ``ray.init(address)`` joins an existing cluster (``ray start --head`` on one machine, ``ray start
  --address HEAD:6379`` on the others), or starts a local one when ``address`` is None; each job is a task with one
  CPU. Every machine needs ambs-verify installed, and the paths the jobs write must be on a filesystem they share.

:func:`run_jobs` returns the results in job order; a job that raised (or whose process died) gives a
:class:`JobFailed` holding one line, and the other jobs go on.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["EXECUTORS", "ExecutorError", "JobFailed", "check_executor", "default_workers", "run_jobs"]

EXECUTORS = ("local", "ray")
POLL_S = 1.0  # how often the caller's ``poll`` runs while jobs are in flight (progress displays)


class ExecutorError(ValueError):
    """An executor that cannot start (unknown name, Ray missing or unreachable); the message is one line."""


@dataclass(frozen=True)
class JobFailed:
    """What a job that raised, or whose process died, returns: the error in one line."""

    error: str


def default_workers() -> int:
    """Processes at a time for the local executor: one per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_executor(executor: str, workers: int | None = None, address: str | None = None) -> None:
    """One-line :class:`ExecutorError` for an unknown executor, ``workers < 1`` or an address without Ray."""
    if executor not in EXECUTORS:
        raise ExecutorError(f"unknown executor {executor!r}; accepted: {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ExecutorError(f"--workers must be >= 1 (got {workers})")
    if address is not None and executor != "ray":
        raise ExecutorError("--address names a Ray cluster: use it with --executor ray")


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    on_done: Callable[[int, Any], None] | None = None,
    poll: Callable[[], None] | None = None,
) -> list[Any]:
    """Run ``fn(*job)`` for every job of ``jobs`` on ``executor``; the results (or :class:`JobFailed`) in job order.

    Parameters
    ----------
    fn : module-level function (pickled by reference)
    jobs : argument tuples
    executor : ``"local"`` or ``"ray"``
    workers : jobs at a time (local: processes, default :func:`default_workers`; Ray: the CPUs of a local cluster it
        starts, ignored when joining one)
    address : Ray only: the cluster to join (``HOST:PORT`` or ``auto``); None starts a local one
    on_done : called as ``on_done(index, result)`` as each job finishes, in the order they finish
    poll : called about every second while jobs run
    """
    check_executor(executor, workers, address)
    results: list[Any] = [None] * len(jobs)

    def finished(index: int, result: Any) -> None:
        results[index] = result
        if on_done is not None:
            on_done(index, result)

    if jobs:
        run = _run_local if executor == "local" else _run_ray
        run(fn, jobs, workers, address, finished, poll or (lambda: None))
    return results


def _die_with_parent() -> None:
    """Worker initializer: on Linux, SIGKILL this worker when the process that started it dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_local(fn, jobs, workers, address, finished, poll) -> None:
    pool = cf.ProcessPoolExecutor(
        max_workers=min(workers or default_workers(), len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with_parent,
        max_tasks_per_child=1,
    )
    with pool:
        pending = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        while pending:
            done, _ = cf.wait(pending, timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                try:
                    finished(index, future.result())
                except Exception as exc:  # the job raised, or its process died (BrokenProcessPool)
                    finished(index, JobFailed(_one_line(exc)))
            poll()


def _ray(address: str | None, workers: int | None):
    """Ray, initialised: joined to ``address`` or a local cluster of ``workers`` CPUs."""
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "--executor ray needs Ray: pip install 'ambs-verify[ray]' (make install installs it)"
        ) from None
    if not ray.is_initialized():
        try:
            if address is None:
                ray.init(num_cpus=workers or default_workers(), include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except ConnectionError as exc:
            raise ExecutorError(f"cannot reach the Ray cluster at {address}: {_one_line(exc)}") from None
    return ray


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """A Ray task's body: ``fn`` travels as an argument, so any picklable callable works (builtins too)."""
    return fn(*args)


def _run_ray(fn, jobs, workers, address, finished, poll) -> None:
    ray = _ray(address, workers)
    task = ray.remote(num_cpus=1, max_calls=1, max_retries=0)(_call)
    pending = {task.remote(fn, *job): i for i, job in enumerate(jobs)}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
        for ref in done:
            index = pending.pop(ref)
            try:
                finished(index, ray.get(ref))
            except Exception as exc:  # RayTaskError wraps the job's exception; a dead worker raises too
                cause = getattr(exc, "cause", None)
                finished(index, JobFailed(_one_line(cause if isinstance(cause, BaseException) else exc)))
        poll()
