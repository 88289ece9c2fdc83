"""docker-compose.yml is valid and describes the scaled deployment.

Runs ``docker compose config`` (the Compose v2 plugin) when it works, else
``docker-compose config`` (the Debian package). Neither needs a Docker engine.
Without either tool this test fails rather than skips: ``make test`` installs it
(scripts/install-system-deps).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from vitrine.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = ("postgres", "migrate", "redis", "signaling", "media", "coturn")
VITRINE_SERVICES = ("signaling", "media")
API_SECRET = "compose-test-api-secret-" + "y" * 32
TURN_SECRET = "compose-test-turn-secret-" + "z" * 32
DB_PASSWORD = "compose-test-db-password"
INSTALL_HINT = (
    "neither `docker compose` nor `docker-compose` is installed, so docker-compose.yml cannot be validated. "
    "Install one: `sudo apt-get install -y docker-compose` (Debian), or run ./scripts/install-system-deps "
    "(what `make test` does), or install the Docker Compose v2 plugin."
)


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker is not None:
        try:
            probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            probe = None
        if probe is not None and probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    pytest.fail(INSTALL_HINT, pytrace=False)


def run_config(*extra: str, env_overrides: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    # Only this test's variables: a developer's own VITRINE_* exports must not change the outcome.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")}
    env.update(
        {"VITRINE_API_SECRET": API_SECRET, "VITRINE_TURN_SECRET": TURN_SECRET, "VITRINE_DB_PASSWORD": DB_PASSWORD}
    )
    for key, value in (env_overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "config", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_is_valid() -> None:
    result = run_config("-q")
    assert result.returncode == 0, f"compose config -q failed:\n{result.stdout}\n{result.stderr}"


def test_compose_has_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_config()
    assert result.returncode == 0, f"compose config failed:\n{result.stdout}\n{result.stderr}"
    # PyYAML is always there: uvicorn[standard], a dependency of Vitrine, brings it.
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(SERVICES) <= set(services), sorted(services)
    assert services["signaling"]["command"] == ["signaling"]
    assert services["media"]["command"] == ["media"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["coturn"]["image"].startswith("coturn/coturn")
    assert services["signaling"]["environment"]["VITRINE_API_SECRET"] == API_SECRET
    assert "VITRINE_API_SECRET" not in services["media"]["environment"], "media workers need no API secret"
    # Records in PostgreSQL, migrated before signaling starts; Redis without persistence (coordination only).
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["signaling"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "pgdata" in config["volumes"] and "files" in config["volumes"]
    assert "--appendonly" in services["redis"]["command"]

    # Each Vitrine service's environment must be a configuration Vitrine accepts.
    settings = {name: settings_from_env(services[name]["environment"], monkeypatch) for name in VITRINE_SERVICES}
    for name in ("signaling", "migrate"):
        url = settings_from_env(services[name]["environment"], monkeypatch).database_url
        assert url and url.get_secret_value().startswith("postgresql+asyncpg://vitrine:" + DB_PASSWORD), name
    for name in VITRINE_SERVICES:  # signaling and the workers share one evidence and recordings volume
        assert settings[name].evidence_dir == "/var/lib/vitrine/evidence"
        assert settings[name].recordings_dir == "/var/lib/vitrine/recordings"
    for name, parsed in settings.items():
        assert parsed.redis_url, f"{name}: scaled mode needs VITRINE_REDIS_URL"
        assert parsed.host == "0.0.0.0", f"{name}: a loopback host would confine it to the container"
    media = settings["media"]
    assert media.rtc_interfaces == [], "media candidates must not default to loopback"
    assert 0 < media.rtc_port_min <= media.rtc_port_max


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> mount path, from either syntax: Compose v1 prints `name:path:rw`, v2 a mapping."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts[source] = target
    return mounts


def duration_s(value: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", str(value))
    assert match and any(match.groups()), f"not a compose duration: {value!r}"
    return int(match.group(1) or 0) * 60 + float(match.group(2) or 0)


def test_compose_deployment_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an operator relies on: shared files, migrations before start, drains that finish, no stray settings."""
    result = run_config()
    assert result.returncode == 0, f"compose config failed:\n{result.stdout}\n{result.stderr}"
    services = yaml.safe_load(result.stdout)["services"]

    # Signaling serves and bundles what the workers write: one volume, one path, and the folders on it.
    signaling_mounts, media_mounts = volume_mounts(services["signaling"]), volume_mounts(services["media"])
    assert signaling_mounts.get("files") and signaling_mounts["files"] == media_mounts.get("files")
    for name in VITRINE_SERVICES:
        parsed = settings_from_env(services[name]["environment"], monkeypatch)
        for folder in (parsed.evidence_dir, parsed.recordings_dir):
            assert Path(folder).is_relative_to(signaling_mounts["files"]), f"{name}: {folder} is not on `files`"
    assert volume_mounts(services["postgres"]).get("pgdata") == "/var/lib/postgresql/data"

    # The schema is upgraded by the same image, against a healthy database, before signaling starts.
    assert services["migrate"]["image"] == services["signaling"]["image"] == services["media"]["image"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["signaling"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"
    for name in ("postgres", "redis", "signaling"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"

    # Media workers on the host's network, and stopped only once their drain is over.
    media = settings_from_env(services["media"]["environment"], monkeypatch)
    assert services["media"]["network_mode"] == "host"
    assert duration_s(services["media"]["stop_grace_period"]) > media.drain_timeout_s
    if services["media"].get("deploy", {}).get("replicas", 1) > 1:
        assert media.worker_metrics_port == 0, "replicas on one host network cannot share a metrics port"

    # Every VITRINE_* variable is a setting: a misspelt or removed one would be ignored without a word.
    known = {f"VITRINE_{field.upper()}" for field in Settings.model_fields}
    for name, service in services.items():
        named = {key for key in service.get("environment") or {} if key.startswith("VITRINE_")}
        assert named <= known, f"{name}: not settings: {sorted(named - known)}"


def settings_from_env(environment: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Build Settings exactly as the container would: from these variables and no others."""
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("VITRINE_")]:
            patch.delenv(key)
        for key, value in environment.items():
            patch.setenv(key, "" if value is None else str(value))
        return Settings()


@pytest.mark.parametrize("secret", ["VITRINE_API_SECRET", "VITRINE_DB_PASSWORD"])
def test_compose_refuses_to_render_without_a_secret(secret: str) -> None:
    result = run_config("-q", env_overrides={secret: None})
    assert result.returncode != 0
    assert secret in result.stdout + result.stderr


def test_turn_config_denies_private_peers() -> None:
    conf = (ROOT / "deploy" / "turnserver.conf").read_text()
    lines = {line.strip() for line in conf.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    assert "use-auth-secret" in lines
    assert not any(line.startswith("static-auth-secret") for line in lines), "the secret comes from the environment"
    for denied in (
        "127.0.0.0-127.255.255.255",
        "10.0.0.0-10.255.255.255",
        "172.16.0.0-172.31.255.255",
        "192.168.0.0-192.168.255.255",
        "169.254.0.0-169.254.255.255",
        "::-::1",
        "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ):
        assert f"denied-peer-ip={denied}" in lines, denied
