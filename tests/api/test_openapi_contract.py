"""Schemathesis against the real server: every HTTP operation of ``/openapi.json``, fuzzed with valid and invalid
input, must answer no 5xx and nothing its schema does not promise (status, content type, body, error code).

The embedded server runs on a real socket in the test's event loop; schemathesis, which is synchronous, runs in a
thread beside it. Each operation gets a world of its own (a shop with an agent and a product, a show, a case, a
room) and the path parameters that name it, so requests get past ``404`` into the handlers; half the examples
keep generated path parameters, for the ``404``s. Requests carry the credential their audience takes (the API key;
a show's or a case's console token; a buyer's session token; a join token; a show's stream key), so they get past
``401``.

WHIP and WHEP are fuzzed too, but only as deep as random text goes: schemathesis sends strings as
``application/sdp`` and ``application/trickle-ice-sdpfrag`` bodies, which the SDP guard must refuse with a typed
``400``. A real offer and answer are tests/test_whip_whep.py's. WebSockets are not in the schema.

Beside the generated cases, every property of every JSON body is sent alone as ``null`` (``null_probes``): that is
how a show's ``PATCH`` answered 500, and random generation seldom sends it.

The budget is bounded and repeatable: a fixed number of examples per operation, derandomized, no shrinking, no
example database, and a ceiling on the whole run.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.servers import RunningServer

EXAMPLES_PER_OPERATION = 16  # half valid input, half invalid
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BUDGET_S = 150.0  # a hard ceiling: the run takes 20-40 s on a loaded two-core machine
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

# SDP is text: send generated strings as they are (the guard must refuse them, typed).
schemathesis.serializer.alias(["application/sdp", "application/trickle-ice-sdpfrag"], "text/plain")

_serial = itertools.count(1)


@dataclass
class World:
    """What one operation's requests are about, created through the API."""

    shop: str
    show: str
    case: str
    room: str
    tokens: dict[str, str]  # the bearer credential of each audience

    def path_parameters(self) -> dict[str, str]:
        return {
            "shop": self.shop,
            "show": self.show,
            "case": self.case,
            "room": self.room,
            "name": self.room,
            "agent": "ana",
            "sku": "mug-1",
        }

    def authorization(self, path: str, api_auth: str) -> str:
        """The credential the path's audience takes: a page's or an encoder's bearer token, else the API key."""
        for prefix, audience in (
            ("/v1/live/console", "show_console"),
            ("/v1/inspect/console", "case_console"),
            ("/v1/inspect/session", "buyer"),
            ("/whip/", "join"),
            ("/whep/", "join"),
            ("/v1/live/{shop}/{show}/whip", "stream_key"),
        ):
            if path.startswith(prefix):
                return f"Bearer {self.tokens[audience]}"
        return api_auth


def make_world(api: httpx.Client) -> World:
    serial = next(_serial)
    shop, room = f"fuzz-{serial}", f"fuzz-room-{serial}"

    def ok(response: httpx.Response) -> dict[str, Any]:
        assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
        return response.json() if response.content else {}

    ok(api.post("/v1/shops", json={"id": shop, "name": "Fuzz", "allowed_origins": [f"https://{shop}.example"]}))
    ok(api.put(f"/v1/shops/{shop}/agents/ana", json={"display_name": "Ana", "languages": ["en"]}))
    product = {"title": "Mug", "price": "12.50", "currency": "EUR", "url": f"https://{shop}.example/p/mug-1"}
    ok(api.put(f"/v1/shops/{shop}/products/mug-1", json=product))
    show = ok(api.post(f"/v1/shops/{shop}/shows", json={"title": "Drop", "products": ["mug-1"]}))["id"]
    show_console = ok(api.post(f"/v1/shops/{shop}/shows/{show}/console"))["token"]
    console = ok(
        httpx.get(
            f"{str(api.base_url).rstrip('/')}/v1/live/console", headers={"Authorization": f"Bearer {show_console}"}
        )
    )
    opened = ok(api.post(f"/v1/shops/{shop}/cases", json={"order_ref": "A-1", "claim": "cracked"}))
    case = opened["case"]["id"]
    link = opened["link"].split("#t=", 1)[1]
    ok(api.post("/v1/rooms", json={"name": room}))
    tokens = {
        "show_console": show_console,
        "stream_key": console["stream_key"],
        "case_console": ok(api.post(f"/v1/shops/{shop}/cases/{case}/console"))["token"],
        "buyer": ok(api.post("/v1/inspect/redeem", json={"token": link}))["token"],
        "join": ok(api.post("/v1/tokens", json={"room": room, "identity": "fuzzer", "role": "host"}))["token"],
    }
    return World(shop, show, case, room, tokens)


@dataclass
class Report:
    operations: int = 0
    examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def fuzz(url: str, api_key: str, api_secret: str) -> Report:
    """Run schemathesis over every operation of the server's schema (blocking: call it from a thread)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    api_auth = "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
    report = Report()
    deadline = time.monotonic() + BUDGET_S
    with httpx.Client(base_url=url, auth=(api_key, api_secret), timeout=30) as api, requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            assert time.monotonic() < deadline, f"over the {BUDGET_S}s budget at {operation.label}"
            report.operations += 1
            world = make_world(api)
            secured = bool(operation.definition.raw.get("security"))
            headers = {"Authorization": world.authorization(operation.path, api_auth)} if secured else None
            known = {k: v for k, v in world.path_parameters().items() if k in operation.path_parameters}
            strategies = [
                operation.as_strategy(mode, headers=headers, path_parameters=fixed)
                for mode in MODES
                for fixed in (known, None)
            ]
            run_operation(operation.label, st.one_of(strategies), url, session, report)
            for case in null_probes(operation, schema.raw_schema, known, headers):
                run_case(operation.label, case, url, session, report)
    return report


def null_probes(
    operation: Any, spec: dict[str, Any], path_parameters: dict[str, str], headers: dict[str, str] | None
) -> list[schemathesis.Case]:
    """One request per property of a JSON body, that property ``null`` and nothing else: what crashed a show's
    ``PATCH``. Random generation reaches these rarely; they are few, so every one is sent."""
    body = operation.definition.raw.get("requestBody", {}).get("content", {}).get("application/json", {})
    model = body.get("schema", {})
    if "$ref" in model:
        model = spec["components"]["schemas"][model["$ref"].rsplit("/", 1)[1]]
    return [
        operation.Case(
            body={name: None}, path_parameters=path_parameters, headers=headers, media_type="application/json"
        )
        for name in model.get("properties", {})
    ]


def run_case(label: str, case: schemathesis.Case, url: str, session: requests.Session, report: Report) -> None:
    response = case.call(base_url=url, session=session)
    report.examples += 1
    report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as exc:
        report.failures.append(f"{label} with {case.body}: {exc}")


def run_operation(
    label: str, cases: st.SearchStrategy[Any], url: str, session: requests.Session, report: Report
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the report shows the first failing request
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, session=session)
        report.examples += 1
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)  # raises: Hypothesis stops this operation at its first

    try:
        check()
    except (Exception, FailureGroup) as exc:  # one operation's failure is reported with the others, not instead
        report.failures.append(f"{label}: {exc}")


async def test_no_server_errors_and_no_schema_violations(server: RunningServer) -> None:
    started = time.monotonic()
    report = await asyncio.to_thread(
        fuzz, server.url, server.settings.api_key, server.settings.api_secret.get_secret_value()
    )
    print(
        f"schemathesis: {report.operations} operations, {report.examples} examples, {len(report.failures)} failing, "
        f"{time.monotonic() - started:.0f}s; statuses {dict(sorted(report.statuses.items()))}"
    )
    assert not report.failures, "\n\n".join(report.failures)
    assert report.operations >= 80 and report.examples >= report.operations * EXAMPLES_PER_OPERATION // 2
    assert {200, 201, 204} <= set(report.statuses), "too few requests got past validation: are the worlds right?"


# -- what the fuzzing found, pinned ---------------------------------------------------------------------------------


async def test_show_patch_takes_null_where_it_means_nothing_and_refuses_a_null_title(server: RunningServer) -> None:
    """``{"title": null}`` and ``{"products": null}`` answered 500: the patch took them, and the show it built
    from them did not validate."""
    async with server.api() as api:
        await api.post("/v1/shops", json={"id": "nulls", "name": "Nulls"})
        show = (await api.post("/v1/shops/nulls/shows", json={"title": "Drop", "scheduled_at_ms": 5})).json()
        path = f"/v1/shops/nulls/shows/{show['id']}"
        titled = await api.patch(path, json={"title": None})
        assert titled.status_code == 422 and titled.json()["code"] == "invalid_message", titled.text
        assert "title" in titled.json()["message"]
        cleared = await api.patch(path, json={"products": None, "scheduled_at_ms": None})
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["products"] == [] and cleared.json()["scheduled_at_ms"] is None
        twice = await api.patch(path, json={"products": ["mug-1", "mug-1"]})
        assert twice.status_code == 422 and twice.json()["code"] == "invalid_message", twice.text
        assert (await api.get(path)).json()["title"] == "Drop"  # nothing refused was written


async def test_framework_refusals_are_typed(server: RunningServer) -> None:
    """A body that is not JSON at all was ``400 {"detail": ...}``, outside the documented error shape."""
    async with server.api() as api:
        garbled = await api.post(
            "/v1/rooms", content=b"\x18\x10.\xe8\x9c", headers={"Content-Type": "application/json"}
        )
        assert (garbled.status_code, garbled.json()["code"]) == (400, "invalid_json"), garbled.text
        unknown = await api.get("/v1/no-such-thing")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
        wrong = await api.put("/v1/rooms")
        assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


async def test_a_signed_bundle_url_with_a_non_ascii_signature_is_refused_not_a_crash(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        forged = await http.get("/v1/evidence/acme/cs_000000000000/bundle.zip", params={"exp": 1, "sig": "é"})
    assert (forged.status_code, forged.json()["code"]) == (401, "invalid_token")
