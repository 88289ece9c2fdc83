"""`vitrine loadtest` from a plain `pip install vitrine`: without the bench extra (numpy, matplotlib) it runs and
reports, and only the plots ask for the extra, by its exact install command.

numpy and matplotlib are made unimportable in the child processes by a ``sitecustomize`` on PYTHONPATH whose meta
path finder refuses them (the harness's worker processes inherit the environment, so they go without too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXTRA = "pip install 'vitrine[bench]'"
RUN_TIMEOUT_S = 150
HIDE = '''\
import sys


class HideBenchExtra:
    """numpy and matplotlib are not installed, as after a plain `pip install vitrine`."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("numpy", "matplotlib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, HideBenchExtra())
'''


@pytest.fixture
def without_bench_extra(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python processes cannot import numpy or matplotlib."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    for module in ("numpy", "matplotlib"):
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], env=env, capture_output=True, text=True)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, f"{module} is still importable"
    return env


def vitrine(env: dict[str, str], *args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitrine.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_run_without_the_bench_extra_reports_and_names_the_extra_for_its_plots(
    without_bench_extra: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    result = vitrine(
        without_bench_extra,
        "loadtest",
        "run",
        "--embedded",
        "--scenario",
        "consult",
        "--pairs",
        "1",
        "--duration",
        "1",
        "--no-progress",
        "--json",
        str(out),
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: an SLO failed, on a busy machine; it still ran
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["summary"]["clients"] == report["summary"]["joined"] == 2, report["summary"]
    assert out.with_suffix(".md").read_text() == result.stdout
    assert EXTRA in result.stderr
    assert not list(tmp_path.glob("*.png"))


def test_plots_asked_for_without_the_bench_extra_name_the_extra_before_any_run(
    without_bench_extra: dict[str, str], tmp_path: Path
) -> None:
    result = vitrine(
        without_bench_extra, "loadtest", "run", "--embedded", "--plots", str(tmp_path / "plots"), timeout=60
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert EXTRA in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "plots").exists()
