"""The inspect product's FastAPI dependencies: its services, read from the app's runtime like the spine's parts
(``signaling.deps``), since the runtime imports this product and cannot be imported by it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from signaling.deps import runtime_part
from signaling.inspect.cases import CaseService
from signaling.inspect.evidence import EvidenceService
from signaling.inspect.sessions import InspectionService

CasesDep = Annotated[CaseService, Depends(runtime_part("cases", CaseService))]
InspectionsDep = Annotated[InspectionService, Depends(runtime_part("inspections", InspectionService))]
EvidenceDep = Annotated[EvidenceService, Depends(runtime_part("evidence", EvidenceService))]
