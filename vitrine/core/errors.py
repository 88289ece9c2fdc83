"""Stable error codes shared by the WebSocket protocol, WHIP/WHEP and the REST API.

Clients switch on ``code``; the message is for humans and never carries secrets.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    MESSAGE_TOO_LARGE = "message_too_large"
    REQUEST_TIMEOUT = "request_timeout"  # an HTTP request's body stalled
    UNSUPPORTED_VERSION = "unsupported_version"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    PERMISSION_DENIED = "permission_denied"
    ROOM_NOT_FOUND = "room_not_found"
    ROOM_EXISTS = "room_exists"
    ROOM_FULL = "room_full"
    ROOM_CLOSED = "room_closed"
    DUPLICATE_IDENTITY = "duplicate_identity"
    INVALID_SDP = "invalid_sdp"
    INVALID_CANDIDATE = "invalid_candidate"
    NEGOTIATION_GLARE = "negotiation_glare"
    NEGOTIATION_FAILED = "negotiation_failed"
    TRACK_NOT_FOUND = "track_not_found"
    TOO_MANY_TRACKS = "too_many_tracks"
    NO_MEDIA_WORKER = "no_media_worker"
    WORKER_UNAVAILABLE = "worker_unavailable"
    WORKER_BUSY = "worker_busy"  # the worker's line of joins is full, or did not move in time: retry shortly
    WORKER_NOT_FOUND = "worker_not_found"
    RATE_LIMITED = "rate_limited"
    SHOP_NOT_FOUND = "shop_not_found"
    SHOP_EXISTS = "shop_exists"
    AGENT_NOT_FOUND = "agent_not_found"
    PRODUCT_NOT_FOUND = "product_not_found"
    URL_NOT_ALLOWED = "url_not_allowed"
    TICKET_NOT_FOUND = "ticket_not_found"
    CALL_NOT_FOUND = "call_not_found"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    SHOW_NOT_FOUND = "show_not_found"
    SHOW_NOT_LIVE = "show_not_live"
    SHOW_ENDED = "show_ended"
    BANNED = "banned"
    MUTED = "muted"
    RECORDING_NOT_FOUND = "recording_not_found"
    CASE_NOT_FOUND = "case_not_found"
    KNOCK_NOT_FOUND = "knock_not_found"
    LINK_EXPIRED = "link_expired"
    LINK_USED = "link_used"
    RECORDING_EXISTS = "recording_exists"
    ARTIFACT_NOT_FOUND = "artifact_not_found"
    CASE_CLOSED = "case_closed"
    CONSENT_REQUIRED = "consent_required"
    EVIDENCE_CORRUPT = "evidence_corrupt"
    STORAGE_UNAVAILABLE = "storage_unavailable"  # a disk is full or read-only: nothing was lost, retry later
    NOT_FOUND = "not_found"  # no such path: the framework's answer, not a route's
    METHOD_NOT_ALLOWED = "method_not_allowed"  # the path takes other methods (``Allow`` says which)
    INTERNAL = "internal"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.INVALID_MESSAGE: 400,
    ErrorCode.MESSAGE_TOO_LARGE: 413,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.UNSUPPORTED_VERSION: 400,
    ErrorCode.INVALID_TOKEN: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.ROOM_NOT_FOUND: 404,
    ErrorCode.WORKER_NOT_FOUND: 404,
    ErrorCode.TRACK_NOT_FOUND: 404,
    ErrorCode.NOT_JOINED: 404,
    ErrorCode.ALREADY_JOINED: 409,
    ErrorCode.ROOM_FULL: 409,
    ErrorCode.ROOM_EXISTS: 409,
    ErrorCode.ROOM_CLOSED: 409,
    ErrorCode.DUPLICATE_IDENTITY: 409,
    ErrorCode.NEGOTIATION_GLARE: 409,
    ErrorCode.INVALID_SDP: 400,
    ErrorCode.INVALID_CANDIDATE: 400,
    ErrorCode.TOO_MANY_TRACKS: 409,
    ErrorCode.NEGOTIATION_FAILED: 422,
    ErrorCode.NO_MEDIA_WORKER: 503,
    ErrorCode.WORKER_UNAVAILABLE: 503,
    ErrorCode.WORKER_BUSY: 503,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.SHOP_NOT_FOUND: 404,
    ErrorCode.SHOP_EXISTS: 409,
    ErrorCode.AGENT_NOT_FOUND: 404,
    ErrorCode.PRODUCT_NOT_FOUND: 404,
    ErrorCode.URL_NOT_ALLOWED: 422,
    ErrorCode.TICKET_NOT_FOUND: 404,
    ErrorCode.CALL_NOT_FOUND: 404,
    ErrorCode.ORIGIN_NOT_ALLOWED: 403,
    ErrorCode.SHOW_NOT_FOUND: 404,
    ErrorCode.SHOW_NOT_LIVE: 409,
    ErrorCode.SHOW_ENDED: 409,
    ErrorCode.BANNED: 403,
    ErrorCode.MUTED: 403,
    ErrorCode.RECORDING_NOT_FOUND: 404,
    ErrorCode.CASE_NOT_FOUND: 404,
    ErrorCode.KNOCK_NOT_FOUND: 404,
    ErrorCode.LINK_EXPIRED: 410,
    ErrorCode.LINK_USED: 410,
    ErrorCode.RECORDING_EXISTS: 409,
    ErrorCode.ARTIFACT_NOT_FOUND: 404,
    ErrorCode.CASE_CLOSED: 409,
    ErrorCode.CONSENT_REQUIRED: 409,
    ErrorCode.EVIDENCE_CORRUPT: 409,
    ErrorCode.STORAGE_UNAVAILABLE: 503,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.INTERNAL: 500,
}


class ErrorBody(BaseModel):
    """The body of every error answer of the REST API, WHIP and WHEP: what OpenAPI documents for each 4xx and 5xx."""

    code: ErrorCode = Field(description="Stable: switch on it")
    message: str = Field(description="For humans; never carries a secret")


def error_responses(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` for the errors it can answer, beyond the ones every route shares (authentication,
    validation, body limits, internal errors; ``signaling/openapi.py`` adds those). Grouped by HTTP status, each
    naming its codes, so the schema says which ``code`` a client may see with which status."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(HTTP_STATUS[code], []).append(code.value)
    return {
        status: {"model": ErrorBody, "description": describe_codes(values), ERROR_CODES_KEY: values}
        for status, values in sorted(by_status.items())
    }


ERROR_CODES_KEY = "x-error-codes"  # the OpenAPI extension listing a response's codes


def describe_codes(values: list[str]) -> str:
    return "Error: " + ", ".join(f"`{value}`" for value in values)


class VitrineError(Exception):
    """A failure that is reported to the caller with a stable code."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref  # the type of the message that caused it, when known before parsing succeeded

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def body(self) -> dict[str, str]:
        """The REST API's error body, whichever layer refuses the request."""
        return {"code": self.code.value, "message": self.message}
