"""`certify` and `verify` on a tiny trained debug run on `grid`: schema-valid certificates, deterministic
re-certification, every single-field edit detected, swapped and truncated checkpoints, one-line errors."""

import contextlib
import copy
import io
import json
import shutil
import sys

import pytest
import yaml
from test_cli import run  # the same in-process CLI runner
from test_train_cli import FAST

from ambs_verify.reports.certificate import read_certificate, validate_certificate
from ambs_verify.reports.certify import CertifyOptions, parse_spec
from ambs_verify.reports.verify import IGNORED, first_difference

SMALL = ["--states", "6", "--samples", "32", "--episodes", "3", "--audit-states", "3", "--rollouts", "12"]
SMALL += ["--spec", "H=8,p<=0.5", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def certified(tmp_path_factory):
    """A 120-step debug AMBS run (checkpoints 60 and 120), both checkpoints certified through the CLI.

    As in the quickstart, the commands run in a working directory and name the run by a relative path
    (``runs/q``); the fixture returns its absolute path.
    """
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("certify")
    mp.chdir(root)
    args = ["train", "--configs", "quickstart", *FAST, "--run.steps", "120", "--run.save_every", "60"]
    code, _, err = _run([*args, "--logdir", "runs/q"], mp)
    assert code == 0, err
    code, out, err = _run(["certify", "runs/q", "--checkpoints", "all", *SMALL], mp)
    assert code == 0, err
    mp.undo()
    return root / "runs" / "q", out


def _run(argv, mp):
    """The CLI in-process with hand-made capture (capsys is function-scoped; the fixture is module-scoped)."""
    out, err = io.StringIO(), io.StringIO()
    mp.setattr(sys, "argv", ["ambs-verify", *argv])
    from ambs_verify.cli import main

    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
    return code, out.getvalue(), err.getvalue()


def _numeric_paths(doc, path=()):
    if path in IGNORED:
        return
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _numeric_paths(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _numeric_paths(value, (*path, i))
    elif isinstance(doc, int | float) and not isinstance(doc, bool):
        yield path


def _set(doc, path, value):
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def _get(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def test_certificates_are_written_and_schema_valid(certified):
    logdir, out = certified
    assert "checkpoint 60:" in out and "checkpoint 120:" in out
    for step in (60, 120):
        doc = read_certificate(logdir / "certificates" / f"{step}.json")
        assert doc["provenance"]["checkpoint_step"] == step and doc["provenance"]["seed"] == 3
        model, real, audit = doc["model"], doc["real"], doc["audit"]
        assert model["available"] and model["states"] == 6 and model["samples"] == 32 and model["horizon"] == 8
        assert model["estimator"] == {"name": "kl", "sound": True}
        assert all(u >= p for u, p in zip(model["upper"], model["p_hat"], strict=True))
        assert real["episodes"] == 3 and set(real["violations_per_label"]) == {"hazard"}
        assert audit["available"] and audit["states"] == 3 and audit["rollouts"] == 12
        # The delta budget is spent exactly once: the three shares add up to the total.
        d = doc["delta"]
        assert d["model"] + d["real"] + d["audit"] == pytest.approx(d["total"])
        assert model["delta_per_state"] == pytest.approx(d["model"] / 6)
        assert doc["verdict"]["status"] in ("pass", "fail", "inconclusive")


def test_relative_paths_are_stored_absolute_and_verify_and_report_from_anywhere(certified, monkeypatch, capsys):
    """train → certify (the fixture) → verify → report with relative paths only; the run records absolute paths,
    so a relative path given from another directory still finds everything."""
    logdir, _ = certified
    root = logdir.parent.parent
    assert yaml.safe_load((logdir / "config.yaml").read_text())["logdir"] == str(logdir)
    assert read_certificate(logdir / "certificates" / "120.json")["provenance"]["run"] == str(logdir)
    # verify re-certifies with the recorded options and seed and compares every field but the timestamp; given a
    # run directory, it checks the newest certificate.
    monkeypatch.chdir(root / "runs")
    code, out, err = run(["verify", "q"], monkeypatch, capsys)
    assert code == 0 and "certificate of checkpoint 120 matches" in out, err
    monkeypatch.chdir(root)
    code, _, err = run(["report", "runs/q"], monkeypatch, capsys)
    assert code == 0, err
    assert "Latest certificate: step 120" in (logdir / "report.html").read_text()


def test_every_numeric_field_edit_is_detected(certified):
    logdir, _ = certified
    stored = read_certificate(logdir / "certificates" / "60.json")
    paths = list(_numeric_paths(stored))
    assert len(paths) > 40
    for path in paths:
        value = _get(stored, path)
        edited = copy.deepcopy(stored)
        _set(edited, path, value + 1 if isinstance(value, int) else value + (0.125 if value < 0.5 else -0.125))
        name = ".".join(str(p) for p in path)
        found = first_difference(edited, stored)
        assert found is not None, name
        assert str(path[-1]) in found, (name, found)


def test_verify_cli_exit_codes(certified, tmp_path, monkeypatch, capsys):
    logdir, _ = certified
    cert = logdir / "certificates" / "60.json"
    doc = json.loads(cert.read_text())
    # An edited (still schema-valid) field: exit 1 naming it.
    doc["real"]["length_mean"] = (doc["real"]["length_mean"] or 0) + 1.0
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    code, _, err = run(["verify", str(edited)], monkeypatch, capsys)
    assert code == 1 and err.startswith("mismatch: real.length_mean") and err.count("\n") == 1
    # The certificate of checkpoint 60 presented as checkpoint 120's: a different checkpoint.
    doc = json.loads(cert.read_text())
    doc["provenance"]["checkpoint_step"] = 120
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps(doc))
    code, _, err = run(["verify", str(swapped)], monkeypatch, capsys)
    assert code == 1 and "not the certified one" in err
    # Not a certificate, and a certificate of a run that is not there: unusable input, exit 2.
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, _, err = run(["verify", str(bad)], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = run(["verify", str(cert), "--run", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "not a run directory" in err
    code, _, err = run(["verify", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "holds no certificates" in err and err.count("\n") == 1


def test_truncated_checkpoint_is_a_clear_error(certified, tmp_path, monkeypatch, capsys):
    logdir, _ = certified
    copy_dir = tmp_path / "run"
    shutil.copytree(logdir, copy_dir, ignore=shutil.ignore_patterns("replay"))
    state = copy_dir / "checkpoints" / "60" / "state"
    victim = max((p for p in state.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    code, _, err = run(
        ["verify", str(logdir / "certificates" / "60.json"), "--run", str(copy_dir)], monkeypatch, capsys
    )
    assert code == 2 and err.startswith("error: ") and "sha256" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--spec", "p<0.1"], "H=<steps>,p<=<probability>"),
        (["--method", "wilson"], "accepted: kl, clopper-pearson"),
        (["--checkpoints", "7"], "does not exist"),
        (["--delta", "2"], "delta must be in (0, 1)"),
    ],
)
def test_bad_certify_input_is_one_line(certified, extra, fragment, monkeypatch, capsys):
    logdir, _ = certified
    code, _, err = run(["certify", str(logdir), *extra], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


def test_spec_parsing():
    assert parse_spec("H=30,p<=0.1").horizon == 30
    assert parse_spec(" H = 5 , p <= 1e-2 ").p_max == 0.01
    assert CertifyOptions().spec.text == "H=30,p<=0.1"


def test_certificate_validates_after_reading(certified):
    logdir, _ = certified
    validate_certificate(json.loads((logdir / "certificates" / "120.json").read_text()))
