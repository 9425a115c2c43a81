"""The Python API: train, certify, verify, report and act with a trained agent from a script or a notebook.

The command line is a thin layer over these functions (``ambs-verify train`` is :func:`train`, ``certify`` is
:func:`certify` per checkpoint, ``verify`` is :func:`verify`, ``report`` is :func:`report`), and they return the
records the command line writes: a :class:`Run` is a run directory, a :class:`Certificate` is the sealed JSON
document of ``certificates/<step>.json`` (with its JSON round trip), a
:class:`~ambs_verify.reports.verify.VerifyResult` is what ``verify`` prints. :func:`load_agent` gives a trained
agent that steps any gymnasium environment of its run's task one observation at a time, exposing the shield's
per-step estimate p̂ and whether it overrode the task policy.

Importing this module (and so ``import ambs_verify``) imports no JAX, MuJoCo or ALE: each function imports what it
uses when it is called.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .config import Config
    from .reports.certify import CertifyOptions, Parallel
    from .reports.verify import VerifyResult
    from .rollout.restore import RestoredAgent
    from .trainers.loop import TrainResult

__all__ = ["Certificate", "LoadedAgent", "Run", "certify", "load_agent", "report", "train", "verify"]

PathLike = str | Path


@dataclass(frozen=True)
class Run:
    """A training run: its directory (``config.yaml``, ``checkpoints/``, ``metrics.jsonl``, ``certificates/``).

    Attributes
    ----------
    path : Path
        The run directory (absolute).
    result : TrainResult or None
        Where the :func:`train` call that returned this run ended (step, updates, episodes, whether it resumed or
        was interrupted); None for a run opened with :meth:`open`.
    """

    path: Path
    result: TrainResult | None = field(default=None, repr=False, compare=False)

    @classmethod
    def open(cls, path: PathLike) -> Run:
        """The run in directory ``path``; a one-line ``ValueError`` when it holds no run."""
        from .runs import RunDir

        run = RunDir(path)
        if not run.config_path.is_file():
            raise ValueError(f"{path} is not a run directory (no config.yaml); accepted: the logdir of a training run")
        return cls(run.path)

    @property
    def config(self) -> Config:
        """The run's resolved config (its ``config.yaml``)."""
        from .config import Config

        return Config.from_yaml((self.path / "config.yaml").read_text(encoding="utf-8"))

    @property
    def checkpoints(self) -> list[int]:
        """The steps of the run's checkpoints, oldest first."""
        from .runs import RunDir

        return RunDir(self.path).checkpoint_steps()

    @property
    def certificates(self) -> list[Certificate]:
        """The run's certificates, oldest checkpoint first."""
        from .reports.certificate import certificate_paths

        return [Certificate.read(path) for _, path in certificate_paths(self.path)]


def _run_path(run: Run | PathLike) -> Path:
    from .runs import absolute_path

    return run.path if isinstance(run, Run) else absolute_path(run)  # a non-run fails where it is read, in one line


def _dotted(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"run": {"steps": 300}, "seed": 1}`` -> ``{"run.steps": 300, "seed": 1}`` (dotted keys pass through)."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            out.update(_dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def train(configs: str | Sequence[str], *, force: bool = False, **overrides: Any) -> Run:
    """Train (or resume) the run ``configs`` and ``overrides`` describe; ``ambs-verify train``.

    Parameters
    ----------
    configs : str or sequence of str
        Named blocks of ``configs.yaml``, merged left to right (e.g. ``"quickstart"``, ``["atari", "small"]``).
    force : bool
        Resume a run directory although its stored config differs in a key that matters.
    **overrides
        Config keys: top-level ones as keywords (``seed=1``, ``logdir="runs/a"``, ``agent="dreamer"``), a block's
        keys as a mapping (``run={"steps": 2000}``) or dotted (``**{"run.steps": 2000}``).

    Returns
    -------
    Run
        The run directory, with ``result`` saying where training ended.

    Raises
    ------
    ConfigError
        One line, for an unknown block or key or a value outside what the key accepts.
    """
    from .config import resolve

    blocks = [configs] if isinstance(configs, str) else list(configs)  # "quickstart" is one block, not ten
    return train_config(resolve(blocks, _dotted(overrides)), force=force)


def train_config(config: Config, force: bool = False) -> Run:
    """:func:`train` from a resolved config (what the command line parses)."""
    from .rollout.agents import build_agent
    from .rollout.runtime import configure_jax, data_parallel
    from .trainers.loop import train as train_loop

    configure_jax(config, split=True)
    result = train_loop(config, build_agent(config, data_parallel(config)), force=force)
    return Run(result.logdir, result)


@dataclass(frozen=True)
class Certificate:
    """A safety certificate: the sealed, schema-valid JSON document ``certify`` writes (``document``).

    ``status`` is ``pass``, ``fail`` or ``inconclusive`` for the deployed agent against the specification;
    ``statement`` says what is guaranteed, in words. :meth:`to_json` gives the file's exact text and
    :meth:`from_json` reads it back (validated).
    """

    document: dict[str, Any]
    path: Path | None = None

    @property
    def status(self) -> str:
        return self.document["verdict"]["status"]

    @property
    def statement(self) -> str:
        return self.document["verdict"]["statement"]

    @property
    def step(self) -> int:
        """The certified checkpoint's step."""
        return int(self.document["provenance"]["checkpoint_step"])

    def to_json(self) -> str:
        """The certificate's text, as written to ``certificates/<step>.json`` (keys sorted, indent 2)."""
        return json.dumps(self.document, indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, path: Path | None = None) -> Certificate:
        """Parse and validate a certificate's text; a one-line ``CertificateError`` for an invalid one."""
        from .reports.certificate import validate_certificate

        doc = json.loads(text)
        validate_certificate(doc, path)
        return cls(doc, path)

    @classmethod
    def read(cls, path: PathLike) -> Certificate:
        """Read and validate ``certificates/<step>.json``."""
        from .reports.certificate import read_certificate
        from .runs import absolute_path

        return cls(read_certificate(path), absolute_path(path))


def certify(
    run: Run | PathLike,
    step: int | None = None,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    options: CertifyOptions | None = None,
    parallel: Parallel | None = None,
    **settings: Any,
) -> Certificate:
    """Certify checkpoint ``step`` (default: the newest) of ``run`` and write ``certificates/<step>.json``.

    Parameters
    ----------
    run : Run or path
    step : int, optional
    progress : callable, optional
        ``progress(done, total, phase)`` as evaluation episodes and audits finish.
    options : CertifyOptions, optional
        All the options at once (what the command line builds); or give them one by one:
    **settings
        :class:`~ambs_verify.reports.certify.CertifyOptions` fields, as ``ambs-verify certify`` takes them:
        ``spec="H=30,p<=0.1"``, ``delta=0.01``, ``states``, ``samples``, ``episodes``, ``method``,
        ``audit_states``, ``rollouts`` (an int, or ``"auto"``), ``seed``, ``split``, ``sequential`` (True: each
        audited state's rollouts until a confidence sequence decides it), ``max_rollouts``.
    parallel : Parallel, optional
        Split the audit rollouts over worker processes (:class:`~ambs_verify.reports.certify.Parallel`: executor,
        workers, address); the certificate is the same.

    Returns
    -------
    Certificate
    """
    from .reports.certificate import write_certificate
    from .reports.certify import CertifyOptions, certify_checkpoint, parse_spec
    from .runs import RunDir

    rundir = RunDir(_run_path(run))
    accepted = [f.name for f in dataclasses.fields(CertifyOptions)]
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ValueError(f"unknown certify option(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    if isinstance(settings.get("spec"), str):
        settings["spec"] = parse_spec(settings["spec"])
    if settings.get("rollouts") == "auto":
        settings["rollouts"] = None
    if options is None:
        options = CertifyOptions(**settings)
    elif settings:
        raise ValueError("certify takes options= or the options one by one, not both")
    if step is None:
        steps = rundir.checkpoint_steps()
        if not steps:
            raise ValueError(f"{rundir.path} has no checkpoint to certify yet")
        step = steps[-1]
    doc = certify_checkpoint(rundir.path, step, options, progress=progress, parallel=parallel)
    return Certificate.read(write_certificate(rundir.certificate_path(step), doc))


def verify(certificate: Certificate | PathLike, run: Run | PathLike | None = None) -> VerifyResult:
    """Recompute ``certificate`` from its checkpoint and seeds; ``ambs-verify verify``.

    ``run`` is the run directory if it moved since certification. The result's ``ok`` is True when every field
    matches and the seal holds; ``reason`` names the first field that differs otherwise.
    """
    from .reports.verify import verify_certificate

    if isinstance(certificate, Certificate):
        if certificate.path is None:
            raise ValueError("verify needs the certificate's file: Certificate.read(path), or the path itself")
        certificate = certificate.path
    return verify_certificate(Path(certificate), None if run is None else _run_path(run))


def report(*runs: Run | PathLike, out: PathLike | None = None) -> Path:
    """``report.html`` of one run (written into it), or ``comparison.html`` of several (into ``out``, default:
    their common parent); the HTML's path. A Markdown twin is written beside it. A sweep directory
    (``ambs-verify sweep``) stands for its cells' runs, and their comparison goes into it."""
    from .reports.compare import default_out, render_comparison
    from .reports.render import render_report
    from .runs import absolute_path, sweep_runs

    paths = [_run_path(r) for r in runs]
    if not paths:
        raise ValueError("report needs at least one run")
    cells = sweep_runs(paths[0]) if len(paths) == 1 else None
    if cells is not None:
        if len(cells) < 2:
            raise ValueError(f"the sweep {paths[0]} has {len(cells)} trained cell(s); a comparison needs two or more")
        return render_comparison(cells, absolute_path(out) if out is not None else paths[0])[0]
    if len(paths) == 1:
        if out is not None:
            raise ValueError("out is for a comparison of two or more runs; one run's report goes into its directory")
        return render_report(paths[0])[0]
    return render_comparison(paths, absolute_path(out) if out is not None else default_out(paths))[0]


class LoadedAgent:
    """A trained agent acting in one gymnasium environment of its run's task, one observation at a time.

    ``act(obs)`` returns the action for the environment's last observation; call :meth:`reset` after each
    ``env.reset()``. After each ``act``, ``p_hat`` is the shield's estimate that the task policy violates within
    the shield's horizon and ``override`` whether the safe policy acted instead (both None for an agent without a
    shield, or when acting ``shielded=False``). ``env_id`` and ``env_options`` give the environment as the agent
    trained on it: ``gymnasium.make(agent.env_id, **agent.env_options)`` (``make_env()`` also stacks a model-free
    baseline's Atari frames, as its training did).
    """

    def __init__(self, restored: RestoredAgent, shielded: bool, seed: int) -> None:
        import jax

        from .config import env_options
        from .envs.gym_ids import gym_id

        self.restored = restored
        self.mode = "deployed" if shielded or not restored.has_model else "task"
        self._policy = restored.policy(self.mode)
        self._key = jax.random.PRNGKey(seed)
        self.env_id, implied = gym_id(restored.config.task)
        self.env_options = {**implied, **env_options(restored.config)}
        self.make_env = restored.make_env  # also applies a baseline's Atari frame stack
        self.p_hat: float | None = None
        self.override: bool | None = None
        self.reset()

    @property
    def step(self) -> int:
        """The checkpoint's step."""
        return self.restored.step

    def reset(self) -> None:
        """Start a new episode (the agent's memory starts afresh at the next observation)."""
        self._carry, self._first = None, True

    def act(self, obs: Any) -> Any:
        """The action for observation ``obs``.

        Parameters
        ----------
        obs : array or dict of arrays
            One observation as the environment returns it, unbatched: e.g. ``(36,)`` float32 (the grid's one-hot
            cell), ``(64, 64, 3)`` uint8 (an image), or a dict of such for ``observation="both"``.

        Returns
        -------
        int or ndarray
            An ``int`` for a ``Discrete`` action space, a ``(A,)`` array of the space's dtype for a ``Box``.

        Notes
        -----
        Afterwards ``p_hat`` (a probability in [0, 1]) is the shield's estimate, from its ``m`` imagined traces,
        that the task policy violates within the shield's horizon from this state, and ``override`` whether the
        safe policy's action was returned instead of the task policy's.
        """
        import jax
        import numpy as np

        keys = self.restored.obs_keys
        batch = {k: np.asarray(obs[k])[None] for k in keys} if isinstance(obs, Mapping) else {keys[0]: obs[None]}
        batch |= {"is_first": np.array([self._first]), "is_last": np.array([False])}
        self._key, key = jax.random.split(self._key)
        action, self._carry, extras = self._policy(batch, self._carry, key)
        self._first = False
        self.p_hat = float(extras["p_hat"][0]) if "p_hat" in extras else None
        self.override = bool(extras["override"][0]) if "override" in extras else None
        return self._env_action(np.asarray(action))

    def _env_action(self, action: np.ndarray) -> Any:
        import gymnasium as gym

        from .rollout.driver import env_actions

        space = self.restored.action_space
        first = env_actions(space, action)[0]
        return int(first) if isinstance(space, gym.spaces.Discrete) else first.astype(space.dtype)


def load_agent(run: Run | PathLike, step: int | None = None, *, shielded: bool = True, seed: int = 0) -> LoadedAgent:
    """The agent of checkpoint ``step`` (default: the newest) of ``run``.

    Parameters
    ----------
    shielded : bool
        True: the deployed agent (for AMBS the task policy under the shield, with its safe policy); False: the
        task policy alone (the DreamerV3 agents). A model-free baseline acts with its evaluation policy either way.
    seed : int
        Seeds the agent's own sampling.
    """
    from .rollout.restore import restore_agent

    path = _run_path(run)
    if step is None:
        steps = Run(path).checkpoints
        if not steps:
            raise ValueError(f"{path} has no checkpoint yet")
        step = steps[-1]
    return LoadedAgent(restore_agent(path, step), shielded, seed)
