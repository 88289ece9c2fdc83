"""Outside WHIP/WHEP browser clients from npm, bundled for Chromium at test time and served from another origin.

The clients are devDependencies in package.json (``npm ci`` installs them; ``make test`` runs it): Medooze's
``whip-whep`` (whip.js, whep.js), Eyevinn's ``@eyevinn/whip-web-client`` and ``@eyevinn/webrtc-player``.
``pages/clients.js`` imports them and puts them behind ``window.interop``; esbuild, from node_modules too,
bundles it into a temporary folder, so the product keeps no build step. The page is served by a second HTTP
server on loopback (its own port, so its own origin): every request the clients make to Vitrine is
cross-origin, preflights and all, as on a real site.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from loadtest.browser import ShopPages

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
ENTRY = Path(__file__).resolve().parent / "pages" / "clients.js"
ESBUILD = NODE_MODULES / ".bin" / "esbuild"
# The npm packages under test, by the name the compatibility table gives them.
CLIENTS = {
    "Medooze whip-whep (whip.js / whep.js)": "whip-whep",
    "Eyevinn @eyevinn/whip-web-client": "@eyevinn/whip-web-client",
    "Eyevinn @eyevinn/webrtc-player": "@eyevinn/webrtc-player",
}
NPM_MISSING = "the npm devDependencies are not installed: run `npm ci` at the top of the repository"
PAGE = "/clients.html"


def client_versions() -> dict[str, str]:
    """The installed version of each client, from its package.json (what the compatibility table reports)."""
    versions = {}
    for label, package in CLIENTS.items():
        manifest = NODE_MODULES / package / "package.json"
        assert manifest.is_file(), NPM_MISSING
        versions[label] = str(json.loads(manifest.read_text())["version"])
    return versions


def bundle() -> str:
    """``pages/clients.js`` and the clients it imports, as one browser script (an IIFE)."""
    assert ESBUILD.exists(), NPM_MISSING
    with tempfile.TemporaryDirectory(prefix="vitrine-interop-") as out:
        target = Path(out) / "clients.js"
        subprocess.run(
            [str(ESBUILD), str(ENTRY), "--bundle", "--format=iife", "--platform=browser", f"--outfile={target}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
        script = target.read_text()
    assert "</script" not in script.lower(), "the bundle cannot be inlined"
    return script


def client_page(script: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>WHIP/WHEP clients</title></head>'
        f"<body><script>{script}</script></body></html>"
    )


def serve_clients(script: str) -> ShopPages:
    """The clients' page on an origin of its own (``.origin``; the page is at ``.url(PAGE)``)."""
    return ShopPages(lambda path, _query: client_page(script) if path == PAGE else None)


def row(client: str, version: str, role: str, result: str) -> dict[str, Any]:
    """One row of the compatibility table."""
    return {"client": client, "version": version, "role": role, "result": result}
