"""The consult product's FastAPI dependency: its service, read from the app's runtime like the spine's parts
(``signaling.deps``), since the runtime imports this product and cannot be imported by it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from signaling.consult.service import ConsultService
from signaling.deps import runtime_of


def _consult(connection: HTTPConnection) -> ConsultService:
    consult: ConsultService = runtime_of(connection).consult
    return consult


ConsultDep = Annotated[ConsultService, Depends(_consult)]
