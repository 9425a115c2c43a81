"""The Python API's own rules (its end-to-end use is tests/test_readme.py and test_certify's API test): cheap to
import, config keys as keywords, bad input in one line before anything is written."""

import subprocess
import sys

import pytest

import ambs_verify as av
from ambs_verify.api import _dotted
from ambs_verify.config import ConfigError


def test_importing_the_package_imports_no_jax_simulator_or_numpy():
    heavy = "('jax', 'flax', 'mujoco', 'ale_py', 'numpy')"
    code = f"import sys, ambs_verify; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(av.__all__) >= {"train", "certify", "verify", "report", "load_agent", "Run", "Certificate"}


def test_keywords_become_config_keys():
    assert _dotted({"seed": 1, "run": {"steps": 300, "train_fill": 100}, "env.grid.slip": 0.1}) == {
        "seed": 1,
        "run.steps": 300,
        "run.train_fill": 100,
        "env.grid.slip": 0.1,
    }


def test_a_bad_key_is_refused_in_one_line_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError) as info:
        av.train(["quickstart"], logdir=str(tmp_path / "run"), run={"stepz": 5})
    assert "\n" not in str(info.value) and "run.stepz" in str(info.value)
    with pytest.raises(ConfigError, match="nope"):
        av.train(["nope"], logdir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="'nope'"):  # one block given as a string is that block, not its letters
        av.train("nope", logdir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_an_unknown_certify_option_is_named_with_the_accepted_ones(tmp_path):
    with pytest.raises(ValueError) as info:
        av.certify(tmp_path, sample=32)
    assert str(info.value).startswith("unknown certify option(s) sample; accepted: spec, delta, states, samples")
