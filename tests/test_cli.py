"""The command line: the documented `bounds` figures, JSON output, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from ambs_verify import __version__
from ambs_verify.cli import main


def run(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ambs-verify", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], 328),
        (["--one-sided"], 285),
        (["--theorem", "2"], 1309),
        (["--method", "kl", "--expected", "0.01"], 65),
    ],
)
def test_samples(extra, expected, monkeypatch, capsys):
    # KL case by hand: m >= ln(100) / KL(0.01 || 0.1) = 4.6052 / 0.071331 = 64.56.
    code, out, _ = run(["bounds", "samples", "--eps", "0.09", "--delta", "0.01", *extra], monkeypatch, capsys)
    assert code == 0 and f"m = {expected} " in out
    code, out, _ = run(["bounds", "samples", "--eps", "0.09", "--delta", "0.01", *extra, "--json"], monkeypatch, capsys)
    assert code == 0 and json.loads(out)["m"] == expected


def test_interval_json(monkeypatch, capsys):
    code, out, _ = run(
        ["bounds", "interval", "--k", "0", "--m", "512", "--method", "kl", "--json"], monkeypatch, capsys
    )
    data = json.loads(out)
    assert code == 0 and data["upper"] == pytest.approx(0.0089541437511) and data["sound"] is True


def test_interval_text_flags_unsound(monkeypatch, capsys):
    code, out, _ = run(["bounds", "interval", "--k", "2", "--m", "50", "--method", "wilson"], monkeypatch, capsys)
    assert code == 0 and "NOT sound" in out


def test_table_lists_every_method_with_soundness(monkeypatch, capsys):
    code, out, _ = run(["bounds", "table", "--m", "512", "--delta", "0.01", "--json"], monkeypatch, capsys)
    rows = {r["method"]: r for r in json.loads(out)["rows"]}
    assert code == 0 and len(rows) == 7
    assert rows["clopper-pearson"]["upper"][0] == pytest.approx(0.0089541437511)
    assert rows["hoeffding"]["upper"][0] == pytest.approx(0.0670614383)
    assert rows["wilson"]["sound"] is False
    code, out, _ = run(["bounds", "table"], monkeypatch, capsys)
    assert code == 0 and "clopper-pearson" in out and "0.00895" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bounds", "interval", "--k", "5", "--m", "3"], "k must not exceed m"),
        (
            ["bounds", "interval", "--k", "1", "--m", "3", "--delta", "1.5"],
            "'--delta': must be a finite number in (0, 1) (got 1.5)",
        ),
        (["bounds", "interval", "--k", "1", "--m", "3", "--method", "wald"], "accepted: hoeffding, kl"),
        (["bounds", "interval", "--k", "x", "--m", "3"], "'--k'"),
        (["bounds", "samples", "--eps", "0.1", "--theorem", "3"], "'--theorem'"),
        (["bounds", "samples", "--eps", "2"], "'--eps': must be a finite number in (0, 1) (got 2)"),
        (["bounds", "table", "--k", "1,two"], "comma-separated integers"),
        (["bounds", "nope"], "nope"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, fragment, monkeypatch, capsys):
    code, out, err = run(args, monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err
    assert "Traceback" not in out + err


def test_version_from_installed_console_script():
    result = subprocess.run([sys.executable, "-m", "ambs_verify", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"ambs-verify {__version__}"


def test_envs_list_includes_the_grid(monkeypatch, capsys):
    code, out, _ = run(["envs", "list", "--json"], monkeypatch, capsys)
    tasks = {t["name"]: t for t in json.loads(out)}
    assert code == 0 and tasks["grid"]["labels"] == ["hazard"] and tasks["grid"]["family"] == "grid"


def test_envs_check_grid_counts_costs_as_labels(monkeypatch, capsys):
    args = ["envs", "check", "grid", "--steps", "500", "--seed", "3", "--set", "cost_val=10", "--json"]
    code, out, _ = run(args, monkeypatch, capsys)
    summary = json.loads(out)
    assert code == 0 and summary["steps"] == 500
    assert summary["cost_sum"] == 10 * summary["label_counts"]["hazard"] > 0
    # the numbers envs check gave before it stepped through the rollout driver (issue 17): the same, exactly
    assert (summary["episodes"], summary["return"], summary["label_counts"]["hazard"]) == (6, 4.0, 61)
    code, again, _ = run(args, monkeypatch, capsys)
    assert {k: v for k, v in json.loads(again).items() if k != "steps_per_second"} == {
        k: v for k, v in summary.items() if k != "steps_per_second"
    }


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["envs", "check", "nope"], "unknown task 'nope'; task names start with one of: grid"),
        (["envs", "check", "grid", "--set", "size=3"], "unknown grid option(s) size; valid: rows"),
        (["envs", "check", "grid", "--policy", "smart"], "unknown policy 'smart'; accepted: random, noop"),
        (["envs", "check", "grid", "--set", "slip"], "--set takes key=value"),
    ],
)
def test_envs_bad_input_is_one_line_exit_2(args, fragment, monkeypatch, capsys):
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err


def test_variadic_labels_are_expanded():
    from ambs_verify.cli import expand_variadic

    argv = ["envs", "check", "atari_seaquest", "--labels", "death", "early-surface", "--steps", "5", "--json"]
    assert expand_variadic(argv) == [
        "envs", "check", "atari_seaquest", "--labels", "death", "--labels", "early-surface", "--steps", "5", "--json",
    ]  # fmt: skip
    assert expand_variadic(["bounds", "table", "--k", "0,1"]) == ["bounds", "table", "--k", "0,1"]
