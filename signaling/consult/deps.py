"""The consult product's FastAPI dependency: its service, read from the app's runtime like the spine's parts
(``signaling.deps``), since the runtime imports this product and cannot be imported by it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from signaling.consult.service import ConsultService
from signaling.deps import runtime_part

ConsultDep = Annotated[ConsultService, Depends(runtime_part("consult", ConsultService))]
