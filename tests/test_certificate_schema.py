"""The certificate schema and its helpers: round trip, and one-line errors naming the field for each bad edit."""

from __future__ import annotations

import copy
import json
import math

import pytest

from ambs_verify.reports.certificate import (
    SCHEMA_VERSION,
    CertificateError,
    certificate_paths,
    load_schema,
    read_certificate,
    seal,
    validate_certificate,
    write_certificate,
)


def make_certificate(step: int = 4000, states: int = 5, audited: int = 3, **overrides) -> dict:
    """A schema-valid certificate with plausible numbers (shared with test_reports_render.py)."""
    from ambs_verify.reports.sections import ModelLevel, delta_ledger, from_certificate

    p_hat = [round(0.005 * (i % 7), 4) for i in range(states)]
    p_model = [round(0.02 + 0.05 * i, 4) for i in range(audited)]
    p_real = [round(min(1.0, p + 0.01), 4) for p in p_model]
    error_upper = [0.08] * audited
    real_upper = [round(min(1.0, p + 0.06), 4) for p in p_real]
    k_dep = [0] * audited
    dep_upper = [0.0734] * audited
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": "ambs-verify-certificate",
        "created_utc": "2026-11-23T12:00:00Z",
        "provenance": {
            "package_version": "0.1.0",
            "run": "/work/runs/demo",
            "task": "grid",
            "agent": "ambs",
            "checkpoint_step": step,
            "checkpoint_manifest_sha256": "a" * 64,
            "config_sha256": "b" * 64,
            "seed": 0,
            "platform": "cpu",
            "versions": {"jax": "0.4.30", "python": "3.11.2"},
        },
        "spec": {"text": "H=30,p<=0.1", "horizon": 30, "p_max": 0.1},
        "options": {
            "states": states or 1,
            "samples": 512,
            "episodes": 200,
            "method": "kl",
            "audit_states": audited,
            "rollouts": "auto",
            "split": [0.3, 0.1, 0.2, 0.4],
        },
        "delta": {"total": 0.01, "model": 0.003, "real": 0.001, "audit": 0.002, "deployed": 0.004},
        # the model section as certify composes it from these counts (its bounds are recomputed by readers)
        "model": ModelLevel.from_counts([round(p * 512) for p in p_hat], 512, 0.003, "kl", 30, 0.1).to_json(),
        "real": {
            "episodes": 200,
            "violating_episodes": 3,
            "p_hat": 0.015,
            "estimator": {"name": "clopper-pearson", "sound": True},
            "delta": 0.001,
            "upper": 0.0571,
            "violations_total": 7,
            "violations_per_label": {"hazard": 7},
            "return": {"mean": 0.82, "std": 0.31, "min": 0.0, "max": 1.0},
            "length_mean": 41.5,
            "override_rate": 0.12,
            "bench_metrics": None,
        },
        "audit": {
            "available": True,
            "reason": None,
            "policy": "task policy alone (the policy the shield judges)",
            "states": audited,
            "state_index": list(range(audited)),
            "rollouts": 103,
            "horizon": 30,
            "delta": 0.002,
            "delta_per_state": 0.002 / max(audited, 1),
            "p_model": p_model,
            "p_real": p_real,
            "error_upper": error_upper,
            "real_upper": real_upper,
            "summary": {
                "error_upper_max": max(error_upper) if audited else None,
                "abs_diff_mean": 0.01 if audited else None,
                "real_upper_max": max(real_upper) if audited else None,
                "states_real_upper_above_p": sum(u > 0.1 for u in real_upper),
            },
        },
        "deployed": {
            "available": True,
            "reason": None,
            "policy": "the shielded agent: task policy, shield and safe policy, with their memory",
            "states": audited,
            "state_index": list(range(audited)),
            "rollouts": 103,
            "rollouts_rule": "auto: the fewest rollouts at which a state with 1 violating rollout(s) passes",
            "horizon": 30,
            "delta": 0.004,
            "delta_per_state": 0.004 / max(audited, 1),
            "violations": k_dep,
            "p_real": [0.0] * audited,
            "upper": dep_upper,
            "lower": [0.0] * audited,
            "override_rate": 0.2,
            "summary": {
                "p_real_mean": 0.0 if audited else None,
                "p_real_max": 0.0 if audited else None,
                "upper_max": max(dep_upper) if audited else None,
                "lower_max": 0.0 if audited else None,
                "states_upper_above_p": 0,
                "states_lower_above_p": 0,
            },
        },
        "verdict": {
            "status": "pass",
            "model_level": "pass",
            "real_level": "pass",
            "reason": "at every audited state the deployed agent's upper bound is <= 0.1",
            "statement": "With confidence 0.99 (jointly with every other bound here), at each of the audited states "
            "the deployed agent violates within 30 steps with probability at most 0.1.",
            "confidence": 0.99,
        },
    }
    ledger = delta_ledger(*from_certificate(doc))
    doc["delta"].update(
        ledger=ledger, spent=sum(r["count"] * r["delta_each"] for r in ledger), method="Bonferroni, ledger below"
    )
    doc["seal"] = seal(doc)
    for dotted, value in overrides.items():
        *head, last = dotted.split("__")
        target = doc
        for key in head:
            target = target[key]
        target[last] = value
    return doc


def test_example_is_valid_and_schema_is_draft_2020_12():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    validate_certificate(make_certificate())


def _all_objects(schema, path="#"):
    if isinstance(schema, dict):
        if schema.get("type") == "object" or (isinstance(schema.get("type"), list) and "object" in schema["type"]):
            yield path, schema
        for key, value in schema.items():
            yield from _all_objects(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _all_objects(value, f"{path}/{i}")


# The only properties a certificate may leave out: written by `certify --sequential` alone, so that fixed-sample
# certificates keep the bytes they had (tests/test_certificate_fixture.py).
OPTIONAL = {
    "#/properties/options": {"sequential", "max_rollouts"},
    "#/properties/deployed": {"sequential"},
}


def test_every_object_closes_its_properties():
    for path, node in _all_objects(load_schema()):
        assert "additionalProperties" in node, path
        if "properties" in node:
            assert node["additionalProperties"] is False, path
            assert set(node["required"]) == set(node["properties"]) - OPTIONAL.get(path, set()), path
            assert all("--sequential" in node["properties"][key]["description"] for key in OPTIONAL.get(path, ()))


def test_round_trip_sorted_and_indented(tmp_path):
    doc = make_certificate()
    path = write_certificate(tmp_path / "certificates" / "4000.json", doc)
    assert read_certificate(path) == doc
    text = path.read_text()
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert not list(path.parent.glob(".*.tmp"))


def test_unavailable_parts_and_nulls_are_valid():
    doc = make_certificate(states=0, audited=0)
    doc["model"].update(available=False, reason="the agent has no world model")
    doc["audit"].update(available=False, reason="the environment cannot restore snapshots")
    doc["deployed"].update(available=False, reason="the environment cannot restore snapshots", policy=None)
    doc["deployed"]["summary"].update(upper_max=None, lower_max=None, p_real_mean=None, p_real_max=None)
    doc["real"].update(episodes=0, violating_episodes=0, p_hat=None, upper=None, override_rate=None)
    doc["real"]["return"] = {"mean": None, "std": None, "min": None, "max": None}
    doc["real"]["bench_metrics"] = {"score": 1.5, "missing": None}
    doc["verdict"].update(status="inconclusive", model_level="not-available", real_level="inconclusive")
    validate_certificate(doc)


def _error(doc, source="runs/x/certificates/4000.json") -> str:
    with pytest.raises(CertificateError) as info:
        validate_certificate(doc, source)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"certificate {source}: ")
    return message


def test_probability_above_one_names_the_field():
    doc = make_certificate()
    doc["model"]["upper"][3] = 1.7
    assert _error(doc).startswith(
        "certificate runs/x/certificates/4000.json: field model.upper[3] = 1.7 is above the maximum 1"
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["spec"].update(p_max=-0.1), "field spec.p_max = -0.1 is below the minimum 0"),
        (lambda d: d["real"].update(upper=1.5), "field real.upper = 1.5 is above the maximum 1"),
        (lambda d: d["delta"].update(total=1.0), "field delta.total = 1.0 must be below 1"),
        (lambda d: d["delta"].update(total=0), "field delta.total = 0 must be above 0"),
        (lambda d: d["spec"].update(horizon=0), "field spec.horizon = 0 is below the minimum 1"),
        (lambda d: d["real"].update(episodes="200"), "field real.episodes = '200' has type string, expected integer"),
        (
            lambda d: d["model"].update(available="yes"),
            "field model.available = 'yes' has type string, expected boolean",
        ),
        (
            lambda d: d["model"]["p_hat"].__setitem__(0, None),
            "field model.p_hat[0] = null has type null, expected number",
        ),
        (lambda d: d["real"].update(p_hat="low"), "field real.p_hat = 'low' has type string, expected number or null"),
        (lambda d: d["model"].update(states=2.5), "field model.states = 2.5 has type number, expected integer"),
        (
            lambda d: d["provenance"].update(seed=True),
            "field provenance.seed = true has type boolean, expected integer",
        ),
        (lambda d: d["model"].pop("summary"), "field model.summary is missing"),
        (lambda d: d.pop("verdict"), "field verdict is missing"),
        (lambda d: d["audit"]["summary"].pop("real_upper_max"), "field audit.summary.real_upper_max is missing"),
        (lambda d: d.update(comment="hi"), "field comment is not allowed here (unknown field)"),
        (lambda d: d["real"]["return"].update(median=1), "field real.return.median is not allowed here"),
        (lambda d: d["verdict"].update(status="ok"), "field verdict.status = 'ok' is not one of 'pass', 'fail'"),
        (
            lambda d: d["model"]["estimator"].update(name="wilson"),
            "field model.estimator.name = 'wilson' is not one of",
        ),
        (lambda d: d["real"]["estimator"].update(sound=False), "field real.estimator.sound = false must be true"),
        (lambda d: d.update(kind="other"), "field kind = 'other' must be 'ambs-verify-certificate'"),
        (
            lambda d: d["provenance"].update(config_sha256="abc"),
            "field provenance.config_sha256 = 'abc' is not a sha256",
        ),
        (lambda d: d.update(created_utc="yesterday"), "field created_utc = 'yesterday' is not a UTC time"),
        (
            lambda d: d["real"]["violations_per_label"].update(hazard=-1),
            "real.violations_per_label.hazard = -1 is below",
        ),
        (lambda d: d["provenance"]["versions"].update(jax=4), "field provenance.versions.jax = 4 has type integer"),
        (lambda d: d["audit"]["error_upper"].__setitem__(1, -0.5), "field audit.error_upper[1] = -0.5 is below"),
    ],
)
def test_schema_violations_name_the_field(edit, expected):
    doc = make_certificate()
    edit(doc)
    assert expected in _error(doc)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["model"]["upper"].pop(), "field model.upper has 4 entries but model.states = 5"),
        (lambda d: d["model"]["violations"].append(0), "field model.violations has 6 entries but model.states = 5"),
        (lambda d: d["model"].update(states=6), "field model.violations has 5 entries but model.states = 6"),
        (lambda d: d["audit"]["p_real"].pop(), "field audit.p_real has 2 entries but audit.states = 3"),
        (lambda d: d["audit"]["error_upper"].append(0.1), "field audit.error_upper has 4 entries but audit.states = 3"),
        (lambda d: d["model"]["violations"].__setitem__(2, 600), "field model.violations[2] = 600 is above"),
        (lambda d: d["model"]["upper"].__setitem__(1, 0.0), "field model.upper[1] = 0.0 is below model.p_hat[1]"),
        (
            lambda d: d["real"].update(violating_episodes=201),
            "field real.violating_episodes = 201 is above real.episodes",
        ),
        (lambda d: d["real"].update(upper=0.01), "field real.upper = 0.01 is below real.p_hat"),
        (lambda d: d["delta"].update(model=0.009), "field delta: model + real + audit + deployed"),
        (lambda d: d["delta"].update(spent=0.002), "field delta.spent = 0.002, but the ledger adds up to"),
        (
            lambda d: d["delta"]["ledger"][0].update(delta_each=0.01) or d["delta"].update(spent=0.057),
            "field delta.ledger adds up to 0.057",
        ),
        (lambda d: d["deployed"]["upper"].pop(), "field deployed.upper has 2 entries but deployed.states = 3"),
        (lambda d: d["deployed"]["violations"].__setitem__(0, 104), "field deployed.violations[0] = 104 is above"),
        (lambda d: d["deployed"]["lower"].__setitem__(1, 0.5), "field deployed.p_real[1] = 0.0 is outside"),
        (lambda d: d["model"].update(delta_per_state=0.5), "field model.delta_per_state = 0.5 is above model.delta"),
        (lambda d: d["audit"].update(available=False), "field audit.reason = null, but audit.available is false"),
    ],
)
def test_cross_field_rules_name_the_field(edit, expected):
    doc = make_certificate()
    edit(doc)
    assert expected in _error(doc)


def test_several_problems_are_counted_in_one_line():
    doc = make_certificate()
    doc["model"]["upper"][0] = 2.0
    doc["model"]["upper"][1] = 3.0
    doc.pop("verdict")
    message = _error(doc)
    assert "field model.upper[0] = 2.0 is above the maximum 1 (and 2 more problems)" in message


def test_non_finite_numbers_are_rejected():
    doc = make_certificate()
    doc["model"]["p_hat"][2] = math.nan
    assert "field model.p_hat[2] = nan is not a finite number" in _error(doc)
    doc = make_certificate()
    doc["real"]["return"]["max"] = math.inf
    assert "field real.return.max = inf is not a finite number" in _error(doc)


def test_other_schema_version_is_refused():
    assert "schema_version '1.0' is not supported" in _error(make_certificate(schema_version="1.0"))


def test_not_an_object():
    assert "expected a JSON object, got array" in _error([1, 2])


def test_write_refuses_an_invalid_certificate_and_leaves_the_file(tmp_path):
    path = write_certificate(tmp_path / "1.json", make_certificate(step=1))
    bad = make_certificate()
    bad["spec"]["p_max"] = 2
    with pytest.raises(CertificateError, match=r"1\.json: field spec\.p_max = 2 is above the maximum 1"):
        write_certificate(path, bad)
    assert read_certificate(path)["provenance"]["checkpoint_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.json"]


def test_read_errors_are_one_line(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(CertificateError, match=r"^certificate .*nope\.json: no such file$"):
        read_certificate(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": "2.1",')
    with pytest.raises(CertificateError, match=r"^certificate .*broken\.json: invalid JSON \(.* at line 1\)$"):
        read_certificate(broken)
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(make_certificate()).replace('"p_max": 0.1', '"p_max": NaN'))
    with pytest.raises(CertificateError, match=r"^certificate .*nan\.json: invalid JSON \(NaN is not valid JSON\)$"):
        read_certificate(nan)
    bad = tmp_path / "bad.json"
    doc = make_certificate()
    doc["audit"]["real_upper"][0] = 1.2
    bad.write_text(json.dumps(doc))
    with pytest.raises(
        CertificateError, match=r"^certificate .*bad\.json: field audit\.real_upper\[0\] = 1\.2 is above"
    ):
        read_certificate(bad)


def test_certificate_paths_sorted_by_step(tmp_path):
    run = tmp_path / "run"
    for step in (12000, 500, 4000):
        write_certificate(run / "certificates" / f"{step}.json", make_certificate(step=step))
    (run / "certificates" / "notes.json").write_text("{}")
    paths = certificate_paths(run)
    assert [s for s, _ in paths] == [500, 4000, 12000]
    assert paths[0][1] == run / "certificates" / "500.json"
    assert certificate_paths(tmp_path / "empty") == []


def test_validation_does_not_modify_the_document():
    doc = make_certificate()
    before = copy.deepcopy(doc)
    validate_certificate(doc)
    assert doc == before
