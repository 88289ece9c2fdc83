"""The live product's FastAPI dependencies: its services, read from the app's runtime like the spine's parts
(``signaling.deps``), since the runtime imports this product and cannot be imported by it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from signaling.deps import runtime_of
from signaling.live.actions import LiveActions
from signaling.live.shows import ShowService


def _shows(connection: HTTPConnection) -> ShowService:
    shows: ShowService = runtime_of(connection).shows
    return shows


def _live(connection: HTTPConnection) -> LiveActions:
    live: LiveActions = runtime_of(connection).live
    return live


ShowsDep = Annotated[ShowService, Depends(_shows)]
LiveActionsDep = Annotated[LiveActions, Depends(_live)]
