"""`ambs-verify train` end to end on the built-in grid with the debug AMBS agent: trains, logs, checkpoints,
resumes, and rejects bad keys in one line."""

import json

import pytest
from test_cli import run  # the same in-process CLI runner

FAST = ["--shield_samples", "16", "--imag_horizon", "5", "--envs.amount", "2", "--run.train_fill", "60"]
FAST += ["--run.log_every", "50", "--run.save_every", "100", "--replay.batch_size", "4", "--replay.batch_length", "8"]
# Plumbing, not learning (tests add the "debug" block after "quickstart" for the debug model size): the debug
# schedule's update rate and a short shield look-ahead.
FAST += ["--run.train_ratio", "32", "--shield_horizon", "5"]


def test_train_logs_checkpoints_and_resumes(tmp_path, monkeypatch, capsys):
    logdir = tmp_path / "run"
    args = ["train", "--configs", "quickstart", "debug", *FAST, "--logdir", str(logdir), "--seed", "1"]
    code, out, err = run([*args, "--run.steps", "120"], monkeypatch, capsys)
    assert code == 0, err
    assert "finished at step 120" in out
    assert (logdir / "config.yaml").exists() and (logdir / "checkpoints" / "120" / "manifest.json").exists()
    records = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    shielded = [r for r in records if "policy/p_hat_mean" in r]
    assert shielded, "the shield's p̂ is logged once the agent acts"
    assert any("train/wm/loss" in r or any(k.startswith("train/wm/") for k in r) for r in records)

    code, out, err = run([*args, "--run.steps", "200"], monkeypatch, capsys)
    assert code == 0, err
    assert "resumed from step 120" in out and "finished at step 200" in out


def test_unshielded_baseline_logs_no_shield(tmp_path, monkeypatch, capsys):
    logdir = tmp_path / "dreamer"
    args = [
        "train",
        "--configs",
        "quickstart",
        "debug",
        *FAST,
        "--agent",
        "dreamer",
        "--run.steps",
        "100",
        "--logdir",
        str(logdir),
    ]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 0, err
    text = (logdir / "metrics.jsonl").read_text()
    assert "p_hat" not in text and "override" not in text


PLPG = ["--penalty_coeff", "0.8", "--plpg", "True", "--normalise_ret", "False", "--penl_critic_type", "vfunction"]


@pytest.mark.parametrize(
    ("extra", "metric"),
    [
        (PLPG, "train/task/plpg_weight_mean"),
        (["--agent", "lagrangian", "--cost_threshold", "0.5"], "train/task/lagrange_multiplier"),
    ],
    ids=["penl-plpg", "lagrangian"],
)
def test_penalty_and_lagrangian_variants_train(extra, metric, tmp_path, monkeypatch, capsys):
    """The seeds' flag combinations are accepted and their shaping metrics reach metrics.jsonl."""
    logdir = tmp_path / "variant"
    args = ["train", "--configs", "quickstart", "debug", *FAST, *extra, "--run.steps", "80", "--run.log_every", "80"]
    code, _, err = run([*args, "--logdir", str(logdir)], monkeypatch, capsys)
    assert code == 0, err
    keys = set().union(*(json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()))
    assert metric in keys
    assert ("train/task/penl_critic_loss" in keys) == ("--penalty_coeff" in extra)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--run.stepz", "5"], "run.stepz"),
        (["--configs", "nope"], "nope"),
        (["--agent", "dreamer", "--plpg", "True"], "plpg needs the safe policy"),
        (["--penl_critic_type", "qfunction"], "penl_critic_type"),
    ],
)
def test_bad_train_input_is_one_line(extra, fragment, tmp_path, monkeypatch, capsys):
    code, _, err = run(
        ["train", "--configs", "quickstart", "--logdir", str(tmp_path / "x"), *extra], monkeypatch, capsys
    )
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err
