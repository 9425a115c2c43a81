"""Fuzz the command line: bad values generated from every option's declared type and range go through the real
entry point in-process, and each must end in exit code 2 with one line on stderr, no traceback and nothing written.

Config keys (``train --<key>``) take their type from ``defaults`` and their range from ``config.RANGES`` /
``config.CHOICES``; the other commands' options take theirs from the click parameters typer builds (integer ranges,
the ``number_in`` intervals, choices), plus a few hand-written bad values for free-text options. hypothesis draws
the values with a fixed seed (``derandomize``), so every run tries the same inputs.
"""

from __future__ import annotations

import enum
import importlib.util
import math
import re
import string
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import run as run_cli  # the same in-process CLI runner

from ambs_verify.cli import app
from ambs_verify.config import CHOICES, NUMERIC_NULLABLE, _flatten_mapping, load_blocks, parse_interval, range_of

DEFAULTS = _flatten_mapping(load_blocks()["defaults"])
EXAMPLES = 4  # per option
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WORDS = st.text(string.ascii_letters, min_size=1, max_size=8).filter(
    lambda t: t.lower() not in ("true", "false", "nan", "inf", "infinity", "e")
)
# The grid's options (their defaults are null in the config: the environment's own default applies), by type.
GRID_TYPES = {
    "rows": "int",
    "cols": "int",
    "max_steps": "int",
    "image_size": "int",
    "slip": "probability",
    "cost_val": "float",
    "reward_goal": "float",
    "terminate_on_hazard": "bool",
    "observation": "choice",
    "hazards": "cells",
    "goal": "cell",
    "start": "cell",
}
# Free text validated where it is used: the camera when the first frame is rendered (it names a MuJoCo camera).
FREE_TEXT = {"env.safetygym.camera"}


def assert_one_line_rejection(code, err, args):
    assert code == 2, f"{args} exited {code}: {err}"
    assert err.startswith("error: ") and err.count("\n") == 1, f"{args}: {err!r}"
    assert "Traceback" not in err


def outside(interval: str, integer: bool):
    """Numbers outside ``interval`` (and the non-finite ones), as command-line text."""
    low, low_in, high, high_in = parse_interval(interval)
    options = [st.sampled_from(["nan", "inf", "-inf"])]
    if math.isfinite(low):
        if integer:
            options.append(st.integers(max_value=int(low) - 1).map(str))
        else:
            options.append(st.floats(max_value=low, exclude_max=low_in, allow_nan=False).map(repr))
    if math.isfinite(high):
        if integer:
            options.append(st.integers(min_value=int(high) + 1).map(str))
        else:
            options.append(st.floats(min_value=high, exclude_min=high_in, allow_nan=False).map(repr))
    return st.one_of(options)


def bad_config_values(key: str):
    """Values a config key must refuse, from its default's type and its declared range or choices."""
    default = DEFAULTS[key]
    element = default[0] if isinstance(default, list) and default else default
    if key in CHOICES:
        return WORDS.filter(lambda t: t not in CHOICES[key])
    if key.startswith("env.grid."):
        kind = GRID_TYPES[key.rsplit(".", 1)[1]]
        return {
            "int": st.one_of(st.integers(max_value=0).map(str), st.sampled_from(["1.5", "abc", "true"])),
            "probability": st.one_of(outside("[0, 1]", False), WORDS),
            "float": st.one_of(st.sampled_from(["nan", "inf"]), WORDS),
            "bool": st.sampled_from(["maybe", "2", "0.5"]),
            "choice": WORDS.filter(lambda t: t not in ("vector", "image", "both")),
            "cells": st.sampled_from(["[[99, 99]]", "[1]", "abc", "[[1, 1, 1]]"]),
            "cell": st.sampled_from(["[99, 99]", "[1]", "abc", "[-1, 0]"]),
        }[kind]
    if key == "env.atari.labels":
        return WORDS.map(lambda t: f"no-such-label-{t}")
    if key == "task":
        return WORDS.map(lambda t: f"nope_{t}")
    if key in NUMERIC_NULLABLE:
        return st.one_of(WORDS, outside(range_of(key), False))
    if isinstance(element, bool):
        return WORDS
    if isinstance(element, int):
        return st.one_of(outside(range_of(key), True), st.sampled_from(["1.5", "abc", "1e-3"]))
    if isinstance(element, float):
        return st.one_of(outside(range_of(key), False), WORDS)
    raise AssertionError(f"no bad values declared for {key} (default {default!r})")


CONFIG_KEYS = [k for k in DEFAULTS if k not in FREE_TEXT and k != "logdir"]


def test_every_config_key_is_fuzzed():
    assert set(DEFAULTS) - set(CONFIG_KEYS) == FREE_TEXT | {"logdir"}  # logdir: its own test below
    assert len(CONFIG_KEYS) > 170


@pytest.mark.parametrize("key", CONFIG_KEYS)
def test_bad_config_values_are_one_line_rejections(key, tmp_path, monkeypatch, capsys):
    family = key.split(".")[1] if key.startswith("env.") else "grid"
    task = {"grid": "grid", "atari": "atari_pong", "safetygym": "safetygym_SafetyPointGoal1-v0"}[family]
    logdir = tmp_path / "run"

    @FUZZ
    @given(value=bad_config_values(key))
    def check(value):
        args = ["train", "--configs", "quickstart", "--task", task, "--logdir", str(logdir), f"--{key}={value}"]
        if key == "task":
            args = ["train", "--configs", "quickstart", "--logdir", str(logdir), f"--task={value}"]
        code, _, err = run_cli(args, monkeypatch, capsys)
        assert_one_line_rejection(code, err, args)
        assert not logdir.exists(), f"{args} wrote {logdir}"

    needs = {"safetygym": ("safety_gymnasium", "mujoco"), "atari": ("ale_py",)}.get(family, ())
    if any(importlib.util.find_spec(module) is None for module in needs):
        pytest.skip(f"{family} is not installed")
    check()


def test_a_logdir_that_is_a_file_is_rejected(tmp_path, monkeypatch, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    args = ["train", "--configs", "quickstart", "--logdir", str(target)]
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert_one_line_rejection(code, err, args)
    assert target.read_text() == "keep me"


# ----------------------------------------------------------------------------------- the other commands


def _commands():
    """``(path, click command)`` for every leaf command of the app except ``train`` (fuzzed above)."""
    import typer.main

    root = typer.main.get_command(app)
    out = []

    def walk(command, path):
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        elif path != ["train"]:
            out.append((path, command))

    walk(root, [])
    return out


# Free-text options and arguments: values that must be refused (the type says only "text").
TEXT_BAD = {
    ("bounds", "samples", "method"): ["nope", "wilson-typo"],
    ("bounds", "interval", "method"): ["nope"],
    ("bounds", "interval", "side"): ["nope", "both"],
    ("bounds", "table", "k"): ["a,b", "1;2", "-1"],
    ("envs", "list", "family"): ["nope"],
    ("envs", "check", "task"): ["nope", "grid_nope", "atari_nope"],
    ("envs", "check", "policy"): ["nope"],
    ("envs", "check", "labels"): ["cliff"],
    ("envs", "check", "set_"): ["noequals", "slip=abc", "max_steps=1.5", "terminate_on_hazard=maybe", "nope=1"],
    ("certify", "run"): ["RUN_MISSING"],
    ("certify", "checkpoints"): ["nope", "999999"],
    ("certify", "spec"): ["H=30,p<0.1", "H=30,p<=1.2.3", "H=0,p<=0.1", "p<=0.1", "H=30,p<=2"],
    ("certify", "method"): ["nope"],
    ("certify", "rollouts"): ["0", "-3", "many"],
    ("certify", "delta_split"): ["1,1,0,1", "1,1", "a,b,c,d", "1,1,1,inf", "-1,1,1,1"],
    ("report", "runs"): ["RUN_MISSING"],
    ("report", "out"): ["OUT_ONE_RUN"],
    ("verify", "cert"): ["RUN_MISSING", "CERT_NESTED", "CERT_NOT_JSON"],
    ("verify", "run"): ["RUN_MISSING"],
    ("certify", "executor"): ["nope"],
    ("certify", "address"): ["10.0.0.1:6379"],
    ("sweep", "spec"): ["SPEC_MISSING", "SPEC_BAD", "CERT_NOT_JSON"],
    ("sweep", "dir"): ["DIR_BUSY", "SPEC"],
    ("sweep", "executor"): ["nope", "slurm"],
    ("sweep", "address"): ["10.0.0.1:6379"],
}
# Values every option needs for the command to reach the option under test (required ones, a real run).
REQUIRED = {
    ("bounds", "samples"): {"eps": "0.09"},
    ("bounds", "interval"): {"k": "0", "m": "10"},
    ("envs", "check"): {"task": "grid", "steps": "10"},
    ("certify",): {"run": "RUN"},
    ("report",): {"runs": "RUN"},
    ("verify",): {"cert": "CERT_NESTED"},
    ("sweep",): {"spec": "SPEC"},
}


def _bad_values(path, param):
    """Bad values from what typer declares: an integer's ``min``/``max``, a ``number_in`` interval, an enum's
    members; free text from :data:`TEXT_BAD`."""
    key = (*path, param.name)
    if key in TEXT_BAD:
        return st.sampled_from(TEXT_BAD[key])
    declared = param.type_descriptor
    annotation = next((a for a in typing.get_args(declared.annotation) if a is not type(None)), declared.annotation)
    interval = getattr(declared.parameter_info.parser, "interval", None)
    if interval is not None:
        return st.one_of(outside(interval, False), WORDS)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return WORDS.filter(lambda t: t not in {m.value for m in annotation})
    if annotation is int:
        low = -math.inf if param.min is None else param.min
        high = math.inf if param.max is None else param.max
        return st.one_of(outside(f"[{low}, {high}]", True), st.sampled_from(["1.5", "abc"]))
    return None


def _params():
    out = []
    for path, command in _commands():
        for param in command.params:
            if getattr(param, "is_flag", False) or param.name in ("help",):
                continue
            out.append(pytest.param(path, param, id=".".join([*path, param.name])))
    return out


@pytest.fixture(scope="module")
def fixtures_dir(tmp_path_factory):
    """A run directory that certify and report accept as one (a real resolved config, no checkpoint), and bad
    certificate files."""
    from ambs_verify.config import resolve

    root = tmp_path_factory.mktemp("fuzz")
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(resolve(["quickstart"], {"logdir": str(run)}).to_yaml())
    (run / "checkpoints" / "100").mkdir(parents=True)  # listed as a checkpoint; loading it would fail
    (run / "checkpoints" / "100" / "manifest.json").write_text("{}")
    nested = root / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    (root / "not-json.json").write_text("{not json")
    (root / "spec.yaml").write_text("configs: [quickstart]\nseeds: [0, 1]\n")
    (root / "bad-spec.yaml").write_text("configs: [quickstart]\nseed: [0, 1]\n")
    (root / "busy").mkdir()
    (root / "busy" / "notes.txt").write_text("not a sweep")
    return {
        "RUN": str(run),
        "RUN_MISSING": str(root / "missing"),
        "CERT_NESTED": str(nested),
        "CERT_NOT_JSON": str(root / "not-json.json"),
        "OUT_ONE_RUN": str(root / "out"),
        "SPEC": str(root / "spec.yaml"),
        "SPEC_MISSING": str(root / "missing.yaml"),
        "SPEC_BAD": str(root / "bad-spec.yaml"),
        "DIR_BUSY": str(root / "busy"),
    }


def test_every_option_of_every_command_is_fuzzed():
    missing = [p.id for p in _params() if _bad_values(p.values[0], p.values[1]) is None]
    assert missing == []
    assert len(_params()) > 30


@pytest.mark.parametrize(("path", "param"), _params())
def test_bad_option_values_are_one_line_rejections(path, param, fixtures_dir, monkeypatch, capsys):
    required = {**REQUIRED.get(tuple(path[:1]), {}), **REQUIRED.get(tuple(path), {})}

    def command_line(name, value):
        values = {**required, name: value}
        args = list(path)
        for p in _command(path).params:
            if p.name not in values:
                continue
            text = fixtures_dir.get(values[p.name], values[p.name])
            args += [text] if p.param_type_name == "argument" else [f"{p.opts[0]}={text}"]
        return args

    @FUZZ
    @given(value=_bad_values(path, param))
    def check(value):
        args = command_line(param.name, value)
        code, _, err = run_cli(args, monkeypatch, capsys)
        assert_one_line_rejection(code, err, args)
        # the line is about this option (not another problem the command met first)
        text = fixtures_dir.get(value, value)
        names = [*param.opts, param.name, param.name.upper()]
        pieces = [text, *(p for p in re.split(r"[=_,]", text) if len(p) >= 3)]  # "slip=abc" may be named "slip"
        assert any(p in err for p in [*pieces, *names]), f"{args}: {err!r} names neither {names} nor {text!r}"

    check()


def _command(path):
    return dict((tuple(p), c) for p, c in _commands())[tuple(path)]
