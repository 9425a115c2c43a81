"""The run directory: layout, config guard on resume, checkpoint listing, metrics and certificates."""

from __future__ import annotations

import json

import pytest

from ambs_verify.config import resolve
from ambs_verify.runs import RunDir, RunMismatchError, config_differences, holds_run


def test_layout_and_fresh_prepare(tmp_path):
    run = RunDir(tmp_path / "r")
    assert not run.exists() and not holds_run(run.path)
    config = resolve(["debug"], {"logdir": str(run.path)})
    assert run.prepare(config) is False
    assert run.exists() and run.read_config()["rssm"]["deter"] == 32
    assert run.checkpoints_dir == run.path / "checkpoints" and run.replay_dir == run.path / "replay"
    assert run.metrics_path.name == "metrics.jsonl" and run.certificate_path(300).name == "300.json"
    assert (run.report_html.name, run.report_md.name) == ("report.html", "report.md")


def test_resume_allows_run_length_changes_but_not_experiment_changes(tmp_path):
    run = RunDir(tmp_path / "r")
    base = resolve(["debug"], {"logdir": str(run.path)})
    run.prepare(base)
    run.metrics_path.write_text('{"step": 1}\n')  # the run has stepped: there is something to resume
    assert run.prepare(base.replace({"run.steps": 10**6, "run.log_every": 7})) is True
    with pytest.raises(RunMismatchError) as info:
        run.prepare(base.replace({"seed": 4, "rssm.deter": 64}))
    message = str(info.value)
    assert "rssm.deter: 32 -> 64" in message and "seed: 0 -> 4" in message and "--force" in message
    assert "\n" not in message
    assert run.prepare(base.replace({"seed": 4}), force=True) is True
    assert run.read_config()["seed"] == 4
    assert yaml_seed(run.path / "config.previous.yaml") == 0


def test_an_attempt_that_never_stepped_leaves_nothing_to_refuse(tmp_path):
    """A command rejected after writing config.yaml (before any step) must not refuse the corrected command."""
    run = RunDir(tmp_path / "r")
    base = resolve(["debug"], {"logdir": str(run.path)})
    run.prepare(base)
    assert run.prepare(base.replace({"rssm.deter": 64})) is False
    assert run.read_config()["rssm"]["deter"] == 64


def yaml_seed(path):
    import yaml

    return yaml.safe_load(path.read_text())["seed"]


def test_config_differences_lists_leaves():
    a = {"run": {"steps": 1, "train_ratio": 2}, "env": {"atari": {"labels": ["death"]}}}
    b = {"run": {"steps": 5, "train_ratio": 3}, "env": {"atari": {"labels": ("death",)}}}
    assert config_differences(a, b) == {"run.train_ratio": (2, 3)}


def test_checkpoint_listing_ignores_incomplete(tmp_path):
    run = RunDir(tmp_path)
    for step in (300, 1200, 60):
        (run.checkpoint_path(step)).mkdir(parents=True)
        (run.checkpoint_path(step) / "manifest.json").write_text(json.dumps({"step": step}))
    (run.checkpoints_dir / "900").mkdir()  # no manifest: an interrupted write
    (run.checkpoints_dir / ".tmp-1500-abc").mkdir()
    assert run.checkpoint_steps() == [60, 300, 1200] and run.latest_checkpoint() == 1200
    assert run.read_manifest(300) == {"step": 300}
    assert RunDir(tmp_path / "empty").latest_checkpoint() is None


def test_metrics_reading_skips_torn_and_non_record_lines(tmp_path):
    run = RunDir(tmp_path)
    lines = [
        {"step": 10, "time": 1.0, "episode/return": 2.0},
        {"step": 20, "time": 2.0, "train/loss": 0.5},
        {"step": 30, "time": 3.0, "episode/return": 4.0},
    ]
    # a null and a number (hand edits) are no records either; the torn last line is a crash mid-write
    run.metrics_path.write_text("\n".join(json.dumps(x) for x in lines) + '\nnull\n7\n{"step": 4')
    assert len(run.read_metrics()) == 3
    assert [r["step"] for r in run.read_metrics("episode/")] == [10, 30]
    assert run.scalar_series("episode/return") == ([10, 30], [2.0, 4.0])


def test_certificates_round_trip(tmp_path):
    run = RunDir(tmp_path)
    run.write_certificate(600, {"verdict": "pass", "delta": 0.01})
    run.write_certificate(300, {"verdict": "fail"})
    assert run.certificate_steps() == [300, 600]
    assert run.read_certificate(600) == {"verdict": "pass", "delta": 0.01}
