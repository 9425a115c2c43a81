"""The README's Python blocks run as written, so the documentation cannot rot: the Python API's example (train,
certify, verify, step the loaded agent on a ``gymnasium.make`` environment, report) and the Safety Gym README's
Engine pattern."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_block(section: str) -> str:
    """The first ```python block after the README heading or paragraph that starts with ``section``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(section)
    match = re.compile(r"```python\n(.*?)```", re.DOTALL).search(text, start)
    assert match is not None, f"no python block after {section!r}"
    return match.group(1)


@pytest.mark.end_to_end  # minutes at the quickstart's model size: make test-learning (CI) runs it
def test_the_python_api_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example names its run by a relative path
    code = python_block("## Python API")
    assert 10 <= len(code.strip().splitlines()) <= 20
    out, scope = io.StringIO(), {"__name__": "readme"}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md (Python API)", "exec"), scope)
    print(out.getvalue())  # shown by make test-learning (-rP): the example's output, as a reader would see it
    printed = out.getvalue().splitlines()
    run, cert, agent = scope["run"], scope["cert"], scope["agent"]
    # what it printed: the verdict and its statement, the verification, five steps of the shield, the report
    assert printed[0].startswith(f"{cert.status} - ") and cert.status in ("pass", "fail", "inconclusive")
    assert printed[1].startswith("certificate of checkpoint 300 matches its recomputation")
    assert [line.split(":")[0] for line in printed[2:7]] == [f"step {t}" for t in range(5)]
    assert printed[7] == str(run.path / "report.html") and (run.path / "report.html").is_file()
    # the records are the ones the command line writes, with their JSON round trip
    assert run.path == tmp_path / "runs" / "api" and run.result.step == 300 and run.checkpoints == [300]
    file = run.path / "certificates" / "300.json"
    assert cert.path == file and cert.to_json() == file.read_text(encoding="utf-8")
    assert type(cert).from_json(cert.to_json()).document == cert.document
    assert [c.document for c in run.certificates] == [cert.document]
    # the loaded agent is the shielded one: p̂ in [0, 1] and the override flag at every step
    assert agent.env_id == "ambs_verify/grid-v0" and agent.step == 300
    assert 0.0 <= agent.p_hat <= 1.0 and isinstance(agent.override, bool)
    task = type(agent)(agent.restored, shielded=False, seed=0)
    task.reset()
    task.act(scope["obs"])
    assert task.p_hat is None and task.override is None


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("safety_gymnasium", "mujoco")),
    reason="safety-gymnasium and mujoco are not installed",
)
@pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
def test_the_engine_pattern_runs_as_written():
    import gymnasium

    scope: dict = {}
    try:
        exec(compile(python_block("**gymnasium ids.**"), "README.md (Engine)", "exec"), scope)
        env = scope["env"]
        assert env.spec.id == "SafexpTestEnvironment-v0" and env.unwrapped.labels == ("hazards",)
        env.reset(seed=0)
    finally:
        gymnasium.registry.pop("SafexpTestEnvironment-v0", None)
