"""Re-check a certificate: schema, hashes, then recompute it from the checkpoint and the recorded seed and options.

Outcomes: :class:`VerifyResult` with ``ok`` True (it matches) or False and a one-line reason (an edited field, a
different checkpoint, a different config); unusable input (no such file, not a certificate, no run, a missing or
damaged checkpoint) raises :class:`~ambs_verify.reports.certificate.CertificateError` or
:class:`~ambs_verify.trainers.checkpoint.CheckpointError`. The CLI maps these to exit codes 0 / 1 / 2.

Fields that describe *when* and *where* rather than *what* are not compared: ``created_utc`` and
``provenance.run`` (a run directory may be moved). Floats are compared to a relative 1e-9, everything else exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .certificate import CertificateError, read_certificate

__all__ = ["VerifyResult", "first_difference", "verify_certificate"]

IGNORED = {("created_utc",), ("provenance", "run")}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str


def _name(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def first_difference(stored: Any, fresh: Any, path: tuple = ()) -> str | None:
    """The first field where two certificates differ, as ``field: certificate says A, recomputed B``."""
    if path in IGNORED:
        return None
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in sorted(set(stored) | set(fresh)):
            if key not in stored or key not in fresh:
                return f"{_name((*path, key))}: present in only one of certificate and recomputation"
            found = first_difference(stored[key], fresh[key], (*path, key))
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return f"{_name(path)}: certificate has {len(stored)} entries, recomputed {len(fresh)}"
        for i, (a, b) in enumerate(zip(stored, fresh, strict=True)):
            found = first_difference(a, b, (*path, i))
            if found:
                return found
        return None
    same_kind = type(stored) is type(fresh) or (
        isinstance(stored, int | float) and isinstance(fresh, int | float) and not isinstance(stored, bool)
    )
    if isinstance(stored, float) or isinstance(fresh, float):
        equal = same_kind and math.isclose(float(stored), float(fresh), rel_tol=1e-9, abs_tol=1e-12)
    else:
        equal = same_kind and stored == fresh
    return None if equal else f"{_name(path)}: certificate says {stored!r}, recomputed {fresh!r}"


def verify_certificate(cert: str | Path, run: str | Path | None = None, progress=None) -> VerifyResult:
    """Check ``cert`` against the run it names (or ``run``); see the module docstring."""
    from ..runs import RunDir
    from ..trainers.checkpoint import Checkpointer, manifest_digest
    from .certify import certify_checkpoint, options_from_certificate, sha256_file

    doc = read_certificate(cert)
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
    difference = first_difference(doc, fresh)
    if difference:
        return VerifyResult(False, difference)
    return VerifyResult(True, f"certificate of checkpoint {step} matches its recomputation")
