"""Everything a running signaling node holds, built once at startup from Settings.

A node reaches media workers through its ``WorkerLink``: in this process (the embedded default, the LiveKit
single-node pattern) or over Redis (scaled). Which one, and whether a worker runs in this process, is the
composition root's choice (``vitrine.embedded``): it passes ``start_runtime`` a ``LocalMedia`` to start one.
With no Redis URL coordination is in memory; with one, this node joins a scaled cluster. Records are always
in the database (``signaling.records``: SQLite in the data directory unless a URL is set).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import assert_never

from media.worker import MediaWorker
from signaling.consult.policy import ConsultPolicy
from signaling.consult.service import ConsultService
from signaling.hub import SessionHub
from signaling.inspect.cases import CaseService
from signaling.inspect.evidence import EvidenceService
from signaling.inspect.policy import InspectionPolicy
from signaling.inspect.sessions import InspectionService
from signaling.live.actions import LiveActions
from signaling.live.policy import LivePolicy
from signaling.live.shows import ShowService
from signaling.local_media import LocalMedia, RunningMedia
from signaling.placement import worker_alive
from signaling.policy import Policies
from signaling.recordings import RecordingFiles
from signaling.records import Records, open_records
from signaling.rooms import RoomService
from signaling.state import State, open_state
from signaling.webhooks import WebhookDispatcher
from signaling.worker_link import BusWorkerLink, LocalWorkerLink, WorkerLink
from vitrine.core.config import Settings
from vitrine.core.shops import Shop
from vitrine.core.state.epoch import EpochWatch
from vitrine.core.tasks import TaskSet, stop_tasks
from vitrine.core.wire.rpc import ArtifactStored, JoinQueued, PeerGone, PeerOffer, WorkerPush

logger = logging.getLogger(__name__)

REGISTRATION_POLL_S = 0.05
LEASE_SWEEP_LOCK = "leases"  # taken for one renewal period and never released: one sweep per period, cluster-wide


@dataclass
class Runtime:
    settings: Settings
    state: State
    records: Records  # every store, the products' too; ``state.records`` is this, seen as the shared stores
    link: WorkerLink
    hub: SessionHub
    rooms: RoomService
    webhooks: WebhookDispatcher
    consult: ConsultService
    live: LiveActions
    shows: ShowService
    cases: CaseService
    inspections: InspectionService
    evidence: EvidenceService
    worker: RunningMedia | None = None
    _watchdog: asyncio.Task[None] | None = field(default=None, repr=False)
    _leases: asyncio.Task[None] | None = field(default=None, repr=False)
    _gone: TaskSet = field(default_factory=TaskSet, repr=False)  # leaves of participants whose peer is gone

    @property
    def media_worker(self) -> MediaWorker | None:
        return self.worker.worker if self.worker else None

    async def on_push(self, push: WorkerPush) -> None:
        """What a worker sends unasked: an offer goes to the participant's session; a file it stored from an
        inspection's data channel goes to the case, even if the buyer's socket has gone meanwhile; a peer that
        is gone leaves the room. That leave runs apart: it may call workers, whose answers arrive through the
        same inbox this push came in by."""
        match push:
            case PeerOffer():
                await self.hub.on_offer(push)
            case ArtifactStored(room=room, artifact=artifact):
                await self.inspections.add_artifact(room, artifact)
            case PeerGone(room=room, sid=sid, reason=reason):
                self._gone.spawn(self.rooms.peer_gone(room, sid, reason))
            case JoinQueued():
                pass  # the worker link tells the waiting join itself (signaling/worker_link.py)
            case _:
                assert_never(push)

    async def delete_shop(self, shop_id: str) -> Shop | None:
        """Delete a shop with what every product keeps of it; None: there is no such shop. Its record goes last,
        and takes its agents, products, calls and requests with it (ON DELETE CASCADE)."""
        for show in await self.records.shows.list_shows(shop_id, limit=10_000):
            await self.shows.delete(show)  # a live one ends first; each show's log and room state go
        if await self.records.shops.get_shop(shop_id) is not None:
            for case in await self.cases.recent(shop_id, limit=None):
                await self.evidence.purge(case)  # its room, log, files and record
        deleted = await self.records.shops.delete_shop(shop_id)
        if deleted is not None:
            await self.state.presence.drop_shop(shop_id)  # coordination: no cascade reaches it
        return deleted

    async def close(self) -> None:
        await self.evidence.stop()
        await self.consult.stop()
        await self.live.stop()
        await self.webhooks.stop()  # first: its loops still read the state closed below
        await self._gone.cancel()
        await self.rooms.stop()
        await stop_tasks(self._watchdog, self._leases)
        if self.worker is not None:
            await self.worker.stop()
        await self.link.close()
        await self.state.close()

    async def _watch_workers(self) -> None:
        """Send clients whose worker stopped beating to reconnect, so they are placed again: every client of a
        room whose origin died, the viewers of a relay that died. Rebuild what a loss of coordination state
        took (``vitrine.core.state.epoch``)."""
        epoch = EpochWatch(self.state.coordination.epoch)
        while True:
            await asyncio.sleep(self.settings.worker_heartbeat_s)
            try:
                if await epoch.changed():
                    await self.rebuild_coordination()
                for name in self.hub.local_rooms():
                    await self._check_workers(name)
            except Exception:
                logger.exception("worker watchdog failed")

    async def _keep_leases(self) -> None:
        """Renew the leases of this node's participants; and, on whichever live node takes the sweep's lock this
        period, remove the participants whose lease ran out (their node died: ``vitrine.core.state.leases``)."""
        period = self.settings.participant_lease_renew_s
        while True:
            await asyncio.sleep(period)
            try:
                await self.rooms.renew_leases()
                if await self.state.locks.acquire(LEASE_SWEEP_LOCK, max(1, int(period * 1000))) is not None:
                    if expired := await self.rooms.expire_leases():
                        logger.warning("%d participant(s) expired: their signaling node stopped renewing", expired)
            except Exception:
                logger.exception("participant leases failed")

    async def rebuild_coordination(self) -> None:
        """Redis lost everything: put back the rooms this node's sessions are in (unplaced: a worker that held
        them has closed them), send the sessions and knockers to reconnect, so they join again and are placed
        afresh, and let consult consoles announce themselves again. Records are in the database: none is
        touched."""
        self.rooms.forget_leases()  # every session here is sent to reconnect below; none is renewed meanwhile
        rooms = self.hub.local_room_records()
        for room in rooms:
            await self.state.rooms.create_room(room.model_copy(update={"worker_id": None}))
        await self._some_worker_registered()  # clients sent back before any worker is would find none
        for room in rooms:
            await self.hub.kick_local(room.name, "the server lost its coordination state", reconnect=True)
        await self.hub.send_knockers_away("the server lost its coordination state")
        await self.consult.desk.rebuild()
        logger.warning("coordination rebuilt: %d room(s) re-created, their clients sent to reconnect", len(rooms))

    async def _some_worker_registered(self) -> None:
        """Wait, at most one worker TTL, for a worker to register again after a loss of coordination state
        (each does at its next heartbeat, once it has closed its rooms)."""
        deadline = asyncio.get_running_loop().time() + self.settings.worker_ttl_s
        while not await self.state.nodes.live_workers() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(REGISTRATION_POLL_S)

    async def _check_workers(self, name: str) -> None:
        room = await self.state.rooms.get_room(name)
        if room is None or not room.worker_id:
            return
        if not await worker_alive(self.state.coordination, room.worker_id):  # late is not dead (placement.py)
            logger.warning("media worker %s of room %s is gone; moving its clients", room.worker_id, name)
            await self.rooms.cascade.close(room)
            for relay in await self.state.rooms.list_relays(name):
                await self.state.rooms.remove_relay(name, relay)
            await self.state.rooms.set_room_worker(name, None)
            await self.hub.kick_local(name, "media worker lost", reconnect=True)
            return
        for relay in await self.state.rooms.list_relays(name):
            if not await worker_alive(self.state.coordination, relay):
                logger.warning("relay worker %s of room %s is gone; moving its viewers", relay, name)
                await self.rooms.cascade.drop(room, relay)
                await self.hub.kick_local(name, "media worker lost", reconnect=True, worker=relay)


async def start_runtime(settings: Settings, local_media: LocalMedia | None = None) -> Runtime:
    """A signaling node's runtime; with ``local_media``, a media worker in this process too."""
    records = await open_records(settings)
    state = await open_state(settings, records)
    hub = SessionHub(state.bus)
    link: WorkerLink
    if settings.redis_url or (local_media is not None and local_media.over_bus):
        bus_link = BusWorkerLink(state.bus, settings.node_id, settings.worker_rpc_timeout_s)
        await bus_link.start()
        link = bus_link
    else:
        link = LocalWorkerLink()
    policies = Policies()
    rooms = RoomService(settings, state, link, policies)
    webhooks = WebhookDispatcher(settings, state)
    live = LiveActions(state, rooms, hub, records.shows)
    cases = CaseService(settings, state, records.cases)
    inspections = InspectionService(rooms, cases)
    for policy in (ConsultPolicy(), LivePolicy(live), InspectionPolicy(inspections)):
        policies.register(policy)  # what the spine asks about a room, answered by its kind's product
    recordings = RecordingFiles(settings.recordings_dir, records.owns_recording)
    runtime = Runtime(
        settings=settings,
        state=state,
        records=records,
        link=link,
        hub=hub,
        rooms=rooms,
        webhooks=webhooks,
        consult=ConsultService(settings, state, rooms, webhooks, records.consult),
        live=live,
        shows=ShowService(settings, state, rooms, live, records.shows, recordings),
        cases=cases,
        inspections=inspections,
        evidence=EvidenceService(rooms, cases, inspections, recordings),
    )
    link.on_push(runtime.on_push)
    for source in (runtime.shows.room_record, inspections.room_record, runtime.consult.desk.room_record):
        rooms.restore_from(source)  # rooms a record says exist: put back after a restart
    runtime.evidence.start()
    await runtime.webhooks.start()
    await runtime.live.start()
    runtime.consult.start()
    if local_media is not None:
        runtime.worker = await local_media.start(settings, state, link)
    runtime._watchdog = asyncio.create_task(runtime._watch_workers())
    runtime._leases = asyncio.create_task(runtime._keep_leases())
    return runtime
