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
H2 = ["Run", "Verdicts across checkpoints", "What is certified", "Plots", "Training (descriptive, not certified)"]


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


def make_run(root: Path, certificates: bool = True, metrics: bool = True) -> RunDir:
    run = RunDir(root / "demo")
    run.prepare({"seed": 0, "task": "grid", "agent": "ambs", "run": {"steps": 3000}})
    for step in (1000, 2000, 3000):
        (run.checkpoint_path(step)).mkdir(parents=True)
        (run.checkpoint_path(step) / "manifest.json").write_text(json.dumps({"files": {}, "step": step}))
    if metrics:
        write_metrics(run.metrics_path)
    if certificates:
        first = make_certificate(step=1000, states=40, audited=6)
        first["verdict"].update(status="fail", model_level="fail", reason="model upper bound above p_max")
        second = make_certificate(step=2000, states=50, audited=8)
        second["verdict"].update(status="inconclusive", real_level="inconclusive", reason="too few episodes")
        third = make_certificate(step=3000, states=60, audited=0)
        third["audit"].update(available=False, reason="this environment cannot restore snapshots")
        third["audit"]["summary"].update(error_upper_max=None, abs_diff_mean=None, real_upper_max=None)
        for doc in (first, second, third):
            write_certificate(run.certificate_path(doc["provenance"]["checkpoint_step"]), doc)
    return run


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
    assert len(re.findall(r"<img ", html)) == 5  # bounds, histogram, audit, violations, returns
    for heading in [*H2, "Latest certificate: step 3000"]:
        assert f"{heading}</h2>" in html
        assert heading == "Plots" or f"\n## {heading}\n" in md
    for text in (
        "Model level (learned model)",
        "Real environment (evaluation episodes)",
        "Audit not available: this environment cannot restore snapshots",
        "not a real-world guarantee",
        "i.i.d.",
        "The model's error is therefore not measured",
        "b" * 64,  # the config hash from the certificate
    ):
        assert text in html
    # Verdict rows: step, status and the numbers of each certificate.
    for step, status in ((1000, "fail"), (2000, "inconclusive"), (3000, "pass")):
        doc = json.loads(run.certificate_path(step).read_text())
        upper = f"{doc['model']['summary']['upper_max']:.4g}"
        assert re.search(rf"<td class=\"num\">{step}</td>.*?badge {status}\">{status}<.*?>{upper}</td>", html, re.S)
        assert re.search(rf"^\| {step} \| .*\*\*{status.upper()}\*\* .*\| {upper} \|", md, re.M)
    assert "0.0571 (3/200 episodes)" in html and "0.0571 (3/200 episodes)" in md
    assert "| 0.01 (0.005 / 0.003 / 0.002) |" in md and ">0.01 (0.005 / 0.003 / 0.002)</td>" in html
    assert ">0.08</td>" in html  # audit error bound of the audited checkpoints
    assert "violations labelled wall" in html
    # Markdown: same tables, no images.
    assert "<img" not in md and "data:" not in md and "](" not in md
    assert "Audit not available: this environment cannot restore snapshots" in md
    assert not re.search(r"\b(nan|NaN|inf|Infinity|None|null)\b", md)


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
    assert len(re.findall(r"<img ", html)) == 3
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
            columns: table ? [...table.querySelectorAll('thead th')].map(t => t.textContent.trim()) : [],
            rows: table ? [...table.querySelectorAll('tbody tr')].map(
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
    assert dom["h2"] == [H2[0], H2[1], "Latest certificate: step 3000", *H2[2:]]
    assert dom["columns"][:5] == ["step", "spec", "status", "model level", "real level"]
    assert [r[0] for r in dom["rows"]] == ["1000", "2000", "3000"]
    assert [r[2] for r in dom["rows"]] == ["fail", "inconclusive", "pass"]
    assert dom["rows"][2][7] == "n/a"  # no audit at step 3000
    assert len(dom["images"]) == 5 and all(ok and w > 300 and h > 200 for ok, w, h in dom["images"])
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
