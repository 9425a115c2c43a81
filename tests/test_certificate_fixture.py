"""Certificates written before a refactor are reproduced after it, byte for byte.

``tests/fixtures/runs/`` holds two frozen run directories (the config, one checkpoint, the certificate of that
checkpoint): a 120-step debug AMBS run on ``grid`` (``--rollouts auto``) and a 300-step DQN run on ``grid`` (no
world model: the model-level section and the shield audit are unavailable). See ``tests/fixtures/runs/README.md``
for the commands that made them.

Recertifying the checkpoint with the options its certificate records must give the same file: the same bytes once
the two fields that say *when* and *where* (``created_utc``, ``provenance.run``) are set to the stored ones and the
document is sealed again. That holds where the platform and the library versions are the certified ones (what
``verify`` compares exactly, too); elsewhere the certificate must still pass ``verify``'s comparison at a relative
1e-9.
"""

import json
import shutil
from pathlib import Path

import pytest

from ambs_verify.reports.certificate import read_certificate, write_certificate
from ambs_verify.reports.certify import certify_checkpoint, options_from_certificate
from ambs_verify.reports.verify import check_recomputation

FIXTURES = Path(__file__).parent / "fixtures" / "runs"


@pytest.mark.parametrize("name", ["ambs", "dqn"])
def test_a_stored_certificate_is_reproduced_byte_for_byte(name, tmp_path):
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    (path,) = sorted((run / "certificates").glob("*.json"))
    stored_bytes = path.read_bytes()
    stored = read_certificate(path)
    step = stored["provenance"]["checkpoint_step"]

    fresh = certify_checkpoint(run, step, options_from_certificate(stored))
    fresh["created_utc"] = stored["created_utc"]
    fresh["provenance"]["run"] = stored["provenance"]["run"]
    same_environment = all(fresh["provenance"][key] == stored["provenance"][key] for key in ("platform", "versions"))
    if same_environment:
        out = write_certificate(tmp_path / "fresh.json", fresh)
        assert out.read_bytes() == stored_bytes
    else:
        result = check_recomputation(stored, json.loads(json.dumps(fresh)))
        assert result.ok, result.reason


def test_the_fixtures_are_the_cases_they_claim():
    """The AMBS fixture has a model level and both audits; the DQN one has neither model level nor shield audit."""
    ambs = read_certificate(next((FIXTURES / "ambs" / "certificates").glob("*.json")))
    dqn = read_certificate(next((FIXTURES / "dqn" / "certificates").glob("*.json")))
    assert ambs["provenance"]["agent"] == "ambs" and ambs["options"]["rollouts"] == "auto"
    assert ambs["model"]["available"] and ambs["audit"]["available"] and ambs["deployed"]["available"]
    assert dqn["provenance"]["agent"] == "dqn"
    assert not dqn["model"]["available"] and not dqn["audit"]["available"] and dqn["deployed"]["available"]
