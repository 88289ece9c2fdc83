"""Inspection cases over HTTP: the shop's backend, and the buyer's phone.

- ``/v1/shops/{shop}/cases`` (API key): open cases and get the buyer's one-time link, the inspector's
  console login, the evidence (files, the signed bundle, a short-lived bundle URL for a reviewer).
- ``/v1/shops/{shop}/buyers/{buyer_ref}`` (API key): erase one buyer's cases.
- ``/v1/inspect/redeem`` spends a link, once; ``/v1/inspect/session/...`` (the buyer's session token,
  ``Authorization: Bearer``) shows the consent text, records consent and hands out join tokens.
- ``/v1/evidence/{shop}/{case}/bundle.zip?exp&sig``: the bundle, for whoever holds a signed URL.

Links are ``<public URL>/inspect.html#t=<token>``: the token rides in the fragment, so it never reaches a
server or proxy log, and the page sends it in a POST body.
"""

from __future__ import annotations

import io
import time
from pathlib import Path as FilePath
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse
from pydantic import Field
from starlette.background import BackgroundTask

from signaling.deps import ApiKeyDep, PageTokenDep, PublicBaseDep, SettingsDep, ShopDep, StateDep
from signaling.inspect.deps import CasesDep, EvidenceDep, InspectionsDep
from signaling.inspect.evidence import EvidenceService
from signaling.inspect.links import BUYER_AUDIENCE, bundle_signature, check_bundle_signature, verify_case_token
from signaling.openapi import media_response
from vitrine.core.desk_tokens import mint_desk_token
from vitrine.core.errors import ErrorCode, VitrineError, error_responses
from vitrine.core.models import Strict
from vitrine.core.records.shops import require_shop
from vitrine.core.wire.inspect import BUYER_REF_PATTERN, Case, CaseSetup, CaseState, CaseView, Erasure

backend = APIRouter(prefix="/v1/shops/{shop}", tags=["inspection"], dependencies=[ApiKeyDep])
public = APIRouter(tags=["inspection"])
ARTIFACT = media_response("The file as captured (its SHA-256 in `X-Content-SHA256`)", "*/*")
BUNDLE = media_response("The signed evidence bundle", "application/zip")


class CaseLink(Strict):
    case: CaseView
    link: str = Field(description="The buyer's one-time link; the token is in the fragment")
    qr_svg: str = Field(description="The link as a QR code, an SVG document")


class Redeem(Strict):
    token: str = Field(max_length=4096)


class BuyerSession(Strict):
    """What the buyer's page gets for a valid link: the case as the buyer may see it, and a session token."""

    case_id: str
    shop_name: str
    order_ref: str
    language: str
    token: str


class SessionView(Strict):
    """The buyer's page after a reload: what to show, and whether consent was already given."""

    case_id: str
    shop_name: str
    order_ref: str
    language: str
    consent_text: str
    consent_version: int
    retention_days: int
    consented: bool
    state: CaseState


class ConsentBody(Strict):
    version: int


class Consented(Strict):
    consented_at_ms: int


class JoinToken(Strict):
    token: str = Field(description="A /v1/rtc join token (it knocks until the inspector has admitted the buyer)")


class ConsoleLogin(Strict):
    token: str
    console_url: str = Field(description="The inspector console; the token goes in the fragment")


class EvidenceKey(Strict):
    alg: str = "Ed25519"
    key_id: str
    public_key_pem: str


class BundleUrl(Strict):
    url: str
    expires_at_ms: int


def _link(base: str, case: Case, token: str) -> CaseLink:
    link = f"{base}/inspect.html#t={token}"
    svg = io.BytesIO()
    segno.make(link, error="m").save(svg, kind="svg", scale=4, border=2, title="Inspection link")
    return CaseLink(case=case.view(), link=link, qr_svg=svg.getvalue().decode())


async def bundle_response(evidence: EvidenceService, case: Case) -> FileResponse:
    """The signed evidence bundle as a download; the temporary file goes once it is sent."""
    path = await evidence.bundle(case)
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"{case.id}-evidence.zip",
        background=BackgroundTask(FilePath(path).unlink, missing_ok=True),
    )


def artifact_response(evidence: EvidenceService, case: Case, artifact_id: str) -> FileResponse:
    artifact, path = evidence.artifact_path(case, artifact_id)
    return FileResponse(
        path,
        media_type=artifact.content_type,
        filename=artifact.file,
        headers={"X-Content-SHA256": artifact.sha256, "Cache-Control": "private, no-store"},
    )


# -- the shop's backend ---------------------------------------------------------------------


@backend.post(
    "/cases",
    status_code=201,
    response_model=CaseLink,
    summary="Open an inspection case and get its link",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def open_case(shop: str, body: CaseSetup, cases: CasesDep, base: PublicBaseDep) -> CaseLink:
    case, token = await cases.open(shop, body)
    return _link(base, case, token)


@backend.get(
    "/cases",
    response_model=list[CaseView],
    summary="The shop's cases, newest first",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def list_cases(shop: str, cases: CasesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[CaseView]:
    return [case.view() for case in await cases.recent(shop, limit)]


@backend.get(
    "/cases/{case}",
    response_model=CaseView,
    summary="One case, with its evidence, notes and verdict",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.CASE_NOT_FOUND),
)
async def get_case(shop: ShopDep, case: str, cases: CasesDep) -> CaseView:
    return (await cases.get(shop.id, case)).view()


@backend.post(
    "/cases/{case}/link",
    response_model=CaseLink,
    summary="A new link for the buyer (the old one stops working)",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.CASE_NOT_FOUND),
)
async def new_link(shop: str, case: str, cases: CasesDep, base: PublicBaseDep) -> CaseLink:
    record, token = await cases.new_link(shop, case)
    return _link(base, record, token)


@backend.post(
    "/cases/{case}/console",
    response_model=ConsoleLogin,
    summary="Mint the inspector's console login",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.CASE_NOT_FOUND),
)
async def console_login(
    shop: ShopDep,
    case: str,
    settings: SettingsDep,
    cases: CasesDep,
    base: PublicBaseDep,
    ttl_s: Annotated[int, Query(ge=60, le=7 * 24 * 3600)] = 12 * 3600,
) -> ConsoleLogin:
    record = await cases.get(shop.id, case)
    token = mint_desk_token(settings, shop=shop.id, subject=record.id, role="inspector", ttl_s=ttl_s)
    return ConsoleLogin(token=token, console_url=f"{base}/inspector.html#t={token}")


@backend.get(
    "/cases/{case}/artifacts/{artifact}",
    response_class=FileResponse,
    summary="One evidence file",
    responses={
        **ARTIFACT,
        **error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.CASE_NOT_FOUND, ErrorCode.ARTIFACT_NOT_FOUND),
    },
)
async def get_artifact(shop: ShopDep, case: str, artifact: str, cases: CasesDep, evidence: EvidenceDep) -> FileResponse:
    return artifact_response(evidence, await cases.get(shop.id, case), artifact)


@backend.get(
    "/cases/{case}/bundle",
    response_class=FileResponse,
    summary="The signed evidence bundle (verify it offline with `vitrine verify`)",
    responses={
        **BUNDLE,
        **error_responses(
            ErrorCode.SHOP_NOT_FOUND,
            ErrorCode.CASE_NOT_FOUND,
            ErrorCode.EVIDENCE_CORRUPT,
            ErrorCode.STORAGE_UNAVAILABLE,
        ),
    },
)
async def get_bundle(shop: ShopDep, case: str, cases: CasesDep, evidence: EvidenceDep) -> FileResponse:
    return await bundle_response(evidence, await cases.get(shop.id, case))


@backend.post(
    "/cases/{case}/bundle-url",
    response_model=BundleUrl,
    summary="A short-lived URL to the bundle, for a reviewer without the shop's credentials",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.CASE_NOT_FOUND),
)
async def bundle_url(
    shop: ShopDep,
    case: str,
    settings: SettingsDep,
    cases: CasesDep,
    base: PublicBaseDep,
    ttl_s: Annotated[int, Query(ge=60, le=7 * 24 * 3600)] = 3600,
) -> BundleUrl:
    record = await cases.get(shop.id, case)
    expires = int(time.time()) + ttl_s
    signature = bundle_signature(settings, shop.id, record.id, expires)
    return BundleUrl(
        url=f"{base}/v1/evidence/{shop.id}/{record.id}/bundle.zip?exp={expires}&sig={signature}",
        expires_at_ms=expires * 1000,
    )


@backend.delete(
    "/buyers/{buyer_ref}",
    response_model=Erasure,
    summary="Erase every case of one buyer (their recordings, photos, notes and logs)",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def erase_buyer(
    shop: ShopDep, buyer_ref: Annotated[str, Path(pattern=BUYER_REF_PATTERN)], evidence: EvidenceDep
) -> Erasure:
    return await evidence.erase_buyer(shop.id, buyer_ref)


@backend.get(
    "/erasures",
    response_model=list[Erasure],
    summary="Erasures carried out, newest first (counts only)",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def list_erasures(
    shop: ShopDep, evidence: EvidenceDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[Erasure]:
    return await evidence.erasures(shop.id, limit)


@public.get(
    "/v1/evidence/{shop}/{case}/bundle.zip",
    response_class=FileResponse,
    summary="The evidence bundle through a signed, short-lived URL",
    responses={
        **BUNDLE,
        **error_responses(
            ErrorCode.INVALID_TOKEN,
            ErrorCode.CASE_NOT_FOUND,
            ErrorCode.LINK_EXPIRED,
            ErrorCode.EVIDENCE_CORRUPT,
            ErrorCode.STORAGE_UNAVAILABLE,
        ),
    },
)
async def signed_bundle(
    shop: str,
    case: str,
    settings: SettingsDep,
    cases: CasesDep,
    evidence: EvidenceDep,
    exp: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=128)],
) -> FileResponse:
    check_bundle_signature(settings, shop, case, exp, sig)
    return await bundle_response(evidence, await cases.get(shop, case))


@public.get(
    "/v1/inspect/evidence-key",
    response_model=EvidenceKey,
    summary="The public key that signs evidence bundles: pin it with `vitrine verify --key`",
)
async def evidence_key(evidence: EvidenceDep) -> EvidenceKey:
    signer = evidence.signer
    return EvidenceKey(key_id=signer.key_id, public_key_pem=signer.public_key_pem)


# -- the buyer's phone ----------------------------------------------------------------------


@public.post(
    "/v1/inspect/redeem",
    response_model=BuyerSession,
    summary="Spend a one-time link (the buyer's phone)",
    responses=error_responses(
        ErrorCode.INVALID_TOKEN, ErrorCode.TOKEN_EXPIRED, ErrorCode.LINK_EXPIRED, ErrorCode.LINK_USED
    ),
)
async def redeem(body: Redeem, cases: CasesDep, state: StateDep) -> BuyerSession:
    case, token = await cases.redeem(body.token)
    shop = await require_shop(state.records.shops, case.shop)
    return BuyerSession(
        case_id=case.id, shop_name=shop.name, order_ref=case.order_ref, language=case.language, token=token
    )


async def _buyer_case(settings: SettingsDep, cases: CasesDep, token: PageTokenDep) -> Case:
    """The case of the buyer's session token from POST /v1/inspect/redeem."""
    claims = verify_case_token(settings, token, BUYER_AUDIENCE)
    try:
        return await cases.get(claims.shop, claims.sub)
    except VitrineError:
        raise VitrineError(ErrorCode.LINK_EXPIRED, "this inspection no longer exists") from None


BuyerCase = Annotated[Case, Depends(_buyer_case)]


@public.get(
    "/v1/inspect/session",
    response_model=SessionView,
    summary="The buyer's case and the consent text",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.LINK_EXPIRED),
)
async def buyer_session(case: BuyerCase, state: StateDep, inspections: InspectionsDep) -> SessionView:
    shop = await require_shop(state.records.shops, case.shop)
    text, version, days = await inspections.consent_text(case)
    return SessionView(
        case_id=case.id,
        shop_name=shop.name,
        order_ref=case.order_ref,
        language=case.language,
        consent_text=text,
        consent_version=version,
        retention_days=days,
        consented=case.consent is not None,
        state=case.state,
    )


@public.post(
    "/v1/inspect/session/consent",
    response_model=Consented,
    summary="The buyer agrees to the recording",
    responses=error_responses(
        ErrorCode.INVALID_MESSAGE, ErrorCode.PERMISSION_DENIED, ErrorCode.CASE_CLOSED, ErrorCode.LINK_EXPIRED
    ),
)
async def buyer_consent(body: ConsentBody, case: BuyerCase, inspections: InspectionsDep) -> Consented:
    case = await inspections.consent(case, body.version)
    assert case.consent is not None
    return Consented(consented_at_ms=case.consent.at_ms)


@public.post(
    "/v1/inspect/session/join",
    response_model=JoinToken,
    summary="A join token for the case's room",
    responses=error_responses(
        ErrorCode.PERMISSION_DENIED, ErrorCode.CASE_CLOSED, ErrorCode.CONSENT_REQUIRED, ErrorCode.LINK_EXPIRED
    ),
)
async def buyer_join(case: BuyerCase, inspections: InspectionsDep) -> JoinToken:
    return JoinToken(token=await inspections.buyer_token(case))
