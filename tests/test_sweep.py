"""Sweeps and executors: specs into cells, one-line errors, a local pool of fresh processes whose failures are
recorded, a failing cell beside finished ones, and the sweep directory as a comparison report.

The whole-sweep tests (`end_to_end`, run by `make test-learning`) train real debug cells: on the local pool with a
``kill -9`` of the sweep midway and a restart, and on a real local Ray instance."""

import json
import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_cli import run  # the same in-process CLI runner

from ambs_verify.config import resolve
from ambs_verify.executors import ExecutorError, JobFailed, run_jobs
from ambs_verify.runs import RunDir
from ambs_verify.sweep import SweepError, parse_spec, prepare_dir, run_cell
from benchmarks.sweep_parallel import PLUMBING as FAST  # test_train_cli's FAST, as a sweep's overrides


def write_spec(path: Path, **spec) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_spec_crosses_variants_agents_tasks_grid_and_seeds():
    spec = parse_spec(
        {
            "configs": [["quickstart"], ["quickstart", "penl"]],
            "overrides": {"run.steps": 300},
            "agents": ["ambs", "dreamer"],
            "grid": {"shield.eps": [0.01, 0.05]},
            "seeds": [0, 1],
        }
    )
    cells = spec.cells
    assert len(cells) == 2 * 2 * 2 * 2
    assert cells[0].name == "quickstart_ambs_shield.eps=0.01_seed0"
    assert cells[-1].name == "quickstart+penl_dreamer_shield.eps=0.05_seed1"
    assert cells[-1].configs == ("quickstart", "penl")
    assert cells[-1].overrides == {"run.steps": 300, "agent": "dreamer", "seed": 1, "shield.eps": 0.05}
    assert [c.name for c in parse_spec({"configs": ["grid"], "seeds": [3]}).cells] == ["seed3"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"configs": ["grid"], "seed": [1]}, "unknown key(s) seed; accepted: configs, overrides"),
        ({"configs": "grid"}, "configs must be a list of names"),
        ({"configs": ["grid"], "seeds": [0, "one"]}, "seeds must be a list of integers"),
        ({"configs": ["grid"], "grid": {"seed": 3}}, "grid must map dotted keys to non-empty lists"),
        ({"configs": ["grid"], "seeds": [1, 1]}, "two cells would share a run directory"),
        ([1, 2], "a sweep spec is a YAML mapping"),
    ],
)
def test_bad_specs_are_one_line(data, fragment):
    with pytest.raises(SweepError) as info:
        parse_spec(data)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_every_cell_is_resolved_before_anything_runs_and_the_cli_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    spec = write_spec(tmp_path / "s.yaml", configs=["quickstart"], grid={"shield.eps": [0.01, 2.0]})
    code, _, err = run(["sweep", str(spec), "--dir", str(tmp_path / "sw"), "--no-progress"], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: cell shield.eps=2.0: ") and err.count("\n") == 1
    assert not (tmp_path / "sw").exists()  # nothing written
    code, _, err = run(["sweep", str(tmp_path / "none.yaml")], monkeypatch, capsys)
    assert code == 2 and err == f"error: no sweep spec at {tmp_path / 'none.yaml'}\n"
    code, _, err = run(["sweep", str(spec), "--executor", "slurm"], monkeypatch, capsys)
    assert code == 2 and err == "error: unknown executor 'slurm'; accepted: local, ray\n"


def test_a_directory_holding_another_sweep_or_other_files_is_refused(tmp_path):
    first = write_spec(tmp_path / "a.yaml", configs=["quickstart"], seeds=[0])
    other = write_spec(tmp_path / "b.yaml", configs=["quickstart"], seeds=[1])
    prepare_dir(first, tmp_path / "sw")
    prepare_dir(first, tmp_path / "sw")  # the same sweep again: resumed
    with pytest.raises(SweepError, match=r"holds another sweep \(its sweep.yaml differs from"):
        prepare_dir(other, tmp_path / "sw")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="is not empty and holds no sweep"):
        prepare_dir(first, tmp_path / "busy")


def test_the_local_pool_runs_each_job_in_order_and_records_failures():
    seen = []
    jobs = [(1.0, 2.0), (1.0, 0.0), (3.0, 4.0)]
    results = run_jobs(operator.truediv, jobs, "local", workers=2, on_done=lambda i, r: seen.append(i))
    assert results[0] == 0.5 and results[2] == 0.75
    assert results[1] == JobFailed("ZeroDivisionError: float division by zero")
    assert sorted(seen) == [0, 1, 2]
    with pytest.raises(ExecutorError, match="--address names a Ray cluster"):
        run_jobs(operator.truediv, jobs, "local", address="10.0.0.1:6379")
    with pytest.raises(ExecutorError, match="--workers must be >= 1"):
        run_jobs(operator.truediv, jobs, "local", workers=0)


def test_a_failing_cell_is_recorded_in_one_line_with_its_attempt(tmp_path):
    """A cell whose config resolves but whose environment cannot be built: a failed record, not an exception."""
    out = run_cell(str(tmp_path), "bad", ("quickstart", "debug"), {"env.grid.hazards": [[99, 99]]}, None)
    assert out["status"] == "failed" and out["error"] == "--env.grid: cell (99, 99) lies outside the 6×6 grid"
    records = [json.loads(line) for line in (tmp_path / "attempts" / "bad.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records] == ["start", "end"] and records[0]["checkpoint"] is None
    assert records[1]["status"] == "failed"


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        return "\tZ" not in Path(f"/proc/{pid}/status").read_text().split("State:")[1].splitlines()[0]
    except (FileNotFoundError, IndexError):
        return False


def _attempts(root: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (root / "attempts" / f"{name}.jsonl").read_text().splitlines()]


@pytest.mark.end_to_end
def test_a_sweep_killed_midway_finishes_every_cell_without_training_one_twice(tmp_path):
    """Three debug cells (one failing: its only checkpoint is damaged) on two local workers, certified as they finish;
    ``kill -9`` of the sweep once
    a cell has a checkpoint, then the same command again: every good cell ends at its last step, a finished cell is
    not started again, an unfinished one resumes from its newest checkpoint, the failing one is recorded, and no
    worker of the killed sweep outlives it. Then ``report SWEEP_DIR`` compares the cells."""
    certify = {"states": 4, "samples": 16, "episodes": 2, "audit_states": 2, "rollouts": 8, "spec": "H=5,p<=0.5"}
    raw = {"configs": ["quickstart", "debug"], "overrides": {**FAST, "run.steps": 400}, "seeds": [0, 1, 2]}
    spec = write_spec(tmp_path / "s.yaml", **raw, certify=certify)
    root = tmp_path / "sw"
    root.mkdir()
    (root / "sweep.yaml").write_text(spec.read_text())
    damaged = RunDir(root / "cells" / "seed2")  # its run holds one checkpoint, damaged: it fails when it resumes
    damaged.write_config(resolve(raw["configs"], {**raw["overrides"], "seed": 2, "logdir": str(damaged.path)}))
    (damaged.checkpoints_dir / "100").mkdir(parents=True)
    (damaged.checkpoints_dir / "100" / "manifest.json").write_text("{}")
    argv = [sys.executable, "-m", "ambs_verify", "sweep", str(spec), "--dir", str(root), "--workers", "2"]
    sweep = subprocess.Popen([*argv, "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cells = root / "cells"
    deadline = time.time() + 300
    runs = [RunDir(cells / name) for name in ("seed0", "seed1")]
    while not any(r.checkpoints_dir.is_dir() and r.checkpoint_steps() for r in runs) and time.time() < deadline:
        assert sweep.poll() is None, sweep.stdout.read().decode()
        time.sleep(0.5)
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait()
    pids = {r["pid"] for p in (root / "attempts").glob("*.jsonl") for r in _attempts(root, p.stem)}
    deadline = time.time() + 10
    while any(map(_alive, pids)) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, pids))  # the workers died with the sweep (PR_SET_PDEATHSIG)
    before = {r.path.name: r.checkpoint_steps() if r.checkpoints_dir.is_dir() else [] for r in runs}
    done = subprocess.run([*argv, "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr  # one cell failed
    status = json.loads((root / "status.json").read_text())["cells"]
    bad = status["seed2"]
    assert bad["status"] == "failed" and bad["error"].endswith("cells/seed2/checkpoints/100/state not found.")
    resumed = 0
    for name in ("seed0", "seed1"):
        assert status[name]["status"] in ("done", "skipped") and status[name]["step"] >= 400
        assert (cells / name / "certificates" / "400.json").is_file()
        starts = [r for r in _attempts(root, name) if r["event"] == "start"]
        ends = [r for r in _attempts(root, name) if r["event"] == "end"]
        last = max(before.get(name, []), default=None)
        if status[name]["status"] == "skipped":  # finished before the kill: never started again
            assert len(starts) == len(ends) == 1
        else:  # resumed from its newest checkpoint, not from scratch
            assert starts[-1]["checkpoint"] == last and ends[-1]["resumed_from"] == last
            resumed += last is not None
    assert resumed >= 1, (before, status, [_attempts(root, n) for n in ("seed0", "seed1")])  # some cell resumed
    report = subprocess.run(
        [sys.executable, "-m", "ambs_verify", "report", str(root)], capture_output=True, text=True, timeout=300
    )
    assert report.returncode == 0, report.stderr
    assert (root / "comparison.html").is_file() and "seed1" in (root / "comparison.md").read_text()


@pytest.mark.end_to_end
def test_a_two_cell_sweep_on_a_real_local_ray(tmp_path):
    """`--executor ray` with no address starts a local Ray of two CPUs; its tasks train the cells as the pool would."""
    pytest.importorskip("ray")
    spec = write_spec(
        tmp_path / "s.yaml", configs=["quickstart", "debug"], overrides={**FAST, "run.steps": 200}, seeds=[0, 1]
    )
    root = tmp_path / "sw"
    argv = [sys.executable, "-m", "ambs_verify", "sweep", str(spec), "--dir", str(root), "--executor", "ray"]
    done = subprocess.run([*argv, "--workers", "2", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads((root / "status.json").read_text())["cells"]
    assert {n: c["status"] for n, c in status.items()} == {"seed0": "done", "seed1": "done"}
    assert all(c["step"] == 200 for c in status.values())
    failed = run_jobs(operator.truediv, [(1.0, 0.0), (1.0, 4.0)], "ray", workers=2)
    assert failed == [JobFailed("ZeroDivisionError: float division by zero"), 0.25]
