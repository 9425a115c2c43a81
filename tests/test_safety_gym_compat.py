"""Each fix in ``safety_gym_compat`` is still needed on this stack, and the fixed import works.

A test per fix shows its precondition (what breaks without it); imports that must fail run in a subprocess so the
test process never holds a half-imported safety_gymnasium.
"""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("safety_gymnasium") is None or importlib.util.find_spec("mujoco") is None:
    pytest.skip("safety-gymnasium and mujoco are not installed", allow_module_level=True)

from ambs_verify.envs import safety_gym_compat as compat


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False
    )


def _installed_source(relative: str) -> str:
    spec = importlib.util.find_spec("safety_gymnasium")
    return (Path(spec.origin).parent / relative).read_text()


def test_plain_import_fails_on_this_stack():
    result = _run("import safety_gymnasium")
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr or "ValueError" in result.stderr


def test_fix1_ndarray_dataclass_defaults_are_needed():
    # Every alias in place but no dataclass shim: Python >= 3.11 rejects the assets' ndarray defaults.
    result = _run(
        """
        from ambs_verify.envs.safety_gym_compat import _module_aliases
        with _module_aliases():
            import safety_gymnasium
        """
    )
    assert result.returncode != 0
    assert "mutable default <class 'numpy.ndarray'>" in result.stderr


def test_fix2_moved_gymnasium_modules_are_gone_and_used():
    for name in (*compat.MOVED_GYMNASIUM_MODULES, *compat.REMOVED_GYMNASIUM_NAMES):
        assert importlib.util.find_spec(name) is None, f"{name} exists again; the alias may be unnecessary"
    sources = "".join(
        _installed_source(f)
        for f in (
            "utils/registration.py",
            "wrappers/autoreset.py",
            "wrappers/normalize.py",
            "wrappers/time_limit.py",
            "wrappers/env_checker.py",
        )
    )
    for name in (*compat.MOVED_GYMNASIUM_MODULES, *compat.REMOVED_GYMNASIUM_NAMES):
        assert f"from {name} import" in sources
    result = _run(
        """
        from ambs_verify.envs.safety_gym_compat import _ndarray_dataclass_defaults
        with _ndarray_dataclass_defaults():
            import safety_gymnasium
        """
    )
    assert result.returncode != 0
    assert "No module named 'gymnasium.wrappers" in result.stderr


def test_fix3_multi_agent_placeholder_is_needed():
    if importlib.util.find_spec("gymnasium_robotics") is not None:
        pytest.skip("gymnasium-robotics is installed; the placeholder is not used")
    result = _run(
        f"""
        from ambs_verify.envs.safety_gym_compat import _module_aliases, _ndarray_dataclass_defaults
        with _ndarray_dataclass_defaults(), _module_aliases(skip=({compat.MULTI_AGENT_MODULE!r},)):
            import safety_gymnasium
        """
    )
    assert result.returncode != 0
    assert "No module named 'gymnasium_robotics'" in result.stderr


def test_fixed_import_leaves_no_stand_in_modules_behind():
    result = _run(
        """
        import sys
        from ambs_verify.envs.safety_gym_compat import import_safety_gymnasium
        sg = import_safety_gymnasium()
        assert import_safety_gymnasium() is sg
        left = [m for m in sys.modules if m.startswith("gymnasium_robotics") or m.endswith(".compatibility")]
        assert not left, left
        from safety_gymnasium.assets.geoms import Hazards
        assert Hazards().color is Hazards().color  # shared default, as under Python 3.10
        print(sg.__version__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.0.0"


def test_fix4_offscreen_viewer_needs_width_and_height():
    from gymnasium.envs.mujoco.mujoco_rendering import OffScreenViewer

    params = inspect.signature(OffScreenViewer.__init__).parameters
    assert params["width"].default is inspect.Parameter.empty
    assert params["height"].default is inspect.Parameter.empty
    assert "OffScreenViewer(self.model, self.data)" in _installed_source("bases/underlying.py")
    # The patched viewer (used by safety-gymnasium's own vision) is exercised in test_safety_gym.py.


def test_fix5_numpy2_copy_false_needs_a_float_array():
    with pytest.raises(ValueError, match="copy"):
        np.array([0.5, -0.5], copy=False)
    assert "np.array(action, copy=False)" in _installed_source("builder.py")
    action = compat.as_action([0.5, -0.5])
    assert np.array(action, copy=False) is action


def test_gl_backend_respects_the_user(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert compat.choose_gl_backend() == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    assert compat.choose_gl_backend() in compat.GL_BACKENDS
