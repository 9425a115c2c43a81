"""The benchmark suite runner, smoke-tested on its cheapest benchmarks: JSON with machine facts, results and the
ratios measured in the same run, the Markdown table, and a one-line error for an unknown name."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the benchmarks package lives at the repo root

from ambs_verify.config import block_names
from benchmarks.suite import NAMES, main


def test_quick_suite_writes_json_and_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_SMOKE", "1")
    code = main(["run", "--quick", "--only", "jax_bounds", "certificate_soundness", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    (path,) = tmp_path.glob("*.json")
    payload = json.loads(path.read_text())
    assert payload["machine"]["cpu_count"] >= 1 and "jax" in payload["machine"]["versions"]
    assert set(payload["benchmarks"]) == {"jax_bounds", "certificate_soundness"}
    assert all(b["status"] == "ok" for b in payload["benchmarks"].values())
    assert payload["mode"] == "quick" and payload["wall_s"] > 0
    assert all(b["wall_s"] > 0 for b in payload["benchmarks"].values())
    ratio = payload["ratios"]["jax_bounds/speedup_kl_numpy_over_jax"]
    assert ratio > 0 and ratio == payload["benchmarks"]["jax_bounds"]["result"]["speedup_kl_numpy_over_jax"]
    assert payload["benchmarks"]["certificate_soundness"]["result"]["grid"]["states"] == 200  # BENCH_SMOKE
    assert "| benchmark | setting | what | median | spread | ratio |" in out
    assert "| jax_bounds | kl, 10,000 pairs |" in out and "| certificate_soundness | grid, " in out
    assert "numpy/jax ×" in out and payload["table"] in out


def test_unknown_benchmark_is_one_line(tmp_path, capsys):
    code = main(["run", "--only", "nope", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and NAMES[0] in err
    assert not list(tmp_path.glob("*.json"))


def test_grid_shielding_figures_from_records():
    """The per-run figures come from the metric records as documented, and the goals follow the numbers."""
    from benchmarks import grid_shielding as gs
    from benchmarks.training import ratio_ci, summarise

    records = [
        {"step": 100, "episode/return": 0.0, "episode/violations": 5, "episode/override_rate": 0.5},
        {"step": 500, "policy/p_hat_std": 0.5},
        {"step": 900, "episode/return": 1.0, "episode/violations": 1, "episode/override_rate": 0.2},
        {"step": 950, "policy/p_hat_std": 0.1},
        {"step": 1000, "episode/return": 1.0, "episode/violations": 0, "episode/override_rate": 0.1},
    ]
    fig = summarise(records, steps=1000, prefill=100)
    assert fig["cumulative_violations"] == 6 and fig["episodes"] == 3 and fig["violations_after_prefill"] == 1
    assert fig["violations_per_episode_last20"] == 0.5 and fig["return_last20"] == 1.0
    assert fig["override_rate_last20"] == pytest.approx(0.15) and fig["p_hat_std_last20"] == 0.1

    ci = ratio_ci([10, 12, 8, 10, 10], [40, 44, 36, 40, 40])
    assert ci["ratio"] == pytest.approx(0.25) and ci["ci95"][0] <= 0.25 <= ci["ci95"][1] and ci["ci95"][1] < 0.5
    assert ratio_ci([1.0], [2.0])["ci95"] is None

    def run(label, seed, viol, ret, goal, override=None, spread=None):
        return {
            "label": label,
            "seed": seed,
            "cumulative_violations": viol,
            "violations_per_episode_last20": 1.0,
            "eval_return": ret,
            "eval_goal_rate": goal,
            "override_rate_last20": override,
            "p_hat_std_last20": spread,
            "wall_s": 1.0,
        }

    runs = [run("dreamer", s, 100, 1.0, 0.95 if s else 0.5) for s in range(5)]
    runs += [run("ambs", s, 40, 0.95, 1.0, 0.2, 0.1) for s in range(5)]
    goals = gs.summary(runs)["goals"]
    assert goals["dreamer_reaches_goal"]["met"] and goals["dreamer_reaches_goal"]["measured"] == "4 of 5 seeds"
    assert goals["ambs_fewer_violations"]["met"] and goals["ambs_override_rate"]["met"]
    runs = [r | {"override_rate_last20": 0.9} if r["label"] == "ambs" else r for r in runs]
    assert not gs.summary(runs)["goals"]["ambs_override_rate"]["met"]


def test_paper_summary_compares_each_block_with_its_reference():
    """Each paper block's violations are compared with its experiment's DreamerV3 reference, over seeds."""
    from benchmarks import paper

    def run(label, seed, viol):
        return {
            "label": label,
            "seed": seed,
            "cumulative_violations": viol,
            "violations_per_episode_last20": 1.0,
            "eval_return": 10.0,
            "eval_goal_rate": 1.0,
            "override_rate_last20": None,
            "p_hat_std_last20": None,
            "wall_s": 1.0,
        }

    runs = [run("paper_seaquest_dreamer", s, 100 + s) for s in range(3)]
    runs += [run("paper_seaquest_ambs", s, 50 + s) for s in range(3)]
    out = paper.summary(runs, ["seaquest"])
    assert set(out["blocks"]) == {"paper_seaquest_dreamer", "paper_seaquest_ambs"}
    assert out["blocks"]["paper_seaquest_ambs"]["cumulative_violations"]["mean"] == 51
    (key,) = out["violation_ratios"]
    assert key == "paper_seaquest_ambs / paper_seaquest_dreamer"
    assert out["violation_ratios"][key]["ratio"] == pytest.approx(51 / 101)
    rows = paper.headline({"seeds": [0, 1, 2], **out})
    assert len(rows) == 2
    assert all(set(paper.EXPERIMENTS[e]["blocks"]) <= set(block_names()) for e in paper.EXPERIMENTS)


def test_sweep_goes_seed_by_seed_and_keeps_what_it_measured(tmp_path, monkeypatch):
    import benchmarks.common as common
    from benchmarks.training import sweep

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    monkeypatch.setenv("DEMO_RUNS", str(tmp_path / "runs"))
    roots = []

    def one(label, seed, root):
        roots.append(root)
        return {"x": seed}

    runs = sweep("demo", (0, 1), ("a", "b"), one)
    assert [(r["label"], r["x"]) for r in runs] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert roots == [tmp_path / "runs"] * 4
    assert json.loads((tmp_path / "demo-partial.json").read_text())["runs"] == runs


@pytest.mark.parametrize(
    ("module", "variable", "fragment"),
    [("paper", "PAPER_BLOCKS", "unknown PAPER_BLOCKS ['nope']"), ("grid_shielding", "GRID_SHIELDING_AGENTS", "agents")],
)
def test_unknown_selection_is_one_line(module, variable, fragment, monkeypatch, capsys):
    import importlib

    from benchmarks.common import main as bench_main

    monkeypatch.setenv(variable, "nope")
    monkeypatch.setattr(sys, "argv", [module])
    with pytest.raises(SystemExit) as exit_info:
        bench_main(module, importlib.import_module(f"benchmarks.{module}").run)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err
    assert "accepted: " in err


def test_sweep_resumes_from_an_earlier_results_file(tmp_path, monkeypatch, capsys):
    import benchmarks.common as common
    from benchmarks.training import sweep

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"result": {"runs": [{"label": "a", "seed": 0, "x": "old"}]}}))
    monkeypatch.setenv("DEMO_RESUME", str(earlier))
    trained = []

    def one(label, seed, root):
        trained.append((label, seed))
        return {"seed": seed, "x": "new"}

    runs = sweep("demo", (0, 1), ("a", "b"), one)
    assert trained == [("b", 0), ("a", 1), ("b", 1)]  # (a, 0) is taken from the earlier file
    assert runs[0] == {"label": "a", "seed": 0, "x": "old", "reused_from": str(earlier)}
    assert all("reused_from" not in r for r in runs[1:])
    assert json.loads((tmp_path / "demo-partial.json").read_text())["runs"] == runs  # itself a resume file

    earlier.write_text("not json")
    with pytest.raises(common.SelectionError, match=r"DEMO_RESUME=.*not a demo results file"):
        sweep("demo", (0,), ("a",), one)


def test_sequential_samples_reproduces_the_issues_advance_sizes():
    """Fixed n sized in advance for 90 % power (p <= 0.05 at δ 0.01, true p 0.01): the peer figures the sequential
    certificate is compared with, 229 episodes with Clopper-Pearson and 1,687 with Hoeffding."""
    from benchmarks.sequential_samples import sized_in_advance

    assert sized_in_advance("clopper-pearson") == 229
    assert sized_in_advance("hoeffding") == 1687
