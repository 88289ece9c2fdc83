"""What the load harness's tests share (tests/test_loadtest*.py): a real run of ``python -m loadtest run
--embedded`` and the checks on its clients' stages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadtest.agent import STAGES, expected_stages

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 150


def harness(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    """One embedded run with ``args``, in a subprocess: its exit code, its JSON report and its output."""
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest", "run", "--embedded", "--no-progress", "--json", str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert out.exists(), f"no report (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc.returncode, json.loads(out.read_text()), proc.stdout + proc.stderr


def assert_monotonic(client: dict, transport: str = "ws") -> None:
    """A client's report has every stage of ``transport``, and those it went through in order."""
    expected = expected_stages(transport, client["watches"])
    assert set(client["stages_ms"]) == set(STAGES[transport]), client["stages_ms"]
    values = [client["stages_ms"][stage] for stage in expected]
    assert None not in values, client["stages_ms"]
    assert values == sorted(values), client["stages_ms"]
