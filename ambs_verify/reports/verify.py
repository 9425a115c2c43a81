"""Re-check a certificate: schema, hashes, then recompute it from the checkpoint and the recorded seed and options.

Outcomes: :class:`VerifyResult` with ``ok`` True (it matches) or False and a one-line reason (an edited field, a
different checkpoint, a different config); unusable input (no such file, not a certificate, no run, a missing or
damaged checkpoint) raises :class:`~ambs_verify.reports.certificate.CertificateError` or
:class:`~ambs_verify.checkpoints.CheckpointError`. The CLI maps these to exit codes 0 / 1 / 2.

First the seal (:func:`~ambs_verify.reports.certificate.seal_problem`): an edited input field (the spec, the
options, the seed, δ: what the recomputation takes from the certificate) is named at once. Then the recomputation:
every field must be equal, floats exactly, since the computation is deterministic on one platform. Where the
recomputation runs on another platform or other library versions than ``provenance.platform`` / ``.versions`` say,
floats are compared to a relative 1e-9 and the result says so. Fields that describe *when* and *where* rather than
*what* are not recomputed (``created_utc``, ``provenance.run``: a run directory may be moved); the seal covers them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .certificate import CertificateError, read_certificate, seal_problem
from .certificate import field_name as _name

__all__ = ["VerifyResult", "check_recomputation", "first_difference", "verify_certificate"]

IGNORED = {("created_utc",), ("provenance", "run"), ("provenance", "platform"), ("provenance", "versions"), ("seal",)}
PLATFORM_TOLERANCE = 1e-9  # relative, for floats recomputed on another platform or library versions


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str


def first_difference(stored: Any, fresh: Any, path: tuple = (), tolerance: float = 0.0) -> str | None:
    """The first field where two certificates differ, as ``field: certificate says A, recomputed B``; floats are
    compared exactly, or to a relative ``tolerance``."""
    if path in IGNORED:
        return None
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in sorted(set(stored) | set(fresh)):
            if (*path, key) in IGNORED:
                continue
            if key not in stored or key not in fresh:
                return f"{_name((*path, key))}: present in only one of certificate and recomputation"
            found = first_difference(stored[key], fresh[key], (*path, key), tolerance)
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return f"{_name(path)}: certificate has {len(stored)} entries, recomputed {len(fresh)}"
        for i, (a, b) in enumerate(zip(stored, fresh, strict=True)):
            found = first_difference(a, b, (*path, i), tolerance)
            if found:
                return found
        return None
    if type(stored) is not type(fresh):  # 1 and 1.0 differ: the certificate writes each field as one type
        return f"{_name(path)}: certificate says {stored!r}, recomputed {fresh!r}"
    if isinstance(stored, float) and tolerance:
        equal = math.isclose(stored, fresh, rel_tol=tolerance, abs_tol=tolerance * 1e-3)
    else:
        equal = stored == fresh
    return None if equal else f"{_name(path)}: certificate says {stored!r}, recomputed {fresh!r}"


def _environment(doc: dict) -> tuple:
    return doc["provenance"].get("platform"), doc["provenance"].get("versions")


def check_recomputation(doc: dict, fresh: dict) -> VerifyResult:
    """Compare a certificate with its recomputation ``fresh``: the seal, then every field (see the module
    docstring). Pure: tests edit a certificate's fields and check them against one recomputation."""
    edited, seal_reason = seal_problem(doc)
    if edited is not None:
        return VerifyResult(False, seal_reason)
    same = _environment(doc) == _environment(fresh)
    tolerance = 0.0 if same else PLATFORM_TOLERANCE
    difference = first_difference(doc, fresh, tolerance=tolerance)
    if difference:
        return VerifyResult(False, difference)
    if seal_reason:  # every field matches, so the seal itself was edited
        return VerifyResult(False, f"seal: {seal_reason}")
    how = (
        "exactly"
        if same
        else (
            f"to a relative {PLATFORM_TOLERANCE:g} (certified on {_environment(doc)[0]}, recomputed on "
            f"{_environment(fresh)[0]} with versions {_environment(fresh)[1]})"
        )
    )
    step = doc["provenance"]["checkpoint_step"]
    return VerifyResult(True, f"certificate of checkpoint {step} matches its recomputation {how}, and its seal")


def verify_certificate(cert: str | Path, run: str | Path | None = None, progress=None) -> VerifyResult:
    """Check ``cert`` against the run it names (or ``run``); see the module docstring."""
    from ..checkpoints import Checkpointer, manifest_digest
    from ..runs import RunDir
    from .certify import certify_checkpoint, options_from_certificate, sha256_file

    doc = read_certificate(cert)
    edited, seal_reason = seal_problem(doc)
    if edited is not None:  # an edited input would be recomputed as given: name it before recomputing
        return VerifyResult(False, seal_reason)
    prov = doc["provenance"]
    run_dir = RunDir(run if run is not None else prov["run"])
    if not run_dir.config_path.is_file():
        raise CertificateError(f"{run_dir.path} is not a run directory (no config.yaml); pass --run RUN")
    step = int(prov["checkpoint_step"])
    checkpoints = Checkpointer(run_dir.checkpoints_dir, keep=None)
    if step not in checkpoints.steps():
        raise CertificateError(f"the run {run_dir.path} has no checkpoint {step} (have: {checkpoints.steps()})")
    checkpoints.verify(step)  # a damaged checkpoint is unusable input: CheckpointError, exit 2
    digest = manifest_digest(checkpoints.path(step))
    if digest != prov["checkpoint_manifest_sha256"]:
        return VerifyResult(False, f"checkpoint {step} is not the certified one (manifest sha256 {digest[:12]}…)")
    config_digest = sha256_file(run_dir.config_path)
    if config_digest != prov["config_sha256"]:
        return VerifyResult(False, f"the run's config.yaml differs from the certified one ({config_digest[:12]}…)")
    fresh = certify_checkpoint(run_dir.path, step, options_from_certificate(doc), progress=progress)
    fresh["provenance"]["run"] = prov["run"]
    return check_recomputation(doc, fresh)
