"""The API's contract as it behaves: typed errors for what the framework refuses, an OpenAPI document that lists
them, and a docs UI that works without the internet.

- **Every error is ``{code, message}``.** Routes raise ``VitrineError``; what FastAPI or Starlette refuse by
  themselves (a body that is not JSON, an unknown path, a method a path does not take) and any unexpected exception
  get the same body here, so a client never has to parse a second error shape.
- **The schema says which errors each operation answers.** A route names its own with ``error_responses`` (in
  ``vitrine/core/errors.py``); what every route shares follows from its shape and is added here: ``401`` when it
  is authenticated, ``422`` when it takes input, ``400``/``408``/``413`` when it takes a body, ``500`` for all.
  Each error response narrows ``ErrorBody.code`` to the codes it lists, so tests/api/test_openapi_contract.py
  (schemathesis) checks the codes too, not only the statuses.
- **WHIP and WHEP** read and write SDP, not JSON, so their routes cannot declare their bodies to FastAPI: the
  operations tagged ``whip-whep`` get them here (an ``application/sdp`` offer and answer with ``Location``,
  ``application/trickle-ice-sdpfrag`` patches).
- **``/docs`` is offline.** Swagger UI's scripts and styles come from the ``swagger-ui-bundle`` package, served
  under ``/docs-assets``; FastAPI's default pulls them from a CDN, which leaves the page blank on a closed network.
  The packaged Swagger UI is 4.x, which reads OpenAPI 3.0 only, so it is given a 3.0 copy of the document
  (``as_openapi_30``). ReDoc has no packaged copy, so it is not offered.
"""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from signaling.deps import API_KEY_SCHEME
from vitrine.core.errors import ERROR_CODES_KEY, HTTP_STATUS, ErrorBody, ErrorCode, describe_codes

DOCS_ASSETS = "/docs-assets"
SWAGGER_SCHEMA = "/docs/openapi-3.0.json"  # the packaged Swagger UI (4.x) reads OpenAPI 3.0 only
ERROR_REF = "#/components/schemas/ErrorBody"
SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"

# What the framework itself refuses, by status: the code its typed body carries.
_FRAMEWORK_CODES = {
    400: ErrorCode.INVALID_JSON,  # "There was an error parsing the body"
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    408: ErrorCode.REQUEST_TIMEOUT,
    413: ErrorCode.MESSAGE_TOO_LARGE,
}

# The errors of the WHIP/WHEP routes (signaling/routes/whip.py, signaling/live/media_routes.py), by method.
_WHIP_ERRORS = {
    "post": (
        ErrorCode.INVALID_MESSAGE,
        ErrorCode.INVALID_SDP,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.BANNED,
        ErrorCode.ROOM_NOT_FOUND,
        ErrorCode.TRACK_NOT_FOUND,
        ErrorCode.SHOW_NOT_FOUND,
        ErrorCode.ROOM_FULL,
        ErrorCode.ROOM_CLOSED,
        ErrorCode.SHOW_NOT_LIVE,
        ErrorCode.SHOW_ENDED,
        ErrorCode.TOO_MANY_TRACKS,
        ErrorCode.NEGOTIATION_FAILED,
        ErrorCode.RATE_LIMITED,
        ErrorCode.NO_MEDIA_WORKER,
        ErrorCode.WORKER_UNAVAILABLE,
        ErrorCode.WORKER_BUSY,  # with Retry-After: the worker's line of joins is full (signaling/routes/whip.py)
    ),
    "patch": (
        ErrorCode.INVALID_MESSAGE,
        ErrorCode.INVALID_CANDIDATE,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.NOT_JOINED,
        ErrorCode.ROOM_NOT_FOUND,
        ErrorCode.SHOW_NOT_FOUND,
        ErrorCode.SHOW_NOT_LIVE,
        ErrorCode.WORKER_UNAVAILABLE,
    ),
    "delete": (
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.NOT_JOINED,
        ErrorCode.ROOM_NOT_FOUND,
        ErrorCode.SHOW_NOT_FOUND,
        ErrorCode.SHOW_NOT_LIVE,
        ErrorCode.WORKER_UNAVAILABLE,
    ),
}


def media_response(description: str, *media_types: str) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` entry for a ``200`` that is a file or text, not JSON: FastAPI cannot tell its type
    from a ``Response`` or ``FileResponse``, and would document none."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": description, "content": {media_type: binary for media_type in media_types}}}


def install_api_contract(app: FastAPI) -> None:
    """Typed framework errors, the completed OpenAPI document and ``/docs``. Call it before the catch-all static
    mount at ``/``, which would otherwise answer ``/docs`` and ``/docs-assets``."""
    app.add_exception_handler(HTTPException, _framework_error)
    app.add_exception_handler(Exception, _internal_error)

    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = FastAPI.openapi(app)  # FastAPI's, cached until the routes change
        if not completed or completed[0] is not schema:
            complete_schema(schema)
            completed[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)), name="docs-assets")

    @app.get(SWAGGER_SCHEMA, include_in_schema=False)
    async def swagger_schema() -> JSONResponse:
        return JSONResponse(as_openapi_30(app.openapi()))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=SWAGGER_SCHEMA,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


async def _framework_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _FRAMEWORK_CODES.get(exc.status_code, ErrorCode.INVALID_MESSAGE)
    message = exc.detail if isinstance(exc.detail, str) else code.value
    return JSONResponse({"code": code.value, "message": message}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    """A bug: the client gets the typed 500, the log gets the traceback (Starlette re-raises it to the server)."""
    return JSONResponse({"code": ErrorCode.INTERNAL.value, "message": "internal error"}, status_code=500)


def complete_schema(schema: dict[str, Any]) -> None:
    """Add the shared error responses, the error model and the WHIP/WHEP bodies to FastAPI's document, in place."""
    components = schema.setdefault("components", {})
    models = components.setdefault("schemas", {})
    if "ErrorBody" not in models:
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        models.update(body.pop("$defs", {}))
        models["ErrorBody"] = body
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if "whip-whep" in operation.get("tags", ()):
                _document_sdp(method, operation)
            _document_errors(method, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        models.pop(unused, None)


def as_openapi_30(schema: dict[str, Any]) -> dict[str, Any]:
    """The document in OpenAPI 3.0 terms, for the packaged Swagger UI, which is 4.x and shows nothing of a 3.1
    document. ``/openapi.json`` stays 3.1 (FastAPI's, and what clients and schemathesis read); this copy only
    rewrites what 3.0 spells differently: ``anyOf [X, null]`` is ``nullable``, ``const`` an ``enum`` of one, a
    numeric ``exclusiveMinimum`` a ``minimum``, and ``propertyNames`` does not exist."""

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: convert(value) for key, value in node.items() if key != "propertyNames"}
        for union in ("anyOf", "oneOf"):
            options = node.get(union)
            if isinstance(options, list) and {"type": "null"} in options:
                rest = [option for option in options if option != {"type": "null"}]
                node.pop(union)
                node.update(rest[0] if len(rest) == 1 and "$ref" not in rest[0] else {union: rest})
                node["nullable"] = True
        if "const" in node:
            node["enum"] = [node.pop("const")]
        if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(node["exclusiveMinimum"], bool):
            node["minimum"], node["exclusiveMinimum"] = node["exclusiveMinimum"], True
        return node

    converted: dict[str, Any] = convert(schema)
    converted["openapi"] = "3.0.3"
    return converted


def _shared_errors(method: str, operation: dict[str, Any]) -> list[tuple[int, ErrorCode]]:
    """What any operation of this shape can answer, whatever its handler does, as (status, code)."""
    codes = [ErrorCode.INTERNAL]
    security = operation.get("security", [])
    if security:
        codes.append(ErrorCode.INVALID_TOKEN)
        if any(API_KEY_SCHEME not in requirement for requirement in security):
            codes.append(ErrorCode.TOKEN_EXPIRED)  # bearer tokens expire; the API key does not
    if "requestBody" in operation:
        codes += [ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.REQUEST_TIMEOUT]
        if "application/json" in operation["requestBody"].get("content", {}):
            codes.append(ErrorCode.INVALID_JSON)
    pairs = [(HTTP_STATUS[code], code) for code in codes]
    if operation.get("parameters") or "requestBody" in operation:
        pairs.append((422, ErrorCode.INVALID_MESSAGE))  # FastAPI's validation, whatever HTTP_STATUS says (400)
    if "whip-whep" in operation.get("tags", ()):
        pairs += [(HTTP_STATUS[code], code) for code in _WHIP_ERRORS.get(method, ())]
        if method == "patch":  # RFC 9725: If-Match naming another ICE session
            pairs.append((412, ErrorCode.NEGOTIATION_FAILED))
    return pairs


def _document_errors(method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    by_status: dict[str, list[str]] = {}
    for status, response in responses.items():
        if ERROR_CODES_KEY in response:
            by_status[status] = list(response[ERROR_CODES_KEY])
    for status_code, code in _shared_errors(method, operation):
        values = by_status.setdefault(str(status_code), [])
        if code.value not in values:
            values.append(code.value)
    for status, values in by_status.items():
        narrowed = {"allOf": [{"$ref": ERROR_REF}], "properties": {"code": {"enum": values}}}
        responses[status] = {
            "description": describe_codes(values),
            "content": {"application/json": {"schema": narrowed}},
            ERROR_CODES_KEY: values,
        }
    operation["responses"] = dict(sorted(responses.items()))


def _document_sdp(method: str, operation: dict[str, Any]) -> None:
    """The SDP bodies of a WHIP/WHEP operation (RFC 9725), which its route reads and writes by hand."""
    text = {"schema": {"type": "string"}}
    responses = operation.setdefault("responses", {})
    if method == "post":
        operation["requestBody"] = {"required": True, "description": "The SDP offer", "content": {SDP: text}}
        responses["201"] = {
            "description": "The SDP answer; the session's resource is at `Location`",
            "content": {SDP: text},
            "headers": {
                "Location": {
                    "description": "The session: `PATCH` it to trickle candidates, `DELETE` it to stop",
                    "schema": {"type": "string"},
                    "required": True,
                },
                "Link": {
                    "description": 'ICE servers (`rel="ice-server"`), with TURN credentials when configured',
                    "schema": {"type": "string"},
                },
                "ETag": {
                    "description": "The session's ICE session: send it as `If-Match` with trickle `PATCH`es",
                    "schema": {"type": "string"},
                },
            },
        }
    elif method == "patch":
        operation["requestBody"] = {
            "required": True,
            "description": "Trickled candidates and `a=end-of-candidates`, as an SDP fragment",
            "content": {SDPFRAG: text},
        }
        responses["204"] = {"description": "Applied"}
    elif method == "delete":
        responses["200"] = {"description": "The session has ended"}
    elif method == "options":
        header = {"schema": {"type": "string"}}
        responses["200"] = {
            "description": "What the resource takes (RFC 9725 section 4.2); an endpoint's ICE servers in `Link`",
            "headers": {name: header for name in ("Allow", "Accept-Post", "Accept-Patch", "Link")},
        }
