"""The benchmark suite runner, smoke-tested on its cheapest benchmarks: JSON with machine facts, results and the
ratios measured in the same run, the Markdown table, and a one-line error for an unknown name."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the benchmarks package lives at the repo root

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
