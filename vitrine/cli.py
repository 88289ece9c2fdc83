"""The ``vitrine`` command: serve, signaling, media, db, backup, token, verify."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vitrine.core.config import InsecureSettingsError, Settings

if TYPE_CHECKING:
    from media.service import WorkerCoordination, WorkerService
    from vitrine.core.state.bridged import Bridge
    from vitrine.embedded import Mode


def _settings(*, host: str | None = None, port: int | None = None) -> Settings:
    """The environment's settings, with the command line's listen address and port over them when given."""
    overrides: dict[str, Any] = {"host": host, "port": port}
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        sys.exit(f"vitrine: invalid configuration:\n{exc}")


def _configure_logging(settings: Settings) -> None:
    """Text or JSON lines on stderr, credentials in URLs redacted, ids of the node, request, room and participant
    on every line (``vitrine.core.logs``)."""
    from vitrine.core import logs

    logs.configure(settings.log_level, settings.log_format, settings.node_id)


def _serve_http(settings: Settings, mode: Mode) -> None:
    import uvicorn

    from signaling.serving import uvicorn_options
    from vitrine.embedded import create_app

    try:
        app = create_app(settings, mode)
    except InsecureSettingsError as exc:
        sys.exit(f"vitrine: {exc}")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        # uvicorn's records go through the handler _configure_logging set (text or JSON, redacted), not its own.
        **{**uvicorn_options(settings), "log_config": None},
    )


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _settings(host=args.host, port=args.port)
    if args.dev:
        settings, generated = settings.with_dev_secret()
        if generated:
            print(
                "vitrine: --dev: generated a throwaway API secret for this run. Mint tokens with:\n"
                f"  export VITRINE_API_KEY={settings.api_key} VITRINE_API_SECRET={generated}\n"
                "  vitrine token --room demo --identity alice --role customer --create",
                flush=True,
            )
    _configure_logging(settings)
    _serve_http(settings, "embedded")


def cmd_signaling(args: argparse.Namespace) -> None:
    settings = _settings(host=args.host, port=args.port)
    if not settings.redis_url:
        sys.exit("vitrine signaling: VITRINE_REDIS_URL is required (workers are reached through Redis)")
    _configure_logging(settings)
    _serve_http(settings, "signaling")


def cmd_media(args: argparse.Namespace) -> None:
    if args.bridge is not None:  # started by `vitrine serve`: settings and coordination come from it
        _run_fast(_run_bridged_media(args.bridge, args.slot))
        return
    settings = _settings()
    if not settings.redis_url:
        sys.exit("vitrine media: VITRINE_REDIS_URL is required")
    _configure_logging(settings)
    _run_fast(_run_media(settings))


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run a media worker on uvloop (it comes with uvicorn[standard]), as uvicorn runs `vitrine serve`: every
    packet a worker forwards goes through its event loop, and on asyncio's own loop a worker that forwarded 50
    consult pairs at 5 ms glass-to-glass inside `vitrine serve` fell behind by seconds on its own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a trimmed install without uvicorn's extras
        asyncio.run(main)
        return
    uvloop.run(main)


async def _run_media(settings: Settings) -> None:
    from vitrine.core.state import open_coordination

    coordination = await open_coordination(settings)
    try:
        await _serve_media(settings, coordination)
    finally:
        await coordination.close()


async def _run_bridged_media(path: str, slot: int) -> None:
    """A worker process of `vitrine serve` (``vitrine/worker_pool.py``): its coordination is its parent's, lent
    over the bridge, and it stops when the parent goes."""
    from vitrine.core.state.bridged import open_bridge

    bridge = await open_bridge(path)
    try:
        settings = Settings.model_validate(await bridge.welcome(slot))
        _configure_logging(settings)
        await _serve_media(settings, bridge.coordination, bridge)
    finally:
        await bridge.close()


async def _serve_media(settings: Settings, coordination: WorkerCoordination, bridge: Bridge | None = None) -> None:
    from media import taps
    from media.metrics import MediaCollector, serve_worker_metrics
    from media.service import BusPusher, WorkerService
    from media.worker import MediaWorker
    from vitrine.core.metrics import exposition

    if (note := taps.loopback_only_warning(settings.rtc_interfaces)) is not None and bridge is None:
        logging.getLogger("vitrine").warning(note)  # a bridged worker's parent warned once for all of them
    worker_id = f"{settings.node_id}-media"
    pusher = BusPusher(coordination, worker_id, settings.worker_rpc_timeout_s)
    worker = MediaWorker(settings, worker_id=worker_id, push=pusher.push)
    service = WorkerService(settings, coordination, worker, pusher)
    await service.start(serve_rpc=True)
    metrics = await serve_worker_metrics(worker, settings.node_id, settings.host, settings.worker_metrics_port)
    if bridge is not None:
        collector = MediaCollector(worker)
        bridge.exposition = lambda: exposition(settings.node_id, collector)  # the parent's /metrics shows it
    logging.getLogger("vitrine").info("media worker %s ready", worker.id)
    try:
        await _until_drained(service, bridge.closed if bridge is not None else None)
    finally:
        if metrics is not None:
            await metrics.close()


async def _until_drained(service: WorkerService, parent_gone: asyncio.Event | None) -> None:
    """Serve until the worker has drained (``media/drain.py``): a SIGTERM or an operator's drain request starts
    it. A second SIGTERM, SIGINT, or the loss of the parent that started it (``parent_gone``) stops at once."""
    from vitrine.core.state.nodes import WorkerState

    at_once = asyncio.Event()

    def on_sigterm() -> None:
        if service.drain.state == WorkerState.SERVING:
            service.drain.begin()
        else:
            at_once.set()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGINT, at_once.set)
    waits = [asyncio.create_task(event.wait()) for event in (service.drain.stopped, at_once, parent_gone) if event]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    if not service.drain.stopped.is_set():
        await service.drain.stop_now()


def cmd_db(args: argparse.Namespace) -> None:
    """Apply the records migrations (``upgrade``), or say which revision the database is at (``current``)."""
    settings = _settings()
    _configure_logging(settings)
    asyncio.run(_db(settings, args.action))


async def _db(settings: Settings, action: str) -> None:
    from vitrine.core.records import migrate
    from vitrine.core.records.database import database_url, open_database, redacted

    url = database_url(settings)
    db = open_database(url)
    try:
        if action == "upgrade":
            before = await migrate.upgrade(db)
            print(f"{redacted(url)}: {before or 'empty'} -> {migrate.head_revision()}")
        else:
            current, head = await migrate.current_revision(db), migrate.head_revision()
            print(f"{redacted(url)}: at {current or 'empty'}, this code needs {head}")
            if current != head:
                sys.exit(1)
    finally:
        await db.close()


def cmd_backup(args: argparse.Namespace) -> None:
    from pathlib import Path

    from vitrine.core.records.backup import BackupError, backup

    try:
        result = backup(_settings(), Path(args.dest))
    except (BackupError, OSError) as exc:
        sys.exit(f"vitrine backup: {exc}")
    print(f"backed up {result.database} and {result.files} file(s), {result.bytes} bytes, into {args.dest}")


def cmd_token(args: argparse.Namespace) -> None:
    from vitrine.core.auth import mint_token
    from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role

    settings = _settings()
    try:
        settings.require_strong_secret()
    except InsecureSettingsError as exc:
        sys.exit(f"vitrine token: {exc}")
    role = Role(args.role)
    grants = ROLE_DEFAULT_GRANTS[role].model_copy(update={"room_create": args.create})
    print(
        mint_token(
            settings,
            room=args.room,
            identity=args.identity,
            role=role,
            grants=grants,
            ttl_s=args.ttl,
            name=args.name,
            shop=args.shop,
        )
    )


def cmd_verify(args: argparse.Namespace) -> None:
    """Check an evidence bundle offline: needs no secret and no server settings."""
    from pathlib import Path

    from signaling.inspect.bundle import verify_bundle

    try:
        pinned = Path(args.key).read_text() if args.key else None
    except (OSError, UnicodeDecodeError) as exc:
        sys.exit(f"vitrine verify: cannot read {args.key}: {exc}")
    result = verify_bundle(Path(args.bundle), public_key_pem=pinned)
    if not result.ok:
        print(f"FAILED: {args.bundle}")
        for problem in result.problems:
            print(f"  {problem}")
        sys.exit(1)
    print(f"OK: {result.entries} entries, signed by key {result.key_id}")
    if not result.pinned:
        print("The key was not pinned: compare its id with the shop's published evidence key, or pass --key.")


def _loadtest_main(argv: list[str]) -> int:
    from loadtest.cli import main as loadtest_main

    return loadtest_main(argv)


def build_parser() -> argparse.ArgumentParser:
    from vitrine.core.models import Role

    parser = argparse.ArgumentParser(prog="vitrine", description="Self-hosted real-time video for online sellers.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="signaling plus an in-process media worker (the embedded default)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1, or VITRINE_HOST)")
    serve.add_argument("--port", type=int, help="HTTP, WebSocket, WHIP and WHEP port (default 7880)")
    serve.add_argument("--dev", action="store_true", help="generate a throwaway secret if none is set")
    serve.set_defaults(func=cmd_serve)

    sig = sub.add_parser("signaling", help="a signaling node of a scaled deployment (needs VITRINE_REDIS_URL)")
    sig.add_argument("--host")
    sig.add_argument("--port", type=int)
    sig.set_defaults(func=cmd_signaling)

    media = sub.add_parser("media", help="a media worker of a scaled deployment (needs VITRINE_REDIS_URL)")
    # How `vitrine serve` starts its worker processes (vitrine/worker_pool.py); not for operators.
    media.add_argument("--bridge", metavar="SOCKET", help=argparse.SUPPRESS)
    media.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)
    media.set_defaults(func=cmd_media)

    token = sub.add_parser("token", help="print a join token on stdout")
    token.add_argument("--room", required=True)
    token.add_argument("--identity", required=True)
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default 6 h)")
    token.add_argument("--name", default=None, help="display name")
    token.add_argument("--create", action="store_true", help="allow creating the room on first join")
    token.add_argument("--shop", default=None, help="scope the token to this shop's rooms (a shop id)")
    token.set_defaults(func=cmd_token)

    verify = sub.add_parser("verify", help="check an inspection evidence bundle offline (no secret needed)")
    verify.add_argument("bundle", metavar="BUNDLE.zip")
    verify.add_argument("--key", metavar="PUBLIC_KEY.pem", help="the shop's published evidence key: require it")
    verify.set_defaults(func=cmd_verify)

    db = sub.add_parser("db", help="the records database: apply migrations, or show its revision")
    db.add_argument("action", choices=["upgrade", "current"])
    db.set_defaults(func=cmd_db)

    backup = sub.add_parser("backup", help="copy the embedded database, evidence and recordings into DEST")
    backup.add_argument("dest", metavar="DEST", help="a new or empty folder")
    backup.set_defaults(func=cmd_backup)

    sub.add_parser(
        "loadtest",
        add_help=False,
        help="load-test a server: the same as python -m loadtest (try: vitrine loadtest run --help)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["loadtest"]:  # its own parser owns every option after the word
        sys.exit(_loadtest_main(argv[1:]))
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
