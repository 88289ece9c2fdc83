"""One inspection case driven through the real API, as the shop's backend, the buyer's phone and the
inspector's console would: shared by the session and evidence tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from loadtest.client import VitrineClient
from signaling.inspect.bundle import VerifyResult, verify_bundle
from tests.desk_helpers import DeskClient
from tests.media_helpers import av_tracks, receive_frames
from tests.servers import RunningServer
from vitrine.core.wire.inspect import Case


class CaseFlow:
    """One case driven through the API as the shop's backend, the buyer's phone and the inspector's console."""

    def __init__(self, server: RunningServer, opened: dict[str, Any]) -> None:
        self.server = server
        self.id = opened["case"]["id"]
        self.link_token = opened["link"].split("#t=", 1)[1]
        self.session = ""
        self.console = ""

    @classmethod
    async def open(cls, server: RunningServer, **setup: Any) -> CaseFlow:
        async with server.api() as api:
            response = await api.post(
                "/v1/shops/acme/cases",
                json={"order_ref": "A-7", "claim": "The vase <b>arrived</b> cracked", "language": "de", **setup},
            )
            assert response.status_code == 201, response.text
            case = cls(server, response.json())
            login = await api.post(f"/v1/shops/acme/cases/{case.id}/console")
            assert login.status_code == 200, login.text
            case.console = login.json()["token"]
            assert login.json()["console_url"].endswith(f"/inspector.html#t={case.console}")
        async with httpx.AsyncClient(base_url=server.url) as http:
            redeemed = await http.post("/v1/inspect/redeem", json={"token": case.link_token})
            assert redeemed.status_code == 200, redeemed.text
            case.session = redeemed.json()["token"]
        return case

    def buyer(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url, headers={"Authorization": f"Bearer {self.session}"})

    def inspector(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url, headers={"Authorization": f"Bearer {self.console}"})

    async def consent(self) -> None:
        async with self.buyer() as http:
            view = (await http.get("/v1/inspect/session")).json()
            response = await http.post("/v1/inspect/session/consent", json={"version": view["consent_version"]})
            assert response.status_code == 200, response.text

    async def buyer_token(self) -> str:
        async with self.buyer() as http:
            response = await http.post("/v1/inspect/session/join")
            assert response.status_code == 200, response.text
            return response.json()["token"]

    async def stored(self) -> Case:
        assert self.server.runtime is not None
        return await self.server.runtime.state.records.cases.get("acme", self.id)

    async def join(self, token: str) -> DeskClient:
        client = await DeskClient.connect(self.server.ws_url)
        await client.send({"type": "join", "token": token})
        return client

    async def admitted_pair(self) -> tuple[DeskClient, DeskClient]:
        """The inspector in the room, the buyer knocked and was let in."""
        await self.consent()
        async with self.inspector() as http:
            inspector = await self.join((await http.get("/v1/inspect/console")).json()["join_token"])
        await inspector.expect("joined")
        buyer = await self.join(await self.buyer_token())
        knock = (await buyer.expect("waiting"))["knock"]
        await inspector.send({"type": "admit", "knock": knock})
        await buyer.expect("joined")
        return inspector, buyer

    async def on_camera(self, buyer_token: str, timeout: float = 40.0) -> tuple[VitrineClient, VitrineClient]:
        """The inspector's console and the buyer's phone in the case's room with their media, the inspector
        seeing the buyer's camera: the buyer knocks and is admitted the first time, goes straight in after."""
        async with self.inspector() as http:
            inspector = VitrineClient(
                self.server.url, (await http.get("/v1/inspect/console")).json()["join_token"], tracks=av_tracks()
            )
        buyer = VitrineClient(self.server.url, buyer_token, tracks=av_tracks())
        await inspector.connect()
        joining = asyncio.create_task(buyer.connect(timeout=timeout))
        done, _ = await asyncio.wait(
            {joining, asyncio.create_task(inspector.knocks.get())}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        knocked = [task for task in done if task is not joining]
        if knocked:
            await inspector.send({"type": "admit", "knock": knocked[0].result()["id"]})
        await joining
        video = await inspector.next_remote_track("video", timeout=timeout)
        assert len(await receive_frames(video, 10)) == 10
        return inspector, buyer

    async def verified_bundle(self, folder: Path) -> VerifyResult:
        """The case's evidence bundle as the shop's backend downloads it, checked offline: it must verify."""
        async with self.server.api() as api:
            response = await api.get(f"/v1/shops/acme/cases/{self.id}/bundle")
        assert response.status_code == 200, response.text
        bundle = folder / "bundle.zip"
        bundle.write_bytes(response.content)
        result = verify_bundle(bundle)
        assert result.ok, result.problems
        return result
