"""The README's configuration table is the one generated from ``Settings``, and it covers every setting.

When this fails after a setting was added or changed, run the command the failure prints (it rewrites the table
between ``<!-- settings:start -->`` and ``<!-- settings:end -->``), and describe the new setting if it asks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vitrine.core import settings_doc
from vitrine.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def table_rows(readme: str) -> dict[str, list[str]]:
    """The README's table between the markers, by variable: [type, default, meaning]."""
    section = readme.split(settings_doc.START, 1)[1].split(settings_doc.END, 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("| `VITRINE_"):
            # Split on the cell separators only, not on escaped pipes inside a cell.
            cells = [cell.strip() for cell in line.replace("\\|", "\0").strip("|").split("|")]
            rows[cells[0].strip("`")] = [cell.replace("\0", "\\|") for cell in cells[1:]]
    return rows


def test_readme_table_is_the_generated_one() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vitrine.core.settings_doc", "--check", str(README)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (
        f"README.md's configuration table differs from Settings. Fix it with:\n"
        f"    .venv/bin/{settings_doc.COMMAND}\n{result.stderr}\n{result.stdout[-4000:]}"
    )


def test_every_setting_has_a_row_with_its_real_default() -> None:
    rows = table_rows(README.read_text(encoding="utf-8"))
    expected = {f"VITRINE_{name.upper()}" for name in Settings.model_fields}
    assert set(rows) == expected, f"missing: {sorted(expected - set(rows))}, extra: {sorted(set(rows) - expected)}"
    # Spot checks against values read independently of the generator: the table says what Settings() does.
    defaults = Settings.model_construct()
    assert rows["VITRINE_PORT"][1] == f"`{defaults.port}`"
    assert rows["VITRINE_MAX_BODY_BYTES"][1] == f"`{defaults.max_body_bytes}`"
    assert rows["VITRINE_MAX_BODY_BYTES"][0] == "integer, ≥ 65536"
    assert rows["VITRINE_REDIS_URL"][1] == "*(unset)*"
    assert rows["VITRINE_API_SECRET"][0] == "secret"
    assert rows["VITRINE_ALLOWED_ORIGINS"][0] == "list, comma-separated"
    assert rows["VITRINE_ICE_SERVERS"][0] == "JSON list"
    assert rows["VITRINE_NODE_ID"][1] == "`node-<random>`"
    for variable, (kind, default, meaning) in rows.items():
        assert kind and default and len(meaning) >= 10, f"{variable}: incomplete row {kind!r} {default!r} {meaning!r}"


def test_check_reports_a_stale_table_with_the_fix(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    text = README.read_text(encoding="utf-8")
    stale.write_text(text.replace("| `VITRINE_PORT` |", "| `VITRINE_PORT_OLD` |"), encoding="utf-8")
    assert settings_doc.main(["--check", str(stale)]) == 1
    assert "VITRINE_PORT_OLD" in stale.read_text(encoding="utf-8"), "--check must not write"
    assert settings_doc.main([str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == text


def test_readme_without_markers_is_an_error(tmp_path: Path) -> None:
    bare = tmp_path / "README.md"
    bare.write_text("# no table here\n", encoding="utf-8")
    assert settings_doc.main(["--check", str(bare)]) == 2


def test_an_undescribed_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Undescribed(Settings):
        port: int = 7880  # redeclared without Field(description=...)

    monkeypatch.setattr(settings_doc, "Settings", Undescribed)
    with pytest.raises(settings_doc.SettingsDocError, match="VITRINE_PORT has no description"):
        settings_doc.settings_table()
    assert settings_doc.main(["--check", str(README)]) == 2
