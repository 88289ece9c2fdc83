"""The inspect product's FastAPI dependencies: its services, read from the app's runtime like the spine's parts
(``signaling.deps``), since the runtime imports this product and cannot be imported by it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from signaling.deps import runtime_of
from signaling.inspect.cases import CaseService
from signaling.inspect.evidence import EvidenceService
from signaling.inspect.sessions import InspectionService


def _cases(connection: HTTPConnection) -> CaseService:
    cases: CaseService = runtime_of(connection).cases
    return cases


def _inspections(connection: HTTPConnection) -> InspectionService:
    inspections: InspectionService = runtime_of(connection).inspections
    return inspections


def _evidence(connection: HTTPConnection) -> EvidenceService:
    evidence: EvidenceService = runtime_of(connection).evidence
    return evidence


CasesDep = Annotated[CaseService, Depends(_cases)]
InspectionsDep = Annotated[InspectionService, Depends(_inspections)]
EvidenceDep = Annotated[EvidenceService, Depends(_evidence)]
