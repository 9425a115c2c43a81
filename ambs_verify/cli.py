"""The ``ambs-verify`` command line: one typer app.

Errors in what the user typed end in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .envs.errors import EnvConfigError
from .estimators import EstimatorInputError, intervals, sample_size
from .reports.certify import CertifyOptions

CERTIFY = CertifyOptions()  # certify's defaults: one source for the options and the command line

try:  # typer >= 0.20 vendors click; older releases depend on it
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException

app = typer.Typer(
    name="ambs-verify",
    help="Train safe RL agents with Approximate Model-Based Shielding and certify them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bounds_app = typer.Typer(help="Confidence bounds and sample sizes for violation probabilities.", no_args_is_help=True)
app.add_typer(bounds_app, name="bounds")
envs_app = typer.Typer(help="List environments and check that they build and step.", no_args_is_help=True)
app.add_typer(envs_app, name="envs")

console = Console(soft_wrap=True)


class UserError(Exception):
    """Bad input from the command line; printed as one line, exit code 2."""


def _version(value: bool) -> None:
    if value:
        console.print(f"ambs-verify {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", metavar="", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", metavar="", help="Show the traceback of a failure (accepted anywhere on the line)."),
    ] = False,
) -> None:
    """Train safe RL agents with Approximate Model-Based Shielding and certify them."""


def number_in(interval: str):
    """A typer ``parser`` for a float option: a finite number in ``interval`` (``"(0, 1)"``, ``"[0, inf)"``), else
    click's one-line "Invalid value" naming the option, the value and the interval. The fuzz test reads
    ``.interval`` to generate values outside it."""
    from .config import in_interval

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"expects a number in {interval} (got {text!r})") from None
        if not in_interval(value, interval):
            raise typer.BadParameter(f"must be a finite number in {interval} (got {text})")
        return value

    parse.interval = interval
    return parse


def number_option(interval: str, **kwargs):
    """A typer option taking a finite number in ``interval``, which its help shows."""
    return typer.Option(parser=number_in(interval), metavar=f"<number in {interval}>", **kwargs)


PROBABILITY = "(0, 1)"
MAX_SEED = 2**32 - 1  # numpy's seeds


def _emit(payload: dict, as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(payload, indent=2))
    else:
        console.print(text)


class Theorem(StrEnum):
    one = "1"
    two = "2"


@bounds_app.command("samples")
def bounds_samples(
    eps: Annotated[float, number_option(PROBABILITY, help="Accuracy ε (total, for Theorem 2).")],
    delta: Annotated[float, number_option(PROBABILITY, help="Failure probability δ.")] = 0.01,
    one_sided: Annotated[bool, typer.Option("--one-sided", metavar="", help="One-sided (upper) accuracy.")] = False,
    theorem: Annotated[Theorem, typer.Option(help="AMBS Theorem 1 (exact model) or 2 (learned model).")] = Theorem.one,
    model_share: Annotated[float, number_option("[0, 1)", help="Theorem 2: fraction of ε left to model error.")] = 0.5,
    horizon: Annotated[int | None, typer.Option(min=1, help="Theorem 2: horizon n, to report the allowed α.")] = None,
    method: Annotated[
        str | None,
        typer.Option(help="Invert this sound bound instead: smallest m with upper ≤ expected + ε."),
    ] = None,
    expected: Annotated[
        float, number_option("[0, 1)", help="With --method: the violation rate you expect to see.")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print the full record as JSON.")] = False,
) -> None:
    """How many latent traces give an ε-accurate violation probability with probability 1 − δ."""
    if method is not None:
        if expected + eps >= 1:
            raise UserError(f"--expected + --eps must stay below 1 (got {expected:g} + {eps:g})")
        result = sample_size.samples_for_upper_bound(expected, expected + eps, delta, method)
        text = (
            f"m = {result.m}  ({result.rule}: upper bound ≤ {expected + eps:g} at expected p = {expected:g}, "
            f"δ = {delta:g})"
        )
    elif theorem is Theorem.one:
        result = sample_size.theorem1(eps, delta, one_sided)
        text = f"m = {result.m}  (Theorem 1, {'one' if one_sided else 'two'}-sided: ε = {eps:g}, δ = {delta:g})"
    else:
        result = sample_size.theorem2(eps, delta, model_share, horizon, one_sided)
        text = (
            f"m = {result.m}  (Theorem 2: ε = {eps:g} split {result.eps_model:g} model + "
            f"{result.eps_sampling:g} sampling, δ = {delta:g}"
            + (f"; needs per-step model error α ≤ {result.alpha_max:.4g}" if result.alpha_max is not None else "")
            + ")"
        )
    _emit(result.to_dict(), as_json, text)


@bounds_app.command("interval")
def bounds_interval(
    k: Annotated[int, typer.Option(min=0, help="Violations observed.")],
    m: Annotated[int, typer.Option(min=1, help="Samples (traces or episodes).")],
    delta: Annotated[float, number_option(PROBABILITY, help="Failure probability δ.")] = 0.01,
    method: Annotated[str, typer.Option(help=f"One of: {', '.join(intervals.METHODS)}.")] = "clopper-pearson",
    side: Annotated[str, typer.Option(help="upper, lower or two-sided.")] = "upper",
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print the record as JSON.")] = False,
) -> None:
    """A confidence bound on the violation probability from k violations in m samples."""
    result = intervals.interval(k, m, delta, method, side)
    soundness = "sound" if result.sound else "NOT sound (approximate coverage)"
    text = (
        f"{result.method} {side} at {1 - delta:.6g}: p̂ = {result.estimate:.6g}, "
        f"[{result.lower:.6g}, {result.upper:.6g}]  ({soundness})"
    )
    _emit(result.to_dict(), as_json, text)


@bounds_app.command("table")
def bounds_table(
    m: Annotated[int, typer.Option(min=1, help="Samples.")] = 512,
    delta: Annotated[float, number_option(PROBABILITY, help="Failure probability δ.")] = 0.01,
    k: Annotated[str, typer.Option(help="Comma-separated violation counts.")] = "0,1,5,26,51",
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print the rows as JSON.")] = False,
) -> None:
    """Every method's one-sided upper bound for a few k, with its soundness."""
    try:
        ks = [int(x) for x in k.split(",") if x.strip()]
    except ValueError as exc:
        raise UserError(f"--k must be comma-separated integers, e.g. 0,1,5 (got {k!r})") from exc
    rows = {name: intervals.interval(ks, m, delta, name, "upper") for name in intervals.METHODS}
    if as_json:
        print(json.dumps({"m": m, "delta": delta, "k": ks, "rows": [r.to_dict() for r in rows.values()]}, indent=2))
        return
    table = Table(title=f"one-sided upper bounds, m = {m}, δ = {delta:g}")
    table.add_column("method")
    table.add_column("sound")
    for kk in ks:
        table.add_column(f"k = {kk}", justify="right")
    for name, r in rows.items():
        table.add_row(name, "yes" if r.sound else "no", *(f"{u:.5f}" for u in r.upper))
    console.print(table)


@app.command(
    "train",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def train_command(ctx: typer.Context) -> None:
    """Train an agent: --configs BLOCK … then dotted overrides, e.g. --task atari_seaquest --run.steps 1e7.

    Named blocks of configs.yaml are merged left to right, then the overrides apply; the resolved config is
    saved in the run directory (--logdir), and a logdir that holds a run is resumed (--force: resume although
    the config changed in a key that matters).
    """
    from .api import train_config
    from .config import parse_train_args, summary_line

    if any(arg in ("-h", "--help") for arg in ctx.args):
        console.print(train_command.__doc__)
        return
    args = [arg for arg in ctx.args if arg != "--force"]
    if not any(arg == "--configs" or arg.startswith("--configs=") for arg in args):
        raise UserError(
            "train needs --configs: a domain block and, beyond the grid, a model size, e.g. --configs quickstart "
            "(the grid, minutes on a CPU), --configs atari small, --configs safetygym small (see configs.yaml)"
        )
    config = parse_train_args(args)
    console.print(f"training {summary_line(config)}")
    result = train_config(config, force="--force" in ctx.args).result
    state = "interrupted at" if result.interrupted else "finished at"
    resumed = f" (resumed from step {result.resumed_from})" if result.resumed_from is not None else ""
    console.print(
        f"{config.agent} on {config.task}: {state} step {result.step}{resumed}, {result.updates} updates, "
        f"{result.episodes} episodes; run directory {result.logdir}"
    )


def _parse_options(pairs: list[str]) -> dict:
    """``--set key=value`` pairs; values are read as YAML scalars/lists (``slip=0.2``, ``hazards=[[1,1]]``)."""
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set takes key=value (got {pair!r})")
        options[key.strip()] = yaml.safe_load(value)
    return options


@envs_app.command("list")
def envs_list(
    family: Annotated[
        list[str] | None, typer.Option(help="Only these families: grid, safetygym, engine, atari.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print the tasks as JSON.")] = False,
) -> None:
    """Every task name the installed simulators provide, with its safety labels."""
    from dataclasses import asdict

    from .envs.registry import list_tasks

    tasks = list_tasks(tuple(family) if family else None)
    if as_json:
        print(json.dumps([asdict(t) for t in tasks], indent=2))
        return
    table = Table(title=f"{len(tasks)} tasks")
    for column in ("task", "family", "labels", "description"):
        table.add_column(column)
    for t in tasks:
        table.add_row(t.name, t.family, ", ".join(t.labels), t.summary)
    console.print(table)


@envs_app.command("check")
def envs_check(
    task: Annotated[str, typer.Argument(help="Task name, e.g. grid, safetygym_SafetyPointGoal1-v0, atari_seaquest.")],
    steps: Annotated[int, typer.Option(min=1, help="Agent steps to run.")] = 2000,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed for the env and the policy.")] = 0,
    policy: Annotated[str, typer.Option(help="random or noop.")] = "random",
    labels: Annotated[list[str] | None, typer.Option(help="Safety labels to enable (families that have them).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Env option key=value (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print the summary as JSON.")] = False,
) -> None:
    """Run a policy on a task and report steps, episodes, return, cost, label counts and steps/s."""
    from rich.progress import Progress

    from .config import absolute_task
    from .envs.registry import make_env
    from .rollout.acting import CHECK_POLICIES, check_env

    if policy not in CHECK_POLICIES:
        raise UserError(f"unknown policy {policy!r}; accepted: {', '.join(CHECK_POLICIES)}")
    options = _parse_options(set_ or [])
    if labels:
        options["labels"] = labels
    env = make_env(absolute_task(task), **options)
    try:
        with Progress(console=Console(stderr=True), transient=True, disable=as_json) as bar:
            job = bar.add_task(f"checking {task}", total=steps)
            summary = check_env(env, steps, seed, policy, progress=lambda n: bar.update(job, completed=n))
    finally:
        env.close()
    summary = {"task": task, "seed": seed, "policy": policy, **summary}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    counts = ", ".join(f"{k} {v}" for k, v in summary["label_counts"].items()) or "none"
    console.print(
        f"{task}: {summary['steps']} steps, {summary['episodes']} episodes, return {summary['return']:.6g}, "
        f"cost {summary['cost_sum']:.6g}, labels: {counts}, {summary['steps_per_second']:.0f} steps/s"
    )


@app.command("report")
def report_command(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Run directories (the --logdir of training runs), e.g. runs/quickstart; two or more: a comparison."
        ),
    ],
    out: Annotated[
        str | None,
        typer.Option(
            help="Comparison only: directory for comparison.html/.md (default: the runs' common parent, else here)."
        ),
    ] = None,
) -> None:
    """One run: report.html (one self-contained page with plots) and report.md into the run directory.

    Two or more runs, or a sweep directory: comparison.html and comparison.md (curves with bands over seeds, a table
    of certificates).
    """
    from .api import report
    from .runs import absolute_path, sweep_runs

    if len(runs) == 1 and out is not None and sweep_runs(runs[0]) is None:
        raise UserError("--out is for a comparison of two or more runs; one run's report goes into its directory")
    html = report(*(absolute_path(r) for r in runs), out=out)
    print(html)
    print(html.with_suffix(".md"))


@app.command("sweep")
def sweep_command(
    spec: Annotated[
        str, typer.Argument(help="The sweep's YAML spec (configs, overrides, agents, tasks, seeds, grid).")
    ],
    dir: Annotated[
        str | None,
        typer.Option("--dir", help="Sweep directory (default: runs/<spec name>); started again, it resumes."),
    ] = None,
    executor: Annotated[str, typer.Option(help="local (a process pool on this machine) or ray.")] = "local",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Cells at a time (local; default: the cores) or a local Ray's CPUs.")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray only: the cluster to join (HOST:PORT or auto); default: start a local one.")
    ] = None,
    progress: Annotated[bool, typer.Option(metavar="", help="Show a progress display.")] = True,
) -> None:
    """Train every cell of a sweep (config variants × agents × tasks × overrides × seeds), each an ordinary run
    directory under the sweep directory; finished cells are skipped and the others resume. Exit 1 if a cell failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .sweep import run_sweep

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[state]}"))
    bar = Progress(*columns, console=Console(stderr=True), disable=not progress)
    rows: dict[str, int] = {}

    def show(cells: dict[str, dict]) -> None:  # first called once every cell resolved: errors print before any display
        if not rows:
            bar.start()
        for name, c in cells.items():
            if name not in rows:
                rows[name] = bar.add_task(name, total=c["steps"], state="")
            bar.update(rows[name], completed=min(c.get("step", 0), c["steps"]), state=c["status"])

    try:
        result = run_sweep(spec, dir, executor, workers, address, show)
    finally:
        if rows:
            bar.stop()
    for name, c in result.cells.items():
        detail = c.get("error") or (f"certificate {c['certificate']}" if c.get("certificate") else "")
        step = f"step {c.get('step', 0)}/{c['steps']}"
        console.print(f"{name}: {c['status']} ({step}{'; ' + detail if detail else ''})")
    console.print(f"sweep directory {result.sweep_dir}; compare its cells: ambs-verify report {result.sweep_dir}")
    if result.failed:
        raise typer.Exit(1)


@app.command("certify")
def certify_command(
    run: Annotated[str, typer.Argument(help="Run directory, e.g. runs/quickstart.")],
    checkpoints: Annotated[
        list[str] | None, typer.Option(help="latest (default), all, or checkpoint steps (several allowed).")
    ] = None,
    spec: Annotated[str, typer.Option(help="Specification 'H=<steps>,p<=<probability>'.")] = CERTIFY.spec.text,
    delta: Annotated[
        float, number_option(PROBABILITY, help="Total failure probability δ, split over the sections.")
    ] = CERTIFY.delta,
    states: Annotated[int, typer.Option(min=1, help="Visited states certified at model level.")] = CERTIFY.states,
    samples: Annotated[int, typer.Option(min=1, help="Latent traces m per state.")] = CERTIFY.samples,
    episodes: Annotated[
        int, typer.Option(min=1, help="Evaluation episodes of the shielded policy.")
    ] = CERTIFY.episodes,
    method: Annotated[str, typer.Option(help="kl, clopper-pearson, hoeffding or bernstein.")] = CERTIFY.method,
    audit_states: Annotated[
        int, typer.Option(min=0, help="States audited with real rollouts (0: no audit).")
    ] = CERTIFY.audit_states,
    rollouts: Annotated[
        str, typer.Option(help="Real rollouts per audited state, or auto: the fewest that let a safe agent pass.")
    ] = "auto",
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of every random choice (recorded; verify reuses it).")
    ] = CERTIFY.seed,
    delta_split: Annotated[
        str,
        typer.Option(help="Weights of δ's Bonferroni split over model,real,audit,deployed (four positive numbers)."),
    ] = ",".join(f"{w:g}" for w in CERTIFY.split),
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential",
            help="Draw each audited state's rollouts of the deployed agent in looks until an anytime-valid test "
            "decides it (pass or fail), at most --max-rollouts.",
        ),
    ] = False,
    max_rollouts: Annotated[
        int, typer.Option(min=1, help="--sequential: the most rollouts at one audited state (a multiple of 32).")
    ] = CERTIFY.max_rollouts,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes: several checkpoints are certified side by side, one checkpoint's audit rollouts "
            "split over them (the certificates are the same). 1: all in this process.",
        ),
    ] = 1,
    executor: Annotated[str, typer.Option(help="With --workers > 1: local (processes here) or ray.")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray only: the cluster to join (HOST:PORT or auto).")] = None,
    progress: Annotated[bool, typer.Option(metavar="", help="Show a progress bar.")] = True,
) -> None:
    """Write certificates/<step>.json for checkpoints of a run: model level, real environment, audit, verdict."""
    from .executors import check_executor
    from .reports.certify import CertifyOptions, Parallel, impossible_pass, parse_spec, select_checkpoints
    from .runs import RunDir

    check_executor(executor, workers, address)
    rundir = RunDir(run)  # made absolute: certificates record where their run is
    if not rundir.config_path.is_file():
        raise UserError(f"{run} is not a run directory (no config.yaml); accepted: the --logdir of a training run")
    options = CertifyOptions(
        spec=parse_spec(spec),
        delta=delta,
        states=states,
        samples=samples,
        episodes=episodes,
        method=method,
        audit_states=audit_states,
        rollouts=_rollouts_option(rollouts),
        seed=seed,
        split=_split_option(delta_split),
        sequential=sequential,
        max_rollouts=max_rollouts,
    )
    warning = impossible_pass(options)
    if warning:
        print(warning, file=sys.stderr)
    steps = select_checkpoints(rundir.checkpoint_steps(), checkpoints or ["latest"])
    parallel = Parallel(executor, workers, address) if workers > 1 or address is not None else None
    _certify_steps(rundir.path, steps, options, parallel, progress)


def _certify_steps(run, steps: list[int], options, parallel, progress: bool) -> None:
    """``certify``'s work: several checkpoints side by side on ``parallel``'s workers, or one after another here
    (each one's audit rollouts on the workers), a line per checkpoint."""
    from rich.progress import Progress

    from .api import certify
    from .executors import JobFailed, run_jobs

    if parallel is not None and len(steps) > 1:  # checkpoints side by side, each in one worker
        job = functools.partial(certify, options=options)
        results = run_jobs(job, [(run, step) for step in steps], parallel.executor, parallel.workers, parallel.address)
        for step, cert in zip(steps, results, strict=True):
            if isinstance(cert, JobFailed):
                raise UserError(f"checkpoint {step}: {cert.error}")
            console.print(_certificate_line(cert))
        return
    with Progress(console=Console(stderr=True), transient=True, disable=not progress) as bar:
        for step in steps:
            job = bar.add_task(f"certifying checkpoint {step}: evaluation episodes", total=options.episodes)

            def show(done, total, phase, job=job, step=step):
                bar.update(job, completed=done, total=total, description=f"certifying checkpoint {step}: {phase}")

            cert = certify(run, step, progress=show, options=options, parallel=parallel)
            bar.remove_task(job)
            console.print(_certificate_line(cert))


def _certificate_line(cert) -> str:
    """``certify``'s one line per checkpoint: the verdict and where its evidence came from."""
    doc, path = cert.document, cert.path
    v, dep, real = doc["verdict"], doc["deployed"], doc["real"]
    each = (
        f"{min(dep['sequential']['rollouts'])}-{dep['rollouts']} rollouts (sequential)"
        if dep.get("sequential")
        else f"{dep['rollouts']} rollouts"
    )
    audited = (
        f"deployed agent at {dep['states']} audited states × {each}: upper max {dep['summary']['upper_max']:.4g}"
        if dep["available"]
        else f"no audit ({dep['reason']})"
    )
    return (
        f"checkpoint {doc['provenance']['checkpoint_step']}: {v['status'].upper()} for {doc['spec']['text']} at "
        f"confidence {v['confidence']:.4g}; {audited}; episodes violating {real['violating_episodes']}/"
        f"{real['episodes']}; model level {v['model_level']}; {path}"
    )


def _split_option(value: str) -> tuple[float, ...]:
    """``--delta-split``: comma-separated numbers (how many, and that they are positive, CertifyOptions checks)."""
    try:
        return tuple(float(w) for w in value.split(","))
    except ValueError:
        raise UserError(
            f"--delta-split takes four positive weights for model,real,audit,deployed, e.g. 0.3,0.1,0.2,0.4 "
            f"(got {value!r})"
        ) from None


def _rollouts_option(value: str) -> int | None:
    """``--rollouts``: a positive integer, or ``auto`` (None)."""
    if value.strip().lower() == "auto":
        return None
    try:
        number = int(value)
    except ValueError:
        raise UserError(f"--rollouts takes a positive integer or auto (got {value!r})") from None
    if number < 1:
        raise UserError(f"--rollouts takes a positive integer or auto (got {value!r})")
    return number


@app.command("verify")
def verify_command(
    cert: Annotated[
        str,
        typer.Argument(
            help="A certificate, e.g. runs/quickstart/certificates/4000.json, or a run directory (its newest one)."
        ),
    ],
    run: Annotated[str | None, typer.Option(help="The run directory, if it moved since certification.")] = None,
) -> None:
    """Recompute a certificate from its checkpoint and seeds: exit 0 when it matches, 1 when not, 2 on bad input."""
    from .api import verify
    from .runs import RunDir, absolute_path

    if run is not None and not (absolute_path(run) / "config.yaml").is_file():
        raise UserError(f"--run {run} is not a run directory (no config.yaml); accepted: a training run's --logdir")
    path = absolute_path(cert)
    if path.is_dir():
        rundir = RunDir(path)
        steps = rundir.certificate_steps()
        if not steps:
            raise UserError(f"{cert} holds no certificates/<step>.json; accepted: a certificate or a run directory")
        path = rundir.certificate_path(steps[-1])
    result = verify(path, absolute_path(run) if run is not None else None)
    if result.ok:
        console.print(f"ok: {result.reason}")
        return
    print(f"mismatch: {result.reason}", file=sys.stderr)
    raise typer.Exit(1)


# Options that take several values after one flag, as the AMBS commands write them
# (``--labels death early-surface out-of-oxygen``); typer options take one value each.
VARIADIC_OPTIONS = ("--labels", "--checkpoints")


def expand_variadic(argv: list[str]) -> list[str]:
    """Rewrite ``--opt a b c`` as ``--opt a --opt b --opt c`` for :data:`VARIADIC_OPTIONS`.

    Values run until the next token that starts with ``-``; put positional arguments before such an option.
    """
    out: list[str] = []
    current: str | None = None
    for token in argv:
        if token.startswith("-"):
            current = token if token in VARIADIC_OPTIONS else None
            out.append(token)
        elif current is not None and out[-1] != current:
            out += [current, token]
        else:
            out.append(token)
    return out


def _train_errors() -> tuple[type[Exception], ...]:
    """Exceptions of the training stack that carry a one-line message for the user."""
    from .checkpoints import CheckpointError
    from .config import ConfigError
    from .runs import RunMismatchError

    return (ConfigError, RunMismatchError, CheckpointError)


def _run_errors() -> tuple[type[Exception], ...]:
    """Failures of a run (not of its input) whose one line says all there is to say; exit code 1."""
    from .trainers.health import TrainingDiverged

    return (TrainingDiverged,)


def _report_errors() -> tuple[type[Exception], ...]:
    """Exceptions of the certificate and report code that carry a one-line message for the user."""
    from .reports.certificate import CertificateError
    from .reports.render import ReportError

    return (CertificateError, ReportError)


def _sweep_errors() -> tuple[type[Exception], ...]:
    """Unusable sweep input: a bad spec or directory, an executor that cannot start."""
    from .executors import ExecutorError
    from .sweep import SweepError

    return (SweepError, ExecutorError)


def _input_errors() -> tuple[type[Exception], ...]:
    """Every exception whose one line names bad input: exit code 2."""
    return (*_train_errors(), *_report_errors(), *_sweep_errors())


def _one_line(exc: BaseException) -> str:
    """An exception as one line: its message's lines joined (library messages may span several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    plain = isinstance(exc, (UserError, ValueError, OSError, *_run_errors()))
    return text if plain else f"{type(exc).__name__}: {text}"


def main() -> None:
    """Console entry point: every failure ends in one line on stderr and a non-zero exit code (2: bad input; 1: a
    run that failed, such as a diverged training or a full disk); ``--debug`` anywhere shows the traceback."""
    argv = sys.argv[1:]
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        code = app(args=expand_variadic(argv), standalone_mode=False)
    except (
        UserError,
        EstimatorInputError,
        EnvConfigError,
        *_train_errors(),
        *_report_errors(),
        *_sweep_errors(),
    ) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except ClickException as exc:  # unknown option, missing value, wrong type
        message = exc.format_message()
        if message:  # empty for a group called without a command, which has already printed its help
            print(f"error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a failed run or a library error: still one line, unless --debug
        if debug:
            raise
        hint = "" if isinstance(exc, _run_errors()) else " (run again with --debug for the traceback)"
        print(f"error: {_one_line(exc)}{hint}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
