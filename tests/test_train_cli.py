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


@pytest.mark.end_to_end  # three trainings (81 s): with the learning tests, to keep the suite under 10 minutes
def test_train_logs_checkpoints_resumes_and_stops_when_it_diverges(tmp_path, monkeypatch, capsys):
    from ambs_verify import checkpoints as checkpoint

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

    # A learning rate of 1e30 turns the world model's parameters non-finite within a few updates: the run stops
    # in one line and keeps its last good checkpoint intact.
    diverging = ["--run.steps", "400", "--model_opt.lr", "1e30", "--force", "--run.progress", "False"]
    code, out, err = run([*args, *diverging], monkeypatch, capsys)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "training diverged at step" in err and "is nan" in err
    assert "the last good checkpoint is step 200" in err
    assert sorted(int(p.name) for p in (logdir / "checkpoints").iterdir() if p.name.isdigit()) == [120, 200]
    checkpoint.verify(logdir / "checkpoints" / "200")
    assert checkpoint.first_non_finite(checkpoint.load(logdir / "checkpoints" / "200").tree) is None


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


def test_train_without_configs_says_which_blocks_to_choose(tmp_path, monkeypatch, capsys):
    code, _, err = run(["train", "--logdir", str(tmp_path / "x")], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "--configs quickstart" in err
    assert not (tmp_path / "x").exists()


def test_a_rejected_command_leaves_nothing_that_refuses_the_corrected_one(tmp_path, monkeypatch, capsys):
    logdir = tmp_path / "x"
    base = ["train", "--configs", "quickstart", "debug", *FAST, "--logdir", str(logdir), "--run.steps", "20"]
    code, _, err = run([*base, "--env.grid.max_steps", "1.5"], monkeypatch, capsys)
    assert code == 2 and "max_steps" in err and err.count("\n") == 1
    assert not (logdir / "config.yaml").exists()
    code, out, err = run(base, monkeypatch, capsys)
    assert code == 0, err
    assert out.startswith("training ambs on grid: size debug") and "finished at step 20" in out
