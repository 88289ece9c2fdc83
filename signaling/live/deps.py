"""The live product's FastAPI dependencies: its services, read from the app's runtime like the spine's parts
(``signaling.deps``), since the runtime imports this product and cannot be imported by it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from signaling.deps import runtime_part
from signaling.live.actions import LiveActions
from signaling.live.shows import ShowService

ShowsDep = Annotated[ShowService, Depends(runtime_part("shows", ShowService))]
LiveActionsDep = Annotated[LiveActions, Depends(runtime_part("live", LiveActions))]
