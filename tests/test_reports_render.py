"""The run report: a self-contained report.html and report.md from a hand-made run directory, checked as text and
in headless Chromium (console errors, network requests, the rendered DOM, a screenshot)."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_certificate_schema import make_certificate

from ambs_verify.cli import main
from ambs_verify.reports.certificate import write_certificate
from ambs_verify.reports.render import ReportError, render_report
from ambs_verify.runs import RunDir

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

LABELS = ("hazard", "wall")
H2 = [
    "Run",
    "Verdicts across checkpoints",
    "What is certified",
    "Latest certificate: step 3000",
    "Plots",
    "Training (descriptive, not certified)",
]
H3_CERTIFIED = [
    "1. The deployed agent (the verdict rests on this)",
    "2. Real evaluation episodes",
    "3. Shield accuracy (audit of the learned model)",
    "4. Model level (the learned model only)",
    "δ ledger: every bound in this certificate",
    "Not certified",
]


def write_metrics(path: Path, episodes: int = 60) -> None:
    """Episode records as the trainer logs them (two envs), train/fps records, one NaN and a torn last line."""
    lines, total = [], 0
    for i in range(episodes):
        step = 50 * (i + 1)
        hazard, wall = (i * 7) % 5, (i * 3) % 2
        total += hazard + wall
        record = {
            "step": step,
            "time": 1.0e9 + i,
            "episode/return": round(1.0 - 0.5 * math.cos(i / 6), 4),
            "episode/cost": float(hazard + wall),
            "episode/length": 40 + i % 7,
            "episode/violations": hazard + wall,
            "episode/total_violations": total,
            "episode/violations/hazard": hazard,
            "episode/violations/wall": wall,
            "episode/override_rate": 0.1,
            "episode/p_hat_mean": 0.05,
            "episode/env": i % 2,
        }
        lines.append(json.dumps(record))
        if i % 10 == 9:
            lines.append(json.dumps({"step": step, "time": 1.0e9 + i, "train/model_loss": 1.5, "fps": 900.0}))
    lines.append('{"step": 10, "time": 1.0, "episode/return": NaN, "episode/violations": 0}')
    lines.append('{"step": 3050, "episode/ret')  # a crash mid-write
    path.write_text("\n".join(lines) + "\n")


def with_deployed(doc: dict, violations: list[int], rollouts: int | None = None) -> dict:
    """``doc`` with a deployed audit of these violating-rollout counts; bounds and verdict as certify computes them."""
    from ambs_verify.reports import sections
    from ambs_verify.reports.certify import auto_rollouts, options_from_certificate, verdict

    options = options_from_certificate(doc)
    dep, a = doc["deployed"], len(violations)
    assert a == dep["states"]
    r = rollouts or auto_rollouts(options.spec.p_max, options.deployed_delta_upper(a))
    h, p_max = options.spec.horizon, options.spec.p_max
    more = {"override_rate": dep["override_rate"], "policy": dep["policy"]}
    deployed = sections.DeployedAudit.from_counts(
        violations, dep["state_index"], r, dep["delta"], h, p_max, dep["rollouts_rule"], **more
    )
    doc["deployed"] = deployed.to_json()
    doc["audit"]["rollouts"] = r
    model, real, audit, _ = sections.from_certificate(doc)
    doc["verdict"] = verdict(model, deployed, options)
    ledger = sections.delta_ledger(model, real, audit, deployed)
    doc["delta"].update(ledger=ledger, spent=sum(row["count"] * row["delta_each"] for row in ledger))
    return doc


def without_snapshots(doc: dict) -> dict:
    """``doc`` as certify writes it for an environment that cannot restore states: no audit, no deployed audit."""
    from ambs_verify.reports import sections
    from ambs_verify.reports.certify import options_from_certificate, verdict

    why = "the grid environment cannot snapshot and restore"
    doc["audit"].update(available=False, reason=why, states=0, state_index=[], rollouts=0, delta_per_state=0.0)
    doc["audit"].update(p_model=[], p_real=[], error_upper=[], real_upper=[])
    doc["audit"]["summary"].update(
        error_upper_max=None, abs_diff_mean=None, real_upper_max=None, states_real_upper_above_p=0
    )
    doc["deployed"].update(available=False, reason=why, policy=None, states=0, state_index=[], rollouts=0)
    doc["deployed"].update(delta_per_state=0.0, violations=[], p_real=[], upper=[], lower=[], override_rate=None)
    doc["deployed"]["summary"].update(
        p_real_mean=None,
        p_real_max=None,
        upper_max=None,
        lower_max=None,
        states_upper_above_p=0,
        states_lower_above_p=0,
    )
    model, real, audit, deployed = sections.from_certificate(doc)
    doc["verdict"] = verdict(model, deployed, options_from_certificate(doc))
    ledger = sections.delta_ledger(model, real, audit, deployed)
    doc["delta"].update(ledger=ledger, spent=sum(row["count"] * row["delta_each"] for row in ledger))
    return doc


def make_run(root: Path, certificates: bool = True, metrics: bool = True) -> RunDir:
    """Three certificates: step 1000 fails (a state's lower bound is above p_max), step 2000 is inconclusive (an
    upper bound above p_max, no lower bound), step 3000 passes."""
    run = RunDir(root / "demo")
    run.prepare({"seed": 0, "task": "grid", "agent": "ambs", "run": {"steps": 3000}})
    for step in (1000, 2000, 3000):
        (run.checkpoint_path(step)).mkdir(parents=True)
        (run.checkpoint_path(step) / "manifest.json").write_text(json.dumps({"files": {}, "step": step}))
    if metrics:
        write_metrics(run.metrics_path)
    if certificates:
        first = with_deployed(make_certificate(step=1000, states=40, audited=6), [0, 1, 30, 2, 0, 1], rollouts=103)
        second = with_deployed(make_certificate(step=2000, states=50, audited=8), [0, 1, 0, 5, 0, 2, 0, 1])
        third = with_deployed(make_certificate(step=3000, states=60, audited=8), [0, 0, 1, 0, 0, 1, 0, 0])
        for doc in (first, second, third):
            write_certificate(run.certificate_path(doc["provenance"]["checkpoint_step"]), doc)
    return run


def row_of(html: str, step: int) -> str:
    """The verdict table's row of checkpoint ``step`` and the row under it that gives the reason."""
    return re.search(rf"<tr>\s*<td class=\"num\">{step}</td>.*?</tr>\s*<tr class=\"reason\">.*?</tr>", html, re.S)[0]


def strip_data_uris(html: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", html)


def assert_self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    for src in re.findall(r'<img[^>]*\ssrc="([^"]*)"', html):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    text = strip_data_uris(html)
    assert not re.search(r"\b(nan|NaN|inf|Infinity|None|null)\b", text), "NaN/None leaked into the report"


def test_report_with_three_certificates(tmp_path):
    run = make_run(tmp_path)
    html_path, md_path = render_report(run.path)
    assert (html_path, md_path) == (run.report_html, run.report_md)
    html, md = html_path.read_text(), md_path.read_text()
    assert_self_contained(html)
    assert len(re.findall(r"<img ", html)) == 6  # deployed, bounds, histogram, audit, violations, returns
    for heading in H2:
        assert f"{heading}</h2>" in html
        assert heading == "Plots" or f"\n## {heading}\n" in md
    for heading in H3_CERTIFIED:
        assert f"<h3>{heading}</h3>" in html and f"\n### {heading}\n" in md
    # "What is certified": deployed first, then real episodes, shield accuracy, model level, ledger.
    certified = html[html.index('<section id="what-is-certified">') : html.index('<section id="latest">')]
    assert [certified.index(f"<h3>{h}</h3>") for h in H3_CERTIFIED] == sorted(
        certified.index(f"<h3>{h}</h3>") for h in H3_CERTIFIED
    )
    for question in (
        "Is the agent a user deploys (task policy + shield + safe policy) safe, at the audited states?",
        "How often do whole evaluation episodes of the deployed agent violate?",
        "Can the shield&#39;s estimate be trusted?",
        "What does the learned model predict for the task policy?",
    ):
        assert question in certified
    doc = json.loads(run.certificate_path(3000).read_text())
    statement = doc["verdict"]["statement"]
    assert statement.startswith("With confidence 0.99 (jointly with every other bound here), at each of the 8 ")
    # The statement is quoted verbatim, first, inside the deployed agent's part.
    quoted = re.search(r'<blockquote class="statement" id="verdict-statement"><p>“(.*?)”</p></blockquote>', html)
    assert quoted[1] == statement.replace("'", "&#39;")
    assert certified.index("verdict-statement") < certified.index("<h3>2. Real evaluation episodes</h3>")
    assert f"> “{statement}”" in md
    # The agent is named: provenance.agent and deployed.policy.
    agent = "ambs: the shielded agent: task policy, shield and safe policy, with their memory"
    assert f"<tr><th>certified agent (latest certificate)</th><td>{agent}</td></tr>" in html
    assert f"Agent <strong>{agent}</strong>, task grid" in html and f"Agent **{agent}**, task grid" in md
    assert "Which agent: ambs at checkpoint step 3000 of task grid, run as a user deploys it (the shielded" in md
    dep = doc["deployed"]
    upper_max = f"{dep['summary']['upper_max']:.4g}"
    assert float(upper_max) <= 0.1
    assert f"the largest upper bound is {upper_max} and the largest lower bound" in html
    assert f'upper bound, max over states (the verdict&#39;s evidence)</th><td class="num">{upper_max}<' in html
    assert f"run for real {dep['rollouts']} times for 30 steps (rollouts: auto: the fewest rollouts" in html
    for text in (
        "Real evaluation episodes (deployed agent)",
        "Shield accuracy (task policy at the audited states)",
        "Rolled out: task policy alone (the policy the shield judges).",
        "Nothing is measured at states that were not audited",
        "AMBS Theorem 2",
        "The event: a latent trace of the task policy violates when",
        "not a real-world guarantee",
        "i.i.d.",
        "b" * 64,  # the config hash from the certificate
        "violations labelled wall",
    ):
        assert text in html, text
    # Verdict rows: step, status and the verdict's evidence (the deployed agent's upper max and p_real range).
    for step, status in ((1000, "fail"), (2000, "inconclusive"), (3000, "pass")):
        doc = json.loads(run.certificate_path(step).read_text())
        assert doc["verdict"]["status"] == status
        dep, model = doc["deployed"], doc["model"]
        upper, lower = (f"{dep['summary'][k]:.4g}" for k in ("upper_max", "lower_max"))
        p_range = f"{min(dep['p_real']):.4g} – {max(dep['p_real']):.4g}"
        model_upper = f"{model['summary']['upper_max']:.4g}"
        row = row_of(html, step)
        assert f'badge {status}">{status}<' in row
        assert f'<td class="num evidence">{upper}</td><td class="num">{lower}</td>' in row
        size = f"{dep['states']} states × {dep['rollouts']} rollouts"
        assert f'<td class="num">{p_range}<br><span class="small">{size}</span>' in row
        assert f'<td class="num">{model_upper}</td>' in row and '0.99<br><span class="small">δ = 0.01</span>' in row
        assert re.search(
            rf"^\| {step} \| `H=30,p<=0.1` \| \*\*{status.upper()}\*\* \| \*\*{upper}\*\* \| {lower} \| "
            rf"{p_range} .*\| {model_upper} \| 0.99 \(δ = 0.01\) \|",
            md,
            re.M,
        )
    assert "at some audited state the deployed agent&#39;s lower bound is above 0.1" in row_of(html, 1000)
    assert float(json.loads(run.certificate_path(1000).read_text())["deployed"]["summary"]["lower_max"]) > 0.1
    assert '0.0571<br><span class="small">3/200 episodes</span>' in html and "| 0.0571 (3/200 episodes) |" in md
    assert "<code>H=30,p&lt;=0.1</code>" in html and "p<=0.1" not in strip_data_uris(html)  # HTML is escaped
    assert ">0.08</td>" in html  # shield-accuracy error bound
    # δ ledger: every bound, count, δ each, total; they hold jointly with probability >= confidence.
    ledger = doc["delta"]["ledger"]
    assert [r["bound"] for r in ledger] == [
        "model.upper",
        "real.upper",
        "audit.real_upper",
        "audit.error_upper",
        "deployed.upper",
        "deployed.lower",
    ]
    for r in ledger:
        each, total = f"{r['delta_each']:.4g}", f"{r['count'] * r['delta_each']:.4g}"
        assert re.search(
            rf"<tr><td><code>{re.escape(r['bound'])}</code></td><td>[^<]+</td><td class=\"num\">{r['count']}</td>\s*"
            rf"<td class=\"num\">{each}</td><td class=\"num\">{total}</td></tr>",
            html,
        ), r
        assert re.search(rf"^\| `{re.escape(r['bound'])}` \| [^\n]+ \| {r['count']} \| {each} \| {total} \|$", md, re.M)
    bounds = sum(r["count"] for r in ledger)
    assert bounds == 60 + 1 + 8 + 8 + 8 + 8
    assert f"All {bounds} bounds of this certificate (the parts above, listed below) hold jointly with " in html
    assert "probability ≥ 0.99 (= 1 − δ, δ = 0.01; spent 0.01)" in html
    assert f'spent (sum of count × δ each; at most δ = 0.01)</td>\n    <td class="num">{bounds}</td>' in html
    assert f"{doc['delta']['spent']:.4g}" in html
    # Per audited state: the deployed agent's interval beside the task policy's audit.
    per_state = html[html.index('<table id="per-state-table">') :]
    per_state = per_state[: per_state.index("</table>")]
    assert per_state.count("<tr><td") == 8 and per_state.count('badge pass">passes<') == 8
    # Markdown: same tables, no images.
    assert "<img" not in md and "data:" not in md and "](" not in md
    assert not re.search(r"\b(nan|NaN|inf|Infinity|None|null)\b", md)


def test_report_without_snapshots(tmp_path):
    """An environment that cannot restore states: no deployed audit and no shield audit, so no claim, inconclusive."""
    run = make_run(tmp_path)
    doc = without_snapshots(make_certificate(step=3000, states=60, audited=0))
    write_certificate(run.certificate_path(3000), doc)
    html, md = (p.read_text() for p in render_report(run))
    assert_self_contained(html)
    assert doc["verdict"]["status"] == "inconclusive"
    assert (
        doc["verdict"]["statement"]
        == "This certificate makes no claim about the deployed agent's probability of violating."
    )
    for text in (
        "Deployed agent not audited: the grid environment cannot snapshot and restore",
        "Audit not available: the grid environment cannot snapshot and restore",
        "The model&#39;s error is therefore not measured",
        "“This certificate makes no claim about the deployed agent&#39;s probability of violating.”",
        "<tr><th>certified agent (latest certificate)</th><td>ambs</td></tr>",
    ):
        assert text in html, text
    row = row_of(html, 3000)
    assert '<td class="num evidence">n/a</td>' in row
    assert '<td class="num">n/a<br><span class="small">not audited</span></td>' in row
    assert 'id="per-state-table"' not in html
    assert len(re.findall(r"<img ", html)) == 6  # the deployed and audit plots come from step 2000
    assert "Audit not available: the grid environment cannot snapshot and restore" in md
    assert "Deployed agent not audited: the grid environment cannot snapshot and restore" in md
    assert "| `deployed.upper` | " in md and not re.search(r"\b(nan|NaN|inf|Infinity|None|null)\b", md)


def test_report_without_certificates_still_has_training_curves(tmp_path):
    run = make_run(tmp_path, certificates=False)
    html, md = (p.read_text() for p in render_report(run))
    assert_self_contained(html)
    assert f"No certificates yet; run <code>ambs-verify certify {run.path}</code>" in html
    assert f"No certificates yet; run `ambs-verify certify {run.path}`" in md
    assert 'id="plot-violations"' in html and 'id="plot-returns"' in html
    assert len(re.findall(r"<img ", html)) == 2
    assert "Latest certificate" not in html
    assert 'episodes logged</th><td class="num">61<' in html  # 60 + the one whose return is NaN


def test_report_without_metrics(tmp_path):
    run = make_run(tmp_path, metrics=False)
    html, md = (p.read_text() for p in render_report(run))
    assert_self_contained(html)
    assert "metrics.jsonl is missing" in html and "metrics.jsonl is missing" in md
    assert len(re.findall(r"<img ", html)) == 4  # deployed, bounds, histogram, audit
    assert 'id="plot-returns"' not in html


def test_empty_run(tmp_path):
    run = make_run(tmp_path, certificates=False, metrics=False)
    html, md = (p.read_text() for p in render_report(run))
    assert_self_contained(html)
    assert "<img" not in html and "No certificates yet" in md and "metrics.jsonl is missing" in md


def test_invalid_certificate_is_shown_and_left_out(tmp_path):
    run = make_run(tmp_path)
    bad = json.loads(run.certificate_path(3000).read_text())
    bad["model"]["upper"][3] = 1.7
    run.certificate_path(3000).write_text(json.dumps(bad))
    (run.certificates_dir / "4000.json").write_text("{not json")
    html, md = (p.read_text() for p in render_report(run))
    assert "Latest certificate: step 2000" in html
    assert "Nothing is measured at states that were not audited" in html  # step 2000 has an audit
    assert f"{run.certificate_path(3000)}: field model.upper[3] = 1.7 is above the maximum 1" in html
    assert "4000.json: invalid JSON" in md


def test_not_a_run_directory(tmp_path):
    with pytest.raises(ReportError, match=r"is not a run directory \(no config\.yaml\)"):
        render_report(tmp_path)


def cli(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ambs-verify", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_cli_report(tmp_path, monkeypatch, capsys):
    run = make_run(tmp_path, certificates=False)
    code, out, err = cli(["report", str(run.path)], monkeypatch, capsys)
    assert code == 0, err
    assert out.split() == [str(run.report_html), str(run.report_md)]
    code, out, err = cli(["report", str(tmp_path / "nowhere")], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "is not a run directory" in err


# ------------------------------------------------------------------------------- headless Chromium (CDP)


def chromium_binary() -> str | None:
    names = [os.environ.get("AMBS_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome", "chrome"]
    return next((shutil.which(n) for n in names if n and shutil.which(n)), None)


# Chromium's --remote-debugging-pipe reads the DevTools protocol on fd 3 and writes on fd 4; this trampoline puts
# our pipe ends there and execs the browser (a stdlib-only client: no websocket package needed).
_TRAMPOLINE = (
    "import os, sys; a, b = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2])); "
    "os.dup2(a, 3); os.dup2(b, 4); os.set_inheritable(3, True); os.set_inheritable(4, True); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class Chromium:
    """A headless Chromium driven over the Chrome DevTools Protocol (NUL-separated JSON on a pipe pair)."""

    def __init__(self, binary: str, profile: Path, width: int = 1200, height: int = 1600):
        to_browser_r, self._write = os.pipe()
        self._read, from_browser_w = os.pipe()
        args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--mute-audio",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.stderr = open(profile.parent / "chromium-stderr.log", "w")  # closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(to_browser_r), str(from_browser_w), binary, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            pass_fds=(to_browser_r, from_browser_w),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict] = []

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise EOFError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        seen = [e for e in self.events if e.get("method") == method and e.get("sessionId") == session]
        while not seen:
            event = self._message(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        return seen[0]

    def open(self, url: str) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        start = len(self.events)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        page = Page(self, session, start)
        page.evaluate("document.fonts.ready.then(() => true)")  # settle late console messages and fonts
        return page

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("Browser.close", timeout=10)
                self.proc.wait(timeout=10)
        except (OSError, EOFError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            os.close(self._read)
            os.close(self._write)
            self.stderr.close()


class Page:
    def __init__(self, browser: Chromium, session: str, start: int):
        self.browser, self.session, self.start = browser, session, start

    def evaluate(self, expression: str):
        result = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, error log entries, failed or non-local requests."""
        out = []
        for event in self.browser.events[self.start :]:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
                out.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                out.append(f"exception: {details.get('text')} {details.get('exception', {}).get('description', '')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                out.append(f"log {params['entry']['level']}: {params['entry']['text']}")
            elif method == "Network.loadingFailed":
                out.append(f"request failed: {params.get('errorText')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file://", "data:")):
                    out.append(f"non-local request: {url[:80]}")
        return out

    def screenshot(self, path: Path) -> bytes:
        shot = self.browser.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=self.session
        )
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        return data


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary found (make install apt-installs Debian's chromium when run as root)")
    root = tmp_path_factory.mktemp("chromium")
    chromium = Chromium(binary, root / "profile")
    try:
        yield chromium
    finally:
        chromium.close()


def test_browser_check_catches_errors(browser, tmp_path):
    """The check itself can fail: a page with a console error, an exception and a missing image is caught."""
    page_path = tmp_path / "bad.html"
    page_path.write_text(
        '<html><body><img src="missing.png"><script>console.error("boom"); notDefined();</script></body></html>'
    )
    problems = browser.open(page_path.as_uri()).problems()
    assert any("console.error" in p and "boom" in p for p in problems), problems
    assert any(p.startswith("exception: Uncaught") for p in problems), problems
    assert any("ERR_FILE_NOT_FOUND" in p for p in problems), problems


def test_report_in_headless_chromium(browser, tmp_path):
    run = make_run(tmp_path)
    html_path, _ = render_report(run)
    page = browser.open(html_path.as_uri())
    assert page.problems() == []
    dom = page.evaluate(
        """(() => {
          const table = document.querySelector('#verdict-table');
          return {
            title: document.title,
            h2: [...document.querySelectorAll('h2')].map(h => h.textContent.trim()),
            h3: [...document.querySelectorAll('#what-is-certified h3')].map(h => h.textContent.trim()),
            statement: document.querySelector('#verdict-statement').textContent.trim(),
            columns: table ? [...table.querySelectorAll('thead th')].map(t => t.textContent.trim()) : [],
            reasons: table ? [...table.querySelectorAll('tbody tr.reason')].map(r => r.textContent.trim()) : [],
            rows: table ? [...table.querySelectorAll('tbody tr:not(.reason)')].map(
              r => [...r.querySelectorAll('td')].map(c => c.textContent.trim())) : [],
            images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
            scripts: document.scripts.length,
            overflow: Math.max(document.documentElement.scrollWidth - window.innerWidth,
                               table.parentElement.scrollWidth - table.parentElement.clientWidth),
            height: document.documentElement.scrollHeight,
          };
        })()"""
    )
    assert dom["title"] == "ambs-verify report: demo"
    assert dom["h2"] == H2
    assert dom["h3"] == H3_CERTIFIED
    doc = json.loads(run.certificate_path(3000).read_text())
    assert dom["statement"] == f"“{doc['verdict']['statement']}”"
    evidence = "deployed agent at audited states (the verdict's evidence)"
    assert dom["columns"][:4] == ["step", "spec", "status", evidence]
    assert dom["columns"][8:11] == ["upper bound, max", "lower bound, max", "p_real, min – max"]
    assert [r[0] for r in dom["rows"]] == ["1000", "2000", "3000"]
    assert [r[2] for r in dom["rows"]] == ["fail", "inconclusive", "pass"]
    assert dom["rows"][2][3] == f"{doc['deployed']['summary']['upper_max']:.4g}"
    assert dom["reasons"][2] == doc["verdict"]["reason"]
    assert len(dom["images"]) == 6 and all(ok and w > 300 and h > 200 for ok, w, h in dom["images"])
    assert dom["scripts"] == 0
    assert dom["overflow"] <= 0, "the page scrolls sideways at 1200 px"
    png = page.screenshot(tmp_path / "report.png")
    assert len(png) > 10_000
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] >= dom["height"] - 2 and pixels.shape[1] >= 1000
    flat = pixels.reshape(-1, pixels.shape[-1])
    assert flat.std(axis=0).max() > 0.05, "the screenshot is a single colour"
    assert len({tuple(p) for p in flat[:: max(1, len(flat) // 50_000)].round(2)}) > 20
