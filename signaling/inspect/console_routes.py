"""The inspector's console over HTTP (``Authorization: Bearer <console token>``, minted by the shop's backend at
``POST /v1/shops/{shop}/cases/{case}/console``): the case, a join token for its room, notes, the end of the
session with a verdict, the evidence files and the signed bundle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import Field

from signaling.deps import PageTokenDep, SettingsDep, StateDep
from signaling.inspect.deps import CasesDep, EvidenceDep, InspectionsDep
from signaling.inspect.links import buyer_identity
from signaling.inspect.routes import ARTIFACT, BUNDLE, artifact_response, bundle_response
from vitrine.core.desk_tokens import verify_desk_token
from vitrine.core.errors import ErrorCode, error_responses
from vitrine.core.models import Strict
from vitrine.core.records.shops import require_shop
from vitrine.core.wire.inspect import Case, CaseView, Note, Verdict

router = APIRouter(prefix="/v1/inspect/console", tags=["inspection"])
INSPECTOR_NAME = "Seller"


class ConsoleView(Strict):
    case: CaseView
    shop_name: str
    join_token: str | None = Field(description="A /v1/rtc token for the case's room (room admin); none once closed")
    buyer_identity: str


class NoteBody(Strict):
    text: str = Field(min_length=1, max_length=4000)


class EndBody(Strict):
    verdict: Verdict
    comment: str = Field(default="", max_length=4000)


async def _console_case(settings: SettingsDep, cases: CasesDep, token: PageTokenDep) -> Case:
    """The case of the console token from POST /v1/shops/{shop}/cases/{id}/console."""
    claims = verify_desk_token(settings, token, "inspector")
    return await cases.get(claims.shop, claims.sub)


ConsoleCase = Annotated[Case, Depends(_console_case)]


@router.get(
    "",
    response_model=ConsoleView,
    summary="The case, and a join token for its room",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.CASE_NOT_FOUND),
)
async def console_view(case: ConsoleCase, state: StateDep, inspections: InspectionsDep) -> ConsoleView:
    shop = await require_shop(state.records.shops, case.shop)
    token = None if case.outcome else await inspections.inspector_token(case, INSPECTOR_NAME)
    return ConsoleView(case=case.view(), shop_name=shop.name, join_token=token, buyer_identity=buyer_identity(case.id))


@router.post(
    "/notes",
    response_model=Note,
    summary="Add a case note",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.CASE_NOT_FOUND, ErrorCode.CASE_CLOSED),
)
async def add_note(body: NoteBody, case: ConsoleCase, evidence: EvidenceDep) -> Note:
    return await evidence.add_note(case, INSPECTOR_NAME, body.text)


@router.post(
    "/end",
    response_model=CaseView,
    summary="End the session with a verdict",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.CASE_NOT_FOUND, ErrorCode.CASE_CLOSED),
)
async def end_session(body: EndBody, case: ConsoleCase, evidence: EvidenceDep) -> CaseView:
    return (await evidence.end(case, body.verdict, body.comment, INSPECTOR_NAME)).view()


@router.get(
    "/artifacts/{artifact}",
    response_class=FileResponse,
    summary="One evidence file",
    responses={
        **ARTIFACT,
        **error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.CASE_NOT_FOUND, ErrorCode.ARTIFACT_NOT_FOUND),
    },
)
async def get_artifact(artifact: str, case: ConsoleCase, evidence: EvidenceDep) -> FileResponse:
    return artifact_response(evidence, case, artifact)


@router.get(
    "/bundle",
    response_class=FileResponse,
    summary="The signed evidence bundle",
    responses={
        **BUNDLE,
        **error_responses(
            ErrorCode.PERMISSION_DENIED,
            ErrorCode.CASE_NOT_FOUND,
            ErrorCode.EVIDENCE_CORRUPT,
            ErrorCode.STORAGE_UNAVAILABLE,
        ),
    },
)
async def get_bundle(case: ConsoleCase, evidence: EvidenceDep) -> FileResponse:
    return await bundle_response(evidence, case)
