"""`certify` and `verify` on a tiny trained debug run on `grid`: schema-valid certificates, deterministic
re-certification, every single-field edit detected, swapped and truncated checkpoints, one-line errors."""

import contextlib
import copy
import io
import json
import math
import shutil
import sys

import numpy as np
import pytest
import yaml
from test_cli import run  # the same in-process CLI runner
from test_train_cli import FAST

from ambs_verify.estimators import intervals
from ambs_verify.estimators.sequential import cs_bounds
from ambs_verify.reports.certificate import CertificateError, field_name, read_certificate, validate_certificate
from ambs_verify.reports.certify import (
    CertifyOptions,
    audit_sample,
    auto_rollouts,
    certify_checkpoint,
    impossible_pass,
    options_from_certificate,
    parse_spec,
    sequential_test,
)
from ambs_verify.reports.verify import check_recomputation
from ambs_verify.rollout.acting import reservoir_slot

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
    args = ["train", "--configs", "quickstart", "debug", *FAST, "--run.steps", "120", "--run.save_every", "60"]
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


def _leaf_paths(doc, path=()):
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _leaf_paths(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _leaf_paths(value, (*path, i))
    else:
        yield path


def _edit(value):
    """The smallest edit of a leaf: one ulp, one count, the other truth value, one more character."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return math.nextafter(value, math.inf)
    if isinstance(value, str):
        return value + "0"
    return 0  # null


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
        deployed = doc["deployed"]
        assert deployed["available"] and deployed["states"] == 3 and deployed["rollouts"] == 12
        assert deployed["state_index"] == audit["state_index"] and "shielded agent" in deployed["policy"]
        bounds = zip(deployed["lower"], deployed["p_real"], deployed["upper"], strict=True)
        assert all(lo <= p <= up for lo, p, up in bounds)
        assert doc["verdict"]["status"] in ("pass", "fail", "inconclusive")
        assert doc["options"]["rollouts"] == 12 and doc["model"]["event"].startswith("a latent trace")


def test_delta_ledger_names_every_bound_and_adds_up(certified):
    """Every bound the certificate states -- the verdict's lower bounds included -- is in the ledger, with the δ it
    was computed at, and the ledger sums to the stated total."""
    logdir, _ = certified
    doc = read_certificate(logdir / "certificates" / "120.json")
    d = doc["delta"]
    rows = {row["bound"]: row for row in d["ledger"]}
    for dotted in ("model.upper", "audit.real_upper", "audit.error_upper", "deployed.upper", "deployed.lower"):
        section, field = dotted.split(".")
        assert rows[dotted]["count"] == len(doc[section][field]) > 0, dotted
    assert rows["real.upper"]["count"] == 1 and rows["real.upper"]["delta_each"] == d["real"]
    # Recomputed from the document: each section spends its share exactly, and the sections the total.
    spent = {s: sum(r["count"] * r["delta_each"] for b, r in rows.items() if b.startswith(s + ".")) for s in d}
    for section in ("model", "real", "audit", "deployed"):
        assert spent[section] == pytest.approx(d[section], rel=1e-12), section
    assert sum(r["count"] * r["delta_each"] for r in d["ledger"]) == pytest.approx(d["total"], rel=1e-12)
    assert d["spent"] == pytest.approx(d["total"], rel=1e-12)
    assert doc["verdict"]["confidence"] == pytest.approx(1 - d["total"])
    # The verdict's lower bounds are the deployed section's, at the ledger's δ.
    k, n = doc["deployed"]["violations"], doc["deployed"]["rollouts"]
    lower = intervals.lower_bound(np.asarray(k), n, rows["deployed.lower"]["delta_each"], "clopper-pearson")
    np.testing.assert_allclose(doc["deployed"]["lower"], np.atleast_1d(lower), rtol=1e-12)


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


def test_every_single_field_edit_is_detected_and_named(certified):
    """Each leaf of a real certificate edited by the smallest step (one ulp, one count, one character): the
    schema rejects it, or the comparison with one recomputation of the checkpoint names that field."""
    logdir, _ = certified
    stored = read_certificate(logdir / "certificates" / "60.json")
    fresh = certify_checkpoint(logdir, 60, options_from_certificate(stored))
    fresh["provenance"]["run"] = stored["provenance"]["run"]
    rejected, named = _edits_detected(stored, fresh)
    assert rejected + named > 150 and named > 100
    print(f"{rejected + named} single-field edits: {rejected} rejected by the schema, {named} named by verify")


def _edits_detected(stored: dict, fresh: dict) -> tuple[int, int]:
    """Edit every leaf of ``stored`` in turn; each edit must be rejected by the schema or named by the comparison with
    ``fresh`` (which must match the unedited certificate). Returns (rejected, named)."""
    assert check_recomputation(stored, fresh).ok
    rejected = named = 0
    for path in _leaf_paths(stored):
        edited = copy.deepcopy(stored)
        _set(edited, path, _edit(_get(stored, path)))
        name = field_name(path)
        try:
            validate_certificate(edited)
        except CertificateError:
            rejected += 1
            continue
        result = check_recomputation(edited, fresh)
        assert not result.ok, name
        shown = "seal" if path[0] == "seal" else name
        assert result.reason.startswith(shown), (name, result.reason)
        named += 1
    return rejected, named


@pytest.mark.end_to_end  # a certify and its recomputation on the fixture's run (15 s): make test-learning
def test_sequential_certificates_stop_where_the_test_decides_and_verify(certified, tmp_path, monkeypatch, capsys):
    """``certify --sequential``: each audited state drew rollouts look by look (32, 64, 128) until the confidence
    sequence at its share of δ decided, every stop agrees with the threshold test, the bounds are that sequence's
    (never 0 above), an undecided state states the rollouts it would need, and verify recomputes the certificate
    and names every single-field edit."""
    logdir = tmp_path / "run"
    shutil.copytree(certified[0], logdir)  # the other tests read the fixture's fixed-sample certificates
    small = ["--states", "6", "--samples", "32", "--episodes", "3", "--audit-states", "3", "--seed", "3"]
    args = ["certify", str(logdir), "--checkpoints", "60", *small, "--no-progress", "--sequential"]
    code, out, err = run([*args, "--spec", "H=8,p<=0.2", "--max-rollouts", "128"], monkeypatch, capsys)
    assert code == 0 and not err, err
    assert "rollouts (sequential)" in out
    stored = read_certificate(logdir / "certificates" / "60.json")
    options = options_from_certificate(stored)
    assert options.sequential and options.max_rollouts == 128
    dep, seq = stored["deployed"], stored["deployed"]["sequential"]
    test = sequential_test(options, 3)
    assert seq["looks"] == [32, 64, 128] and test.delta == dep["delta"] / 3
    assert stored["delta"]["ledger"][-1] == {"bound": "deployed.sequence", "count": 3, "delta_each": test.delta}
    k, n = np.asarray(dep["violations"]), np.asarray(seq["rollouts"])
    lower, upper = cs_bounds(k, n, test.delta)
    np.testing.assert_array_equal(dep["upper"], upper)
    np.testing.assert_array_equal(dep["lower"], lower)
    assert min(dep["upper"]) > 0 and max(n) == dep["rollouts"]
    looks = [seq["looks"].index(m) for m in n]  # every state stopped at a look
    codes = test.decide(k, looks)
    failed = (codes == 2).any()
    for code_, decision, m, need, kk in zip(codes, seq["decision"], n, seq["rollouts_needed"], k, strict=True):
        assert decision == {0: "undecided", 1: "pass", 2: "fail"}[int(code_)]
        assert decision != "undecided" or m == 128 or failed  # undecided only at the budget or after a failure
        assert need == (int(test.needed(kk)) if decision == "undecided" and test.needed(kk) > 0 else None)
    status = stored["verdict"]["status"]
    assert status == ("fail" if failed else "pass" if (codes == 1).all() else "inconclusive")
    fresh = certify_checkpoint(logdir, 60, options)
    fresh["provenance"]["run"] = stored["provenance"]["run"]
    assert _edits_detected(stored, fresh)[1] > 100


def test_a_sequential_budget_too_small_to_pass_warns_and_is_undecided():
    """At k = 0 the sequence's upper bound is positive and the rollouts needed to pass are exact."""
    options = CertifyOptions(spec=parse_spec("H=30,p<=0.1"), audit_states=16, sequential=True, max_rollouts=64)
    test = sequential_test(options, 16)
    need = int(test.needed(0))
    assert test.safe_max.max() == -1 and need > 64  # no look can pass a state
    assert impossible_pass(options).startswith("warning: a pass is impossible with --max-rollouts 64: an audited ")
    assert f"decided only at {need} rollouts" in impossible_pass(options)
    _, upper = cs_bounds(0, need, test.delta)
    _, before = cs_bounds(0, need - 1, test.delta)
    assert upper <= 0.1 < before and cs_bounds(0, 64, test.delta)[1] > 0.1
    with pytest.raises(Exception, match="--max-rollouts must be a multiple of 32"):
        CertifyOptions(sequential=True, max_rollouts=100)
    with pytest.raises(Exception, match="--sequential needs a spec with 0 < p < 1"):
        CertifyOptions(spec=parse_spec("H=30,p<=0"), sequential=True)


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
    assert code == 1 and err.startswith("mismatch: provenance.checkpoint_step: edited after certification")
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
        (["--delta", "2"], "'--delta': must be a finite number in (0, 1) (got 2)"),
        (["--delta-split", "1,1,0,1"], "--delta-split takes four positive weights for model,real,audit,deployed"),
        (["--delta-split", "1,1"], "--delta-split takes four positive weights"),
    ],
)
def test_bad_certify_input_is_one_line(certified, extra, fragment, monkeypatch, capsys):
    logdir, _ = certified
    code, _, err = run(["certify", str(logdir), *extra], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


def test_the_delta_split_is_an_option_and_every_share_is_in_the_ledger(certified, tmp_path, monkeypatch, capsys):
    """``--delta-split`` reweights the four sections (today's 0.3/0.1/0.2/0.4 is the default) and the ledger spends
    exactly the new shares."""
    assert CertifyOptions().split == (0.3, 0.1, 0.2, 0.4)
    equal = CertifyOptions(delta=0.02, split=(1, 1, 1, 1)).shares
    assert list(equal) == ["model", "real", "audit", "deployed"] and set(equal.values()) == {0.005}
    run_dir = tmp_path / "q"
    shutil.copytree(certified[0], run_dir)
    code, _, err = run(["certify", str(run_dir), *SMALL, "--delta-split", "1,1,1,1"], monkeypatch, capsys)
    assert code == 0, err
    doc = read_certificate(run_dir / "certificates" / "120.json")
    assert doc["options"]["split"] == [1.0, 1.0, 1.0, 1.0] and doc["delta"]["deployed"] == 0.0025
    by_bound = {row["bound"]: row for row in doc["delta"]["ledger"]}
    assert by_bound["deployed.upper"]["delta_each"] == 0.0025 / doc["deployed"]["states"] / 2
    assert math.isclose(doc["delta"]["spent"], 0.01) and doc["delta"]["spent"] <= 0.01


def test_spec_parsing():
    assert parse_spec("H=30,p<=0.1").horizon == 30
    assert parse_spec(" H = 5 , p <= 1e-2 ").p_max == 0.01
    assert CertifyOptions().spec.text == "H=30,p<=0.1"


def test_certificate_validates_after_reading(certified):
    logdir, _ = certified
    validate_certificate(json.loads((logdir / "certificates" / "120.json").read_text()))


def test_auto_rollouts_make_a_pass_reachable():
    """The issue's example: at δ 1.25e-4 per audited state, 64 rollouts cannot pass p <= 0.1 even at k = 0
    (0.1310); auto sizes the audit so that a state with one violating rollout passes."""
    d = 0.01 * 0.4 / 16 / 2
    assert CertifyOptions().deployed_delta_upper(16) == pytest.approx(d)
    assert intervals.upper_bound(0, 64, d, "clopper-pearson") == pytest.approx(0.1310, abs=5e-5)
    assert auto_rollouts(0.1, d, allowed=0) == 86
    n = auto_rollouts(0.1, d)
    assert (
        intervals.upper_bound(1, n, d, "clopper-pearson") <= 0.1 < intervals.upper_bound(1, n - 1, d, "clopper-pearson")
    )
    warning = impossible_pass(CertifyOptions(rollouts=64))
    assert warning.startswith("warning: a pass is impossible with --rollouts 64") and "\n" not in warning
    assert "0.1310 > p_max 0.1" in warning and "at least 86 rollouts" in warning and f"chooses {n}" in warning
    assert impossible_pass(CertifyOptions(rollouts=86)) is None and impossible_pass(CertifyOptions()) is None


def test_audit_sample_is_uniform_over_subsets():
    """Each of the C(5, 2) = 10 audited pairs appears about equally often over 2,000 seeds (fixed seeds; the
    counts are Binomial(2000, 0.1): mean 200, sd 13.4, so 150..250 is a 3.7 sd margin)."""
    counts: dict[tuple, int] = {}
    for seed in range(2000):
        pick = tuple(audit_sample(5, 2, seed))
        counts[pick] = counts.get(pick, 0) + 1
    assert len(counts) == 10 and all(150 <= c <= 250 for c in counts.values()), counts
    assert audit_sample(3, 16, 0) == [0, 1, 2]


def test_audited_states_are_as_often_episode_starts_as_visited_states():
    """As in certify: 16 envs in lockstep (the first 16 visited states are all episode starts), a reservoir of 64
    and 16 audited states. Pooled over 300 seeds, the audited states' start share matches the visited states'
    (sd of the pooled share 0.0047; margin 0.02). Auditing the reservoir's first slots would not: they hold the
    first 16 visited states, all starts, far more often."""
    rng_lengths = np.random.default_rng(0)
    stream = []  # is-start flags in visiting order
    lengths = rng_lengths.integers(5, 40, size=16)
    for t in range(int(lengths.max())):
        stream += [t == 0 for env in range(16) if t < lengths[env]]
    visited_share = np.mean(stream)
    audited, first_slots = [], []
    for seed in range(300):
        rng = np.random.default_rng([seed, 2])
        reservoir: list[bool] = []
        for seen, is_start in enumerate(stream, start=1):
            slot = reservoir_slot(seen, 64, rng)
            if slot == len(reservoir):
                reservoir.append(is_start)
            elif slot < 64:
                reservoir[slot] = is_start
        audited += [reservoir[i] for i in audit_sample(len(reservoir), 16, seed)]
        first_slots += reservoir[:16]
    assert abs(np.mean(audited) - visited_share) < 0.02, (np.mean(audited), visited_share)
    assert np.mean(first_slots) > visited_share + 0.05  # the old choice, for contrast


def test_a_safe_agent_passes_with_the_default_spec_and_auto_rollouts(certified, tmp_path, monkeypatch, capsys):
    """A grid without hazards makes every agent safe: certify with the default spec (H=30, p<=0.1), δ 0.01 and
    --rollouts auto must then say pass (fewer states than the defaults, to stay fast; same programs as the
    fixture's run, so XLA's cache serves them)."""
    logdir = tmp_path / "safe"
    args = ["train", "--configs", "quickstart", "debug", *FAST, "--run.steps", "60", "--run.save_every", "60"]
    code, _, err = run([*args, "--env.grid.hazards", "[]", "--logdir", str(logdir)], monkeypatch, capsys)
    assert code == 0, err
    small = ["--states", "4", "--samples", "32", "--episodes", "2", "--audit-states", "3", "--no-progress"]
    code, out, err = run(["certify", str(logdir), *small], monkeypatch, capsys)
    assert code == 0 and not err, err
    doc = read_certificate(logdir / "certificates" / "60.json")
    deployed = doc["deployed"]
    d = CertifyOptions(audit_states=3).deployed_delta_upper(3)
    assert deployed["rollouts"] == auto_rollouts(0.1, d) and deployed["rollouts_rule"].startswith("auto")
    assert deployed["violations"] == [0, 0, 0] and max(deployed["upper"]) <= 0.1
    assert doc["verdict"]["status"] == "pass" and "PASS for H=30,p<=0.1 at confidence 0.99" in out
    assert "at most 0.1" in doc["verdict"]["statement"]


def test_impossible_rollouts_warn_in_one_line_before_running(certified, monkeypatch, capsys):
    logdir, _ = certified
    code, _, err = run(["certify", str(logdir), "--rollouts", "20", "--checkpoints", "7"], monkeypatch, capsys)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2 and lines[1].startswith("error: checkpoint '7' does not exist")
    assert lines[0].startswith("warning: a pass is impossible with --rollouts 20: even with 0 violations")
    code, _, err = run(["certify", str(logdir), "--rollouts", "many"], monkeypatch, capsys)
    assert code == 2 and err == "error: --rollouts takes a positive integer or auto (got 'many')\n"


def test_the_python_api_reads_and_acts_with_what_the_cli_wrote(certified, tmp_path):
    """The API's records are the files the commands wrote: a Run over the run directory, Certificates whose JSON
    is the file's text, and the loaded shielded agent stepping a ``gymnasium.make`` environment of the task."""
    import gymnasium as gym

    import ambs_verify as av

    logdir, _ = certified
    run = av.Run.open(logdir)
    assert run.checkpoints == [60, 120] and run.config.agent == "ambs"
    certificates = run.certificates
    assert [c.step for c in certificates] == [60, 120]
    for cert in certificates:
        assert cert.to_json() == cert.path.read_text(encoding="utf-8")
        assert av.Certificate.from_json(cert.to_json()).document == cert.document
        assert cert.status == cert.document["verdict"]["status"] in ("pass", "fail", "inconclusive")
    agent = av.load_agent(run)  # the newest checkpoint, shielded
    assert agent.step == 120 and agent.env_id == "ambs_verify/grid-v0"
    env = gym.make(agent.env_id, **agent.env_options)
    obs, _ = env.reset(seed=0)
    agent.reset()
    for _ in range(3):
        action = agent.act(obs)
        assert env.action_space.contains(action)
        assert 0.0 <= agent.p_hat <= 1.0 and isinstance(agent.override, bool)
        obs, *_ = env.step(action)
    assert av.report(run) == logdir / "report.html"
    with pytest.raises(ValueError, match="not a run directory"):
        av.Run.open(tmp_path)
    with pytest.raises(ValueError, match="out is for a comparison"):
        av.report(run, out=tmp_path)


def test_the_deployed_section_names_a_sequential_shield_and_its_guarantee():
    import dataclasses
    import types

    from ambs_verify.config import resolve
    from ambs_verify.reports.certify import _policy_name
    from ambs_verify.rollout.agents import shield_config

    paper = shield_config(resolve(["quickstart"], {}))
    sequential = dataclasses.replace(paper, rule="sequential", samples=512, batch=32)
    text = _policy_name(types.SimpleNamespace(learner=object(), shield=sequential))
    assert "anytime-valid test of p <= 0.01 against p > 0.01" in text and "error 0.01 each way" in text
    assert "at most 512 traces" in text
    assert _policy_name(types.SimpleNamespace(learner=object(), shield=paper)).endswith("with their memory")


@pytest.mark.end_to_end
def test_parallel_certificates_are_the_single_process_ones(certified, tmp_path, monkeypatch, capsys):
    """``--workers 2``: both checkpoints certified side by side, one checkpoint's audit rollouts (fixed and
    sequential) and its model level's chunks split over two worker processes, give the certificates one process
    writes (every field but when and where it was written)."""
    logdir = tmp_path / "run"
    shutil.copytree(certified[0], logdir)
    single = {step: read_certificate(logdir / "certificates" / f"{step}.json") for step in (60, 120)}
    code, _, err = run(["certify", str(logdir), "--checkpoints", "all", *SMALL, "--workers", "2"], monkeypatch, capsys)
    assert code == 0 and not err, err
    for step in (60, 120):
        result = check_recomputation(single[step], read_certificate(logdir / "certificates" / f"{step}.json"))
        assert result.ok, result.reason
    code, _, err = run(["certify", str(logdir), "--checkpoints", "60", *SMALL, "--workers", "2"], monkeypatch, capsys)
    assert code == 0 and not err, err
    result = check_recomputation(single[60], read_certificate(logdir / "certificates" / "60.json"))
    assert result.ok, result.reason
    sequential = ["--checkpoints", "60", *SMALL, "--sequential", "--max-rollouts", "64"]
    # 16,384 traces per state: the model level's chunks hold 2 states, so its 3 chunks are split over the workers
    many_traces = ["--checkpoints", "60", *SMALL, "--samples", "16384"]
    for options in (sequential, many_traces):
        for extra in ([], ["--workers", "2"]):
            code, _, err = run(["certify", str(logdir), *options, *extra], monkeypatch, capsys)
            assert code == 0 and not err, err
            single[extra != []] = read_certificate(logdir / "certificates" / "60.json")
        if options is many_traces:
            assert single[True]["model"]["samples"] == 16384 and single[True]["model"]["states"] == 6
        result = check_recomputation(single[False], single[True])
        assert result.ok, result.reason
