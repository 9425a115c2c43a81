"""The certificate file: its JSON Schema, validation with one-line messages, reading and atomic writing.

A certificate (``runs/NAME/certificates/<step>.json``) states, for one checkpoint, what is certified and what is
not (DESIGN.md §5): ``model`` is about the *learned model* at visited states, ``real`` about i.i.d. evaluation
episodes in the real environment, ``audit`` compares the two at audited states only, and ``verdict`` judges the
user's specification with the δ budget written down in ``delta``.

The structure is fixed by ``schema/certificate.schema.json`` (JSON Schema draft 2020-12, shipped with the package).
:func:`validate_certificate` applies it, then checks what a schema cannot say: one array entry per state, counts
that fit together, upper bounds not below their estimates, the δ split within its total, and no NaN or infinity.
Every problem is reported as one line naming the field, e.g.
``certificate runs/x/certificates/4000.json: field model.upper[3] = 1.7 is above the maximum 1``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from ..runs import write_text_atomic

__all__ = [
    "KIND",
    "SCHEMA_VERSION",
    "CertificateError",
    "certificate_paths",
    "field_name",
    "load_schema",
    "read_certificate",
    "seal",
    "seal_problem",
    "validate_certificate",
    "write_certificate",
]

SCHEMA_VERSION = "2.1"  # 2.1: the seal
KIND = "ambs-verify-certificate"

# Slack for float comparisons between fields (sums of δ shares, bounds against estimates).
_TOL = 1e-9


class CertificateError(ValueError):
    """A certificate is missing, unreadable or invalid; the message is one line naming the file and the field."""


@cache
def _schema_text() -> str:
    return resources.files(__package__).joinpath("schema", "certificate.schema.json").read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """The certificate JSON Schema (draft 2020-12) as a fresh dict."""
    return json.loads(_schema_text())


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# ------------------------------------------------------------------------------------------- messages


def field_name(path: Iterable[Any]) -> str:
    """``("model", "upper", 3)`` -> ``model.upper[3]``: how messages name a field."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _show(value: Any, limit: int = 60) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 4] + "...'"
    if isinstance(value, Mapping):
        return f"an object with {len(value)} keys"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    return type(value).__name__


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _describe(error: jsonschema.ValidationError) -> str:
    """One clause for one schema error: ``field X = V is above the maximum 1`` and the like."""
    path = list(error.absolute_path)
    field = field_name(path)
    value, rule, limit = error.instance, error.validator, error.validator_value
    head = f"field {field} = {_show(value)}"
    if rule == "required":
        return f"field {field_name(_error_path(error))} is missing"
    if rule == "additionalProperties":
        return f"field {field_name(_error_path(error))} is not allowed here (unknown field)"
    if rule == "type":
        wanted = " or ".join(limit) if isinstance(limit, list) else limit
        return f"{head} has type {_type_name(value)}, expected {wanted}"
    if rule == "maximum":
        return f"{head} is above the maximum {_show(limit)}"
    if rule == "minimum":
        return f"{head} is below the minimum {_show(limit)}"
    if rule == "exclusiveMaximum":
        return f"{head} must be below {_show(limit)}"
    if rule == "exclusiveMinimum":
        return f"{head} must be above {_show(limit)}"
    if rule == "enum":
        return f"{head} is not one of {', '.join(_show(v) for v in limit)}"
    if rule == "const":
        return f"{head} must be {_show(limit)}"
    if rule == "pattern":
        schema = load_schema()
        if limit == schema["$defs"]["sha256"]["pattern"]:
            return f"{head} is not a sha256 (64 lowercase hex digits)"
        if limit == schema["properties"]["created_utc"]["pattern"]:
            return f"{head} is not a UTC time like 2026-11-23T12:00:00Z"
        return f"{head} does not match the pattern {limit}"
    if rule == "minLength":
        return f"{head} must not be empty"
    return f"{head}: {error.message}"


def _fail(source: str | None, clause: str, more: int = 0) -> CertificateError:
    prefix = f"certificate {source}" if source else "certificate"
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return CertificateError(f"{prefix}: {clause}{suffix}")


# ----------------------------------------------------------------------------------------- validation


def _non_finite(value: Any, path: list[Any]) -> tuple[list[Any], float] | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _non_finite(item, [*path, key])
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _non_finite(item, [*path, i])
            if found:
                return found
    return None


def _per_state_lengths(name: str, part: Mapping[str, Any], keys: tuple[str, ...], unit: str = "audited state"):
    """One problem per array of ``part`` whose length is not ``part["states"]``."""
    states, wanted = part["states"], ", ".join(keys[:-1]) + f" and {keys[-1]}"
    return [
        f"field {name}.{key} has {len(part[key])} entries but {name}.states = {states} "
        f"({wanted} need one entry per {unit})"
        for key in keys
        if len(part[key]) != states
    ]


def _consistency(doc: Mapping[str, Any]) -> list[str]:
    """What the schema cannot check: array lengths, counts within totals, bounds above estimates, the δ split."""
    problems: list[str] = []
    model, real, audit, deployed, delta = doc["model"], doc["real"], doc["audit"], doc["deployed"], doc["delta"]

    shares = delta["model"] + delta["real"] + delta["audit"] + delta["deployed"]
    if shares > delta["total"] * (1 + _TOL) + _TOL:
        problems.append(
            f"field delta: model + real + audit + deployed = {shares!r} exceeds delta.total = {delta['total']!r} "
            "(the shares must fit in the budget)"
        )
    spent = sum(row["count"] * row["delta_each"] for row in delta["ledger"])
    if abs(spent - delta["spent"]) > _TOL * max(1.0, spent):
        problems.append(f"field delta.spent = {delta['spent']!r}, but the ledger adds up to {spent!r}")
    if spent > delta["total"] * (1 + _TOL) + _TOL:
        problems.append(f"field delta.ledger adds up to {spent!r}, above delta.total = {delta['total']!r}")

    for name, part in (("model", model), ("audit", audit), ("deployed", deployed)):
        if not part["available"] and not part["reason"]:
            problems.append(f"field {name}.reason = null, but {name}.available is false: say why")
        if part["delta_per_state"] > part["delta"] * (1 + _TOL) + _TOL:
            problems.append(
                f"field {name}.delta_per_state = {part['delta_per_state']!r} is above {name}.delta = {part['delta']!r}"
            )

    states = model["states"]
    problems += _per_state_lengths("model", model, ("violations", "p_hat", "upper"), "state")
    for i, k in enumerate(model["violations"]):
        if k > model["samples"]:
            problems.append(f"field model.violations[{i}] = {k} is above model.samples = {model['samples']}")
            break
    for i, (p, u) in enumerate(zip(model["p_hat"], model["upper"], strict=False)):
        if u < p - _TOL:
            problems.append(
                f"field model.upper[{i}] = {u!r} is below model.p_hat[{i}] = {p!r} (an upper bound is never below "
                "its estimate)"
            )
            break
    if model["summary"]["states_upper_above_p"] > states:
        problems.append(
            f"field model.summary.states_upper_above_p = {model['summary']['states_upper_above_p']} "
            f"is above model.states = {states}"
        )

    if real["violating_episodes"] > real["episodes"]:
        problems.append(
            f"field real.violating_episodes = {real['violating_episodes']} is above real.episodes = {real['episodes']}"
        )
    if real["p_hat"] is not None and real["upper"] is not None and real["upper"] < real["p_hat"] - _TOL:
        problems.append(f"field real.upper = {real['upper']!r} is below real.p_hat = {real['p_hat']!r}")

    states = audit["states"]
    problems += _per_state_lengths("audit", audit, ("p_model", "p_real", "error_upper", "real_upper"))
    for i, (p, u) in enumerate(zip(audit["p_real"], audit["real_upper"], strict=False)):
        if u < p - _TOL:
            problems.append(f"field audit.real_upper[{i}] = {u!r} is below audit.p_real[{i}] = {p!r}")
            break
    if audit["summary"]["states_real_upper_above_p"] > states:
        problems.append(
            f"field audit.summary.states_real_upper_above_p = {audit['summary']['states_real_upper_above_p']} "
            f"is above audit.states = {states}"
        )

    problems += _per_state_lengths("deployed", deployed, ("state_index", "violations", "p_real", "upper", "lower"))
    for i, k in enumerate(deployed["violations"]):
        if k > deployed["rollouts"]:
            problems.append(f"field deployed.violations[{i}] = {k} is above deployed.rollouts = {deployed['rollouts']}")
            break
    for i, (lo, p, u) in enumerate(zip(deployed["lower"], deployed["p_real"], deployed["upper"], strict=False)):
        if not lo - _TOL <= p <= u + _TOL:
            problems.append(
                f"field deployed.p_real[{i}] = {p!r} is outside [deployed.lower[{i}], deployed.upper[{i}]] = "
                f"[{lo!r}, {u!r}]"
            )
            break
    return problems


def _error_path(error: jsonschema.ValidationError) -> list[Any]:
    """The path of the field an error is about (for a missing or unknown field: that field, not its parent)."""
    path, value = list(error.absolute_path), error.instance
    if error.validator == "required" and isinstance(value, Mapping):
        path += [next((k for k in error.validator_value if k not in value), "?")]
    elif error.validator == "additionalProperties" and isinstance(value, Mapping):
        path += sorted(k for k in value if k not in error.schema.get("properties", {}))[:1]
    return path


def _error_order(error: jsonschema.ValidationError) -> tuple:
    """Errors sorted by field path (list indices numerically), so the first one reported is deterministic."""
    path = tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in _error_path(error))
    return path, str(error.validator)


def validate_certificate(doc: Any, source: str | os.PathLike | None = None) -> None:
    """Check a certificate against the schema and the cross-field rules.

    Parameters
    ----------
    doc : Any
        The parsed certificate.
    source : str or PathLike, optional
        Where it came from, for the message (``certificate SOURCE: field ...``).

    Raises
    ------
    CertificateError
        One line naming the first problem (by field path) and how many more there are.
    """
    source = None if source is None else str(source)
    if not isinstance(doc, Mapping):
        raise _fail(source, f"expected a JSON object, got {_type_name(doc)}")
    version = doc.get("schema_version")
    if isinstance(version, str) and version != SCHEMA_VERSION:
        raise _fail(source, f"schema_version {version!r} is not supported (this ambs-verify reads {SCHEMA_VERSION})")
    found = _non_finite(doc, [])
    if found:
        path, value = found
        raise _fail(source, f"field {field_name(path)} = {value!r} is not a finite number")
    errors = sorted(_validator().iter_errors(doc), key=_error_order)
    if errors:
        raise _fail(source, _describe(errors[0]), len(errors) - 1)
    problems = _consistency(doc)
    if problems:
        raise _fail(source, problems[0], len(problems) - 1)


# ----------------------------------------------------------------------------------------------- seal

# The fields verify takes from the certificate instead of recomputing them (the inputs of the recomputation, and
# when and where it ran). The seal keeps a digest of each, so that an edit of one is named; an edit of any other
# field shows in the recomputation.
SEALED_INPUTS = (("created_utc",), ("provenance",), ("spec",), ("options",), ("delta", "total"))


def canonical(value: Any) -> bytes:
    """The canonical JSON of ``value`` (keys sorted, no spaces, UTF-8): what digests are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def _leaves(value: Any, path: tuple = ()) -> Iterable[tuple[tuple, Any]]:
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from _leaves(value[key], (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path, value


def _sealed_fields(doc: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for prefix in SEALED_INPUTS:
        node: Any = doc
        for part in prefix:
            node = node.get(part) if isinstance(node, Mapping) else None
        for path, value in _leaves(node, prefix):
            out[field_name(path)] = _digest(value)[:16]
    return out


def seal(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ``seal`` block of a certificate: sha256 of the canonical document without its seal, and a digest of
    each input field (:data:`SEALED_INPUTS`). It detects edits, not forgery: anyone can recompute it."""
    body = {k: v for k, v in doc.items() if k != "seal"}
    return {"algorithm": "sha256", "digest": _digest(body), "fields": _sealed_fields(body)}


def seal_problem(doc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(field, reason)`` when ``doc`` no longer matches its seal: the edited input field when one is, else
    ``(None, reason)`` (the edit is in a recomputed field, or in the seal itself); ``(None, None)`` when intact."""
    stored = doc.get("seal", {})
    fresh = seal(doc)
    if fresh["digest"] == stored.get("digest"):
        return None, None
    fields = stored.get("fields", {})
    for name in sorted(set(fields) | set(fresh["fields"])):
        if fields.get(name) != fresh["fields"].get(name):
            return name, f"{name}: edited after certification (it no longer matches the certificate's seal)"
    return None, "the certificate's content no longer matches its seal digest"


# ------------------------------------------------------------------------------------------------ I/O


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def read_certificate(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one certificate file.

    Raises
    ------
    CertificateError
        The file is missing or unreadable, is not valid JSON (NaN and Infinity included), or is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CertificateError(f"certificate {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CertificateError(f"certificate {path}: cannot be read ({exc})") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CertificateError(f"certificate {path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:
        raise CertificateError(f"certificate {path}: invalid JSON ({exc})") from None
    except RecursionError:
        raise CertificateError(f"certificate {path}: nested too deeply to be a certificate") from None
    try:
        validate_certificate(doc, path)
    except RecursionError:
        raise CertificateError(f"certificate {path}: nested too deeply to be a certificate") from None
    return doc


def write_certificate(path: str | os.PathLike, doc: Mapping[str, Any]) -> Path:
    """Seal ``doc`` (:func:`seal`), validate it, then write it atomically (temporary file + ``os.replace``), keys
    sorted, indent 2."""
    path = Path(path)
    doc = {**doc, "seal": seal(doc)}
    validate_certificate(doc, path)
    write_text_atomic(path, json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def certificate_paths(run_dir: Any) -> list[tuple[int, Path]]:
    """``[(step, path)]`` of a run's ``certificates/<step>.json``, sorted by step.

    ``run_dir`` is a :class:`~ambs_verify.runs.RunDir` or a path to a run directory.
    """
    from ..runs import RunDir

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    return [(step, run.certificate_path(step)) for step in run.certificate_steps()]
