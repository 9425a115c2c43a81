"""The comparison page: comparison.html and comparison.md over hand-made run directories, the mean and band against an
independent numpy/scipy computation, the certificate table, the command line, and the page in headless Chromium."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_certificate_schema import make_certificate
from test_reports_render import (
    assert_self_contained,
    browser,  # noqa: F401  (a fixture, used by name)
    cli,
    make_run,
    strip_data_uris,
    with_deployed,
    without_snapshots,
    write_metrics,
)

from ambs_verify.reports.certificate import write_certificate
from ambs_verify.reports.compare import (
    default_out,
    group_runs,
    mean_band,
    read_run,
    render_comparison,
    run_curve,
)
from ambs_verify.reports.render import ReportError, fmt
from ambs_verify.runs import RunDir

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

H2 = [
    "How to read this",
    "Runs",
    "Training curves (descriptive, not certified)",
    "Final certificates (certified, per run)",
]


def write_episodes(path: Path, steps, returns, violations) -> None:
    """Episode records with these values (cumulative violations as the trainer logs them), and a train record."""
    lines, total = [], 0
    for step, ret, k in zip(steps, returns, violations, strict=True):
        total += int(k)
        record = {"step": int(step), "episode/return": float(ret), "episode/violations": int(k)}
        lines.append(json.dumps({**record, "episode/total_violations": total, "episode/length": 40}))
    lines.append(json.dumps({"step": int(steps[-1]) + 7, "train/model_loss": 1.0}))
    path.write_text("\n".join(lines) + "\n")


def new_run(root: Path, name: str, seed: int = 0, agent: str = "ambs", task: str = "grid", **config) -> RunDir:
    run = RunDir(root / name)
    run.prepare({"seed": seed, "task": task, "agent": agent, "shielding": True, "run": {"steps": 3000}, **config})
    return run


def seed_runs(root: Path) -> tuple[list[RunDir], list[dict]]:
    """Three seeds of AMBS on the grid: different step grids, lengths and values (the raw data is returned too)."""
    rng = np.random.default_rng(7)
    runs, raw = [], []
    for seed, (first, every, episodes) in enumerate(((40, 50, 60), (25, 45, 70), (60, 55, 50))):
        steps = first + every * np.arange(episodes)
        returns = np.round(np.sin(steps / 400.0) + 0.3 * seed + rng.normal(0, 0.2, episodes), 4)
        violations = rng.integers(0, 4 + seed, episodes)
        run = new_run(root, f"ambs-s{seed}", seed=seed)
        write_episodes(run.metrics_path, steps, returns, violations)
        runs.append(run)
        raw.append({"steps": steps, "return": returns, "violations": violations})
    return runs, raw


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    sums = np.cumsum(np.r_[0.0, values])
    i = np.arange(1, len(values) + 1)
    return (sums[i] - sums[np.maximum(i - window, 0)]) / np.minimum(i, window)


def expected_band(curves):
    """Mean and 95 % t-interval across seeds on np.linspace over the common steps, computed from scratch."""
    grid = np.linspace(max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves), 200)
    ys = np.array([np.interp(grid, x, y) for x, y in curves])
    mean = ys.mean(axis=0)
    low, high = stats.t.interval(0.95, len(curves) - 1, loc=mean, scale=stats.sem(ys, axis=0))
    return grid, mean, low, high


def endpoint_row(html: str, label: str) -> list[str]:
    row = re.search(rf"<tr><td><span class=\"swatch\"[^>]*></span>{re.escape(label)}</td>(.*?)</tr>", html, re.S)
    assert row, label
    return re.findall(r'<td class="num">(.*?)</td>', row[1])


def test_mean_and_band_match_numpy_and_scipy(tmp_path):
    runs, raw = seed_runs(tmp_path)
    html_path, md_path = render_comparison([r.path for r in runs], tmp_path)
    assert (html_path, md_path) == (tmp_path / "comparison.html", tmp_path / "comparison.md")
    html, md = html_path.read_text(), md_path.read_text()
    assert_self_contained(html)
    summaries = [read_run(r.path) for r in runs]
    (group,) = group_runs(summaries)
    assert group.label == "ambs on grid" and [m.name for m in group.members] == ["ambs-s0", "ambs-s1", "ambs-s2"]
    window = max(1, min(100, min(len(r["steps"]) for r in raw) // 5))  # a fifth of the shortest run's episodes
    assert window == 10
    expected = {
        "return": [(r["steps"], trailing_mean(r["return"], window)) for r in raw],
        "violations": [(r["steps"], trailing_mean(r["violations"].astype(float), window)) for r in raw],
        "cumulative": [(r["steps"], np.cumsum(r["violations"]).astype(float)) for r in raw],
    }
    cells = endpoint_row(html, "ambs on grid: mean of 3 seeds, 95 % band")
    for column, key in enumerate(("return", "cumulative", "violations")):
        grid, mean, low, high = expected_band(expected[key])
        assert grid[0] == 60 and grid[-1] == 60 + 55 * 49  # the steps every seed reached
        assert np.all(high - low > 0)
        band = mean_band([run_curve(s, key, window, key != "cumulative") for s in summaries])
        assert band.seeds == 3
        for got, want in ((band.steps, grid), (band.mean, mean), (band.low, low), (band.high, high)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        want = f"{fmt(mean[-1])} [{fmt(low[-1])}, {fmt(high[-1])}] at step 2755"
        assert cells[column] == want
        assert f" {want} |" in md
    assert 'id="plot-return"' in html and 'id="plot-cumulative"' in html and 'id="plot-violations"' in html
    assert len(re.findall(r"<img ", html)) == 3
    assert "trailing moving average of 10 episodes (the same for every run)" in html
    assert "<img" not in md and "data:" not in md
    assert not re.search(r"\b(nan|NaN|inf|Infinity|None|null)\b", md)


def test_mean_band_edges():
    x = np.array([0.0, 10.0])
    with pytest.raises(ValueError, match="two or more"):
        mean_band([(x, x)])
    assert mean_band([(x, x), (x + 20, x)]) is None  # no common step: nothing is extrapolated
    band = mean_band([(x, x), (x, x + 2), (x + 10, x)])  # they meet at step 10 only
    assert band.steps.tolist() == [10.0] and band.mean.tolist() == [pytest.approx(22 / 3)]
    same = mean_band([(x, x), (x, x)])
    np.testing.assert_array_equal(same.low, same.high)  # equal seeds: a band of width 0


def certificate_runs(root: Path) -> dict[str, RunDir]:
    """AMBS with three certificates (newest passes); DreamerV3 without a deployed audit; a run without certificates;
    a run whose newest certificate is invalid."""
    runs = {"ambs": make_run(root / "a")}  # certificates at 1000 (fail), 2000 (inconclusive), 3000 (pass)
    dreamer = new_run(root / "b", "dreamer", agent="dreamer")
    write_metrics(dreamer.metrics_path, episodes=40)
    doc = without_snapshots(make_certificate(step=2500, states=20, audited=0, provenance__agent="dreamer"))
    write_certificate(dreamer.certificate_path(2500), doc)
    runs["dreamer"] = dreamer
    runs["none"] = new_run(root / "c", "uncertified", seed=1)
    broken = new_run(root / "d", "broken", seed=2)
    write_certificate(broken.certificate_path(1000), with_deployed(make_certificate(step=1000, audited=2), [0, 0]))
    broken.certificate_path(4000).write_text("{not json")
    runs["broken"] = broken
    return runs


def test_certificate_table(tmp_path):
    runs = certificate_runs(tmp_path)
    html, md = (p.read_text() for p in render_comparison([r.path for r in runs.values()], tmp_path / "out"))
    assert_self_contained(html)
    table = html[
        html.index('<table id="certificate-table">') : html.index(
            "</table>", html.index('<table id="certificate-table">')
        )
    ]
    rows = re.findall(r"<tr(?: class=\"single\")?><td>(.*?)</tr>", table, re.S)
    assert [r.split("</td>")[0] for r in rows] == ["demo", "dreamer", "uncertified", "broken"]
    doc = json.loads(runs["ambs"].certificate_path(3000).read_text())
    dep = doc["deployed"]
    ambs = rows[0]
    assert '<td class="num">3000</td>' in ambs and 'badge pass">pass<' in ambs
    assert "<code>H=30,p&lt;=0.1</code>" in ambs and "p<=0.1" not in strip_data_uris(html)  # HTML is escaped
    assert ">ambs: the shielded agent: task policy, shield and safe policy, with their memory</td>" in ambs
    assert (
        f'evidence">{dep["summary"]["upper_max"]:.4g}<br><span class="small">8 states × {dep["rollouts"]} rollouts'
        in ambs
    )
    assert '3/200 episodes<br><span class="small">upper bound 0.0571</span>' in ambs
    assert '<td class="num">0.01<br><span class="small">8 audited states</span>' in ambs  # mean |p_real − p_model|
    model_max = f"{doc['model']['summary']['upper_max']:.4g}"
    assert doc["model"]["summary"]["upper_max"] <= 0.1
    assert re.search(rf"badge pass\">pass</span><br><span\s+class=\"small\">upper bound, max {model_max}<", ambs)
    dreamer = rows[1]
    assert '<td class="num">2500</td>' in dreamer and 'badge inconclusive">inconclusive<' in dreamer
    # Without a deployed audit the certificate names no policy: the run's config says whether it is shielded.
    assert '<td class="agent">dreamer (unshielded; not audited)</td>' in dreamer
    assert 'evidence">n/a<br><span class="small">not audited</span>' in dreamer
    assert '<td class="num">n/a<br><span class="small">not audited</span>' in dreamer
    assert 'badge none">no certificate<' in rows[2] and "Nothing is certified for this run" in rows[2]
    assert f"ambs-verify certify {runs['none'].path}" in rows[2]
    broken = rows[3]
    assert '<td class="num">4000</td>' in broken and 'badge invalid">invalid<' in broken
    assert "4000.json: invalid JSON" in broken
    # Markdown: the same rows.
    assert re.search(r"^\| demo \| 3000 \| \*\*PASS\*\* \| `H=30,p<=0.1` \| ambs: the shielded agent", md, re.M)
    assert re.search(
        r"^\| dreamer \| 2500 \| \*\*INCONCLUSIVE\*\* \| `H=30,p<=0.1` \| "
        r"dreamer \(unshielded; not audited\) \| \*\*n/a\*\*",
        md,
        re.M,
    )
    assert re.search(r"^\| uncertified \| – \| no certificate \|", md, re.M)
    assert re.search(r"^\| broken \| 4000 \| \*\*INVALID\*\* \|.*4000\.json: invalid JSON", md, re.M)
    # Runs table: the uncertified and broken runs have no metrics; their steps are n/a and they are named.
    assert "No finished episodes in metrics.jsonl, so no curves for: uncertified, broken." in html
    runs_table = html[
        html.index('<table id="runs-table">') : html.index("</table>", html.index('<table id="runs-table">'))
    ]
    assert runs_table.count("<tr><td>") == 4 and "<td>dreamer</td><td>grid</td>" in runs_table
    assert re.search(r"<td>ambs</td><td>grid</td><td class=\"num\">0</td>\s*<td class=\"num\">3000</td>", runs_table)
    assert ">off</td>" in runs_table and ">on</td>" in runs_table
    assert "config blocks" not in runs_table and "are not recorded in its config.yaml" in html


def test_groups_split_by_config_and_seed(tmp_path):
    """Same agent and task but another config (a penalty technique) or a repeated seed: not averaged together."""
    paths = []
    for name, seed, extra in (
        ("ambs-0", 0, {}),
        ("ambs-1", 1, {}),
        ("penl-0", 0, {"penalty_coeff": 1.0}),
        ("ambs-1-again", 1, {}),
        ("dreamer-0", 0, {"configs": ["grid", "debug"]}),
    ):
        run = new_run(tmp_path, name, seed=seed, agent="dreamer" if name.startswith("dreamer") else "ambs", **extra)
        write_metrics(run.metrics_path, episodes=30 + seed)
        paths.append(run.path)
    groups = group_runs([read_run(p) for p in paths])
    assert [(g.label, [m.name for m in g.members]) for g in groups] == [
        ("ambs on grid #1", ["ambs-0", "ambs-1"]),
        ("ambs on grid #2", ["penl-0"]),
        ("ambs on grid #3", ["ambs-1-again"]),
        ("dreamer on grid", ["dreamer-0"]),
    ]
    assert len({g.colour for g in groups}) == 4
    assert (
        groups[1].note
        == "ambs on grid #2 differs from ambs on grid #1 in its config: penalty.penalty_coeff: absent → 1.0."
    )
    assert "repeats a seed of ambs on grid #1 with the same config" in groups[2].note
    html, md = (p.read_text() for p in render_comparison(paths, tmp_path / "out"))
    assert_self_contained(html)
    assert "ambs on grid #2 differs from ambs on grid #1 in its config: penalty.penalty_coeff: absent → 1.0." in html
    labels = re.findall(r'<tr><td><span class="swatch"[^>]*></span>(.*?)</td>', html)
    assert labels == [
        "ambs on grid #1: mean of 2 seeds, 95 % band",
        "ambs on grid #2: penl-0, seed 0",
        "ambs on grid #3: ambs-1-again, seed 1",
        "dreamer on grid: dreamer-0, seed 0",
    ]
    # config blocks: shown once some run records them.
    assert "<th>config blocks</th>" in html and "<td>grid, debug</td>" in html and "<td>not recorded</td>" in html
    assert "| dreamer-0 | dreamer on grid | dreamer | grid | 0 | 1500 | 31 | off | grid, debug |" in md


def test_runs_with_the_same_directory_name_are_told_apart(tmp_path):
    paths = [new_run(tmp_path / parent / "runs", "quickstart", seed=seed).path for seed, parent in enumerate("ab")]
    html, md = (p.read_text() for p in render_comparison(paths, tmp_path))
    assert "| a/runs/quickstart | ambs on grid | ambs | grid | 0 | n/a | 0 | on |" in md
    assert "| b/runs/quickstart | ambs on grid | ambs | grid | 1 | n/a | 0 | on |" in md
    assert "No finished episodes in metrics.jsonl, so no curves for: a/runs/quickstart, b/runs/quickstart." in html
    assert "<img" not in html and "Not drawn (no run logged episodes): Episode return, Cumulative violations" in html


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_cli_comparison(tmp_path, monkeypatch, capsys):
    runs, _ = seed_runs(tmp_path / "runs")
    before = {r.path.name: files_under(r.path) for r in runs}
    code, out, err = cli(["report", *(str(r.path) for r in runs)], monkeypatch, capsys)
    assert code == 0, err
    root = tmp_path / "runs"
    assert out.split() == [str(root / "comparison.html"), str(root / "comparison.md")]
    assert {r.path.name: files_under(r.path) for r in runs} == before  # nothing written into a run
    written = files_under(root)
    assert default_out([r.path for r in runs]) == root
    # Runs under different parents: the current directory, unless --out says otherwise.
    other = new_run(tmp_path / "elsewhere", "dreamer", agent="dreamer")
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, err = cli(["report", str(runs[0].path), str(other.path)], monkeypatch, capsys)
    assert code == 0 and out.split() == [str(here / "comparison.html"), str(here / "comparison.md")], err
    code, out, err = cli(["report", str(runs[0].path), str(other.path), "--out", "cmp"], monkeypatch, capsys)
    assert code == 0 and out.split()[0] == str(here / "cmp" / "comparison.html"), err
    # Errors: one line, exit code 2, no traceback, and nothing already written is lost.
    bad = [
        ([str(runs[0].path), str(tmp_path / "nowhere")], f"{tmp_path / 'nowhere'} is not a run directory"),
        ([str(runs[0].path), str(runs[1].path), str(runs[0].path)], "is given twice"),
        ([str(runs[0].path), str(runs[1].path), "--out", str(runs[1].path / "x")], "is inside run"),
        ([str(runs[0].path), "--out", str(here)], "--out is for a comparison of two or more runs"),
    ]
    for args, message in bad:
        code, out, err = cli(["report", *args], monkeypatch, capsys)
        assert code == 2 and out == "", err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
        assert "Traceback" not in err
    code, _, err = cli(["report", str(runs[0].path), str(root)], monkeypatch, capsys)
    assert code == 2 and "accepted: run directories (the --logdir of a training run" in err
    assert files_under(root) == written
    with pytest.raises(ReportError, match="two or more runs"):
        render_comparison([runs[0].path], tmp_path)


def test_single_run_report_unchanged(tmp_path, monkeypatch, capsys):
    run = make_run(tmp_path)
    code, out, err = cli(["report", str(run.path)], monkeypatch, capsys)
    assert code == 0, err
    assert out.split() == [str(run.report_html), str(run.report_md)]
    assert not (tmp_path / "comparison.html").exists()
    assert "ambs-verify report: demo" in run.report_html.read_text()


def test_comparison_in_headless_chromium(browser, tmp_path):  # noqa: F811  (the imported fixture)
    runs, _ = seed_runs(tmp_path)
    more = certificate_runs(tmp_path / "more")
    paths = [r.path for r in runs] + [more["ambs"].path, more["dreamer"].path, more["none"].path]
    html_path, _ = render_comparison(paths, tmp_path / "out")
    page = browser.open(html_path.as_uri())
    assert page.problems() == []
    dom = page.evaluate(
        """(() => ({
          title: document.title,
          h2: [...document.querySelectorAll('h2')].map(h => h.textContent.trim()),
          runs: [...document.querySelectorAll('#runs-table tbody tr')].length,
          certificates: [...document.querySelectorAll('#certificate-table .badge')].map(b => b.textContent.trim()),
          images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
          scripts: document.scripts.length,
          overflow: Math.max(document.documentElement.scrollWidth - window.innerWidth,
                             ...[...document.querySelectorAll('.scroll')].map(s => s.scrollWidth - s.clientWidth)),
          height: document.documentElement.scrollHeight,
        }))()"""
    )
    assert dom["title"] == "ambs-verify comparison: 6 runs"
    assert dom["h2"] == H2
    assert dom["runs"] == 6
    levels = [
        json.loads(p.read_text())["verdict"]
        for p in (more["ambs"].certificate_path(3000), more["dreamer"].certificate_path(2500))
    ]
    statuses = [text for v in levels for text in (v["status"], v["model_level"])]
    assert statuses == ["pass", "pass", "inconclusive", "pass"]
    assert dom["certificates"] == ["no certificate"] * 3 + statuses + ["no certificate"]
    assert len(dom["images"]) == 3 and all(ok and w > 800 and h > 300 for ok, w, h in dom["images"])
    assert dom["scripts"] == 0
    assert dom["overflow"] <= 0, "the page scrolls sideways at 1200 px"
    png = page.screenshot(tmp_path / "comparison.png")
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] >= dom["height"] - 2 and pixels.shape[1] >= 1000
    flat = pixels.reshape(-1, pixels.shape[-1])
    assert flat.std(axis=0).max() > 0.05, "the screenshot is a single colour"
    assert len({tuple(p) for p in flat[:: max(1, len(flat) // 50_000)].round(2)}) > 20
