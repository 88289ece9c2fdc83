"""``python -m loadtest``: load-test a Vitrine server with real WebRTC clients."""

from __future__ import annotations

import argparse
import os
import sys

from loadtest.config import (
    CLIENTS_PER_WORKER,
    ConfigError,
    ImpairmentConfig,
    RunConfig,
    SloConfig,
    parse_losses,
)

EXIT_OK = 0
EXIT_SLO_FAILED = 1
EXIT_USAGE = 2
EXIT_HARNESS = 3

DESCRIPTION = """\
Load-test a Vitrine server with real WebRTC (aiortc) clients, spread over
worker processes, and report per-stage join latency, media quality and an SLO
verdict.

Every client records when each join stage happened (--transport ws):
  token -> ws_open -> joined -> offer -> answer_sent -> ice_connected
  -> connected (DTLS) -> first_rtp -> first_frame
or, joining with WHIP/WHEP (--transport whip):
  token -> offer (ours, ICE gathered) -> http_answer (201) -> ice_connected
  -> connected (DTLS) -> first_rtp -> first_frame
A watching client decodes one video frame, then only counts RTP (frames
delivered, lost, freezes, NACKs, PLIs, bitrate, jitter, glass-to-glass).
"""

RUN_EPILOG = """\
scenarios:
  consult      --pairs N rooms of a customer and an agent, both publishing
               audio and video and watching each other
  live         one host publishing, --viewers N watching (the host joins first)
  inspection   --pairs N rooms of a buyer publishing and an inspector watching

examples:
  # 50 video consults at once against a server started here
  python -m loadtest run --embedded --scenario consult --pairs 50 --json report.json

  # a live sale: 150 viewers, held 20 s
  python -m loadtest run --embedded --scenario live --viewers 150 --duration 20 --json report.json

  # 10 consults with 10 % random loss on every client's link (both directions)
  python -m loadtest run --embedded --scenario consult --pairs 10 --loss 10 --json report.json

  # a sweep: one run per loss value, one table, plots of quality against loss
  python -m loadtest run --embedded --scenario consult --pairs 5 --loss 0,2,5,10 --json sweep.json

  # bursty loss (mean burst 4 packets), 40 ms delay, 10 ms jitter, 1 Mbit/s cap
  python -m loadtest run --embedded --scenario inspection --pairs 5 --loss 5 --burst 4 \\
      --delay 40 --jitter 10 --bandwidth 1000 --seed 7

  # 10 % random loss dropped by the kernel (nftables in a network namespace; root)
  python -m loadtest run --embedded --scenario consult --pairs 1 --loss 10 --impair-mode kernel --json k.json

  # a live sale watched over WHEP (the host publishes over WHIP)
  python -m loadtest run --embedded --scenario live --viewers 30 --transport whip --json whip.json

  # a running server: 30 viewers joining at 5 per second
  VITRINE_API_KEY=... VITRINE_API_SECRET=... python -m loadtest run \\
      --url https://video.example.com --scenario live --viewers 30 --shape ramp --join-rate 5

outputs:
  stdout       a Markdown summary (also written next to --json as .md)
  --json       the versioned report (schema: loadtest/report.schema.json)
  plots        <json stem>-join-cdf.png (join-latency CDF per stage) and, for a
               sweep, <json stem>-quality.png (join p95, delivered frames and
               freeze time against loss), next to --json or in --plots DIR;
               they need matplotlib: pip install 'vitrine[bench]' (without it,
               --json writes the report and says so, and --plots refuses)
  exit code    0 SLO passed, 1 SLO failed, 2 bad arguments, 3 the harness
               could not run (server did not start, a worker died)

definitions (docs/loadtest.md has the full list):
  join         token fetch start -> first decoded frame (watchers), or -> DTLS
               connected (publish-only clients); failures counted separately
  freeze       a gap between consecutive complete, decodable frames longer than
               max(3 x mean frame interval, mean frame interval + 150 ms)
  loss check   measured random loss per direction must be within
               max(4 standard errors, 0.5 points) of --loss

Keep an eye on "Harness health" in the summary: if a worker's event loop lags,
the numbers describe the harness, not the server; add --workers.
"""


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `python -m loadtest run --help` for the options and examples.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run a load test (or a sweep) and report",
        description=DESCRIPTION,
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    target = run.add_argument_group("target (exactly one)")
    target.add_argument(
        "--embedded",
        action="store_true",
        help="start `vitrine serve` on a free loopback port for this run, and stop it after",
    )
    target.add_argument(
        "--scaled",
        type=int,
        metavar="N",
        default=0,
        help="start scaled mode for this run and stop it after: a throwaway redis-server, `vitrine signaling` and N "
        "`vitrine media` processes on loopback (each its own metrics port; heartbeat 0.5 s, TTL 2 s; logs in "
        "/tmp/vitrine-scaled-*)",
    )
    target.add_argument("--url", help="a running server, e.g. http://127.0.0.1:7880")
    target.add_argument(
        "--api-key",
        default=os.environ.get("VITRINE_API_KEY"),
        help="with --url: API key for POST /v1/rooms and /v1/tokens (default $VITRINE_API_KEY)",
    )
    target.add_argument(
        "--api-secret",
        default=os.environ.get("VITRINE_API_SECRET"),
        help="with --url: API secret (default $VITRINE_API_SECRET)",
    )
    target.add_argument(
        "--rtc-interface",
        action="append",
        default=[],
        metavar="IP",
        help="IP address the clients gather ICE host candidates on (repeatable; "
        "default 127.0.0.1 for --embedded or a loopback --url, else every interface)",
    )

    load = run.add_argument_group("load")
    load.add_argument(
        "--scenario",
        choices=("consult", "live", "inspection"),
        default="consult",
        help="what the clients do (default consult; see below)",
    )
    load.add_argument("--pairs", type=int, default=None, help="consult/inspection: rooms of two (default 1)")
    load.add_argument("--viewers", type=int, default=None, help="live: viewers of the one host")
    load.add_argument(
        "--shape",
        choices=("burst", "ramp"),
        default="burst",
        help="burst: every client starts at once; ramp: --join-rate joins per second (default burst)",
    )
    load.add_argument(
        "--join-rate", type=float, default=10.0, metavar="PER_S", help="joins per second for --shape ramp (default 10)"
    )
    load.add_argument(
        "--duration",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to hold every call after the last join started (default 10)",
    )
    load.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="K",
        help=f"client processes (default: one per {CLIENTS_PER_WORKER} clients, at most one per core)",
    )
    load.add_argument(
        "--join-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="a client that has not reached its last stage by then has failed (default 20)",
    )
    load.add_argument(
        "--source",
        choices=("preencoded", "live"),
        default="preencoded",
        help="publishers' media: preencoded replays VP8/Opus packets encoded once per process "
        "(cheap, about 400 kbit/s of video); live runs aiortc's encoders per publisher "
        "(default preencoded)",
    )
    load.add_argument(
        "--video-size",
        default=None,
        metavar="WxH",
        help="publishers' synthetic video size, 30 fps (default 640x480 for --source preencoded, "
        "320x240 for --source live)",
    )
    load.add_argument("--no-audio", action="store_true", help="publishers send video only")
    load.add_argument(
        "--transport",
        choices=("ws", "whip"),
        default="ws",
        help="how clients join (default ws). ws: the WebSocket protocol on /v1/rtc, one peer "
        "connection; the server offers (stages ws_open, joined, offer, answer_sent). whip: "
        "plain HTTP, as OBS and WHEP players do: a publisher POSTs a WHIP offer to "
        "/whip/{room}, a watcher a WHEP offer to /whep/{room}?participant=<whom it watches> "
        "(retried while nothing is published yet), each a peer connection of its own, "
        "ICE gathered before the POST (stages offer, http_answer)",
    )

    imp = run.add_argument_group("impairment (per client link; see --impair-mode)")
    imp.add_argument(
        "--loss",
        default="0",
        metavar="PCT[,PCT...]",
        help="packet loss in percent; several values run a sweep (default 0)",
    )
    imp.add_argument(
        "--burst",
        type=float,
        default=1.0,
        metavar="PACKETS",
        help="mean loss-burst length; 1 = independent loss, >1 = Gilbert-Elliott bursts (default 1)",
    )
    imp.add_argument("--delay", type=_nonneg_float, default=0.0, metavar="MS", help="one-way added delay")
    imp.add_argument(
        "--jitter", type=_nonneg_float, default=0.0, metavar="MS", help="delay jitter (half-normal, standard deviation)"
    )
    imp.add_argument(
        "--bandwidth",
        type=_nonneg_float,
        default=0.0,
        metavar="KBPS",
        help="rate cap per direction, with a 300 ms queue (default 0: none)",
    )
    imp.add_argument(
        "--impair-direction",
        choices=("both", "down", "up"),
        default="both",
        help="down: server to client, up: client to server (default both)",
    )
    imp.add_argument(
        "--impair-clients",
        type=int,
        default=None,
        metavar="N",
        help="impair only the first N clients in join order (default all)",
    )
    imp.add_argument("--seed", type=int, default=1, help="impairment seed: same seed, same drops (default 1)")
    imp.add_argument(
        "--impair-mode",
        choices=("userspace", "kernel"),
        default="userspace",
        help="where packets are lost. userspace (default): in each client's process, every option "
        "above, seeded. kernel (root, --embedded only): the clients run in a network namespace "
        "and nftables drops their UDP at random on its veth link, both counted by the kernel "
        "(summary.impairment.kernel); --loss and --impair-direction only (no --burst, --delay, "
        "--jitter, --bandwidth, --impair-clients; not seeded); signaling (TCP) stays lossless",
    )

    out = run.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", help="write the JSON report here (and PATH.md, plots beside it)")
    out.add_argument("--markdown", metavar="PATH", help="write the Markdown summary here")
    out.add_argument(
        "--plots", metavar="DIR", help="write the PNG plots in DIR (needs matplotlib: pip install 'vitrine[bench]')"
    )
    out.add_argument("--no-progress", action="store_true", help="no live progress line on stderr")

    slo = run.add_argument_group("SLO (a failed check exits 1)")
    slo.add_argument(
        "--slo-join-p95", type=float, default=600.0, metavar="MS", help="join p95 must be below this (default 600 ms)"
    )
    slo.add_argument(
        "--slo-max-failures",
        type=float,
        default=1.0,
        metavar="PCT",
        help="at most this percentage of clients may fail (default 1)",
    )
    slo.add_argument(
        "--slo-min-delivered",
        type=float,
        default=None,
        metavar="PCT",
        help="delivered frames must be at least this percentage of those sent (default: no check)",
    )
    slo.add_argument(
        "--slo-max-freeze",
        type=float,
        default=None,
        metavar="PCT",
        help="freeze time must be at most this percentage of watched time (default: no check)",
    )
    run.set_defaults(func=cmd_run)
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    video_size = args.video_size or ("640x480" if args.source == "preencoded" else "320x240")
    try:
        width, height = (int(v) for v in video_size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--video-size takes WIDTHxHEIGHT, e.g. 320x240, not {video_size!r}") from None
    if args.scenario == "live":
        if args.pairs is not None:
            raise ConfigError("--pairs is for consult and inspection; the live scenario takes --viewers")
        pairs, viewers = 0, args.viewers if args.viewers is not None else 0
    else:
        if args.viewers is not None:
            raise ConfigError(f"--viewers is for the live scenario; {args.scenario} takes --pairs")
        pairs, viewers = (args.pairs if args.pairs is not None else 1), 0
    losses = parse_losses(args.loss)
    config = RunConfig(
        scenario=args.scenario,
        embedded=args.embedded or args.scaled > 0,
        media_workers=args.scaled,
        url=args.url,
        api_key=args.api_key,
        api_secret=args.api_secret,
        pairs=pairs,
        viewers=viewers,
        shape=args.shape,
        join_rate=args.join_rate,
        duration_s=args.duration,
        workers=args.workers,
        join_timeout_s=args.join_timeout,
        losses_pct=losses,
        impairment=ImpairmentConfig(
            loss_pct=losses[0],
            burst=args.burst,
            delay_ms=args.delay,
            jitter_ms=args.jitter,
            bandwidth_kbps=args.bandwidth,
            direction=args.impair_direction,
            clients=args.impair_clients,
            seed=args.seed,
            mode=args.impair_mode,
        ),
        video_width=width,
        video_height=height,
        audio=not args.no_audio,
        source=args.source,
        transport=args.transport,
        rtc_interfaces=tuple(args.rtc_interface),
        json_path=args.json,
        markdown_path=args.markdown,
        plots_dir=args.plots,
        progress=not args.no_progress,
        slo=SloConfig(
            join_p95_ms=args.slo_join_p95,
            max_failure_pct=args.slo_max_failures,
            min_delivered_pct=args.slo_min_delivered,
            max_freeze_pct=args.slo_max_freeze,
        ),
    )
    return config.validate()


def cmd_run(args: argparse.Namespace) -> int:
    from loadtest import netns, report, runner

    try:
        config = config_from_args(args)
        if config.impairment.mode == "kernel":
            netns.preflight()
        # Plots go next to --json or into --plots; they need matplotlib (the bench extra), the run does not.
        can_plot = bool(config.json_path or config.plots_dir) and report.plotting_available()
        if config.plots_dir and not can_plot:
            raise ConfigError(f"--plots: {report.PLOTS_MISSING}")
    except ConfigError as exc:
        print(f"python -m loadtest run: {exc}\n(see python -m loadtest run --help)", file=sys.stderr)
        return EXIT_USAGE
    try:
        results = runner.run(config)
    except runner.HarnessError as exc:
        print(f"loadtest: the harness could not run: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    except KeyboardInterrupt:
        print("loadtest: interrupted", file=sys.stderr)
        return EXIT_HARNESS
    full = report.build_report(config, results)
    for path in report.write_outputs(config, full, plots=can_plot):
        runner.message(f"wrote {path}", config.progress)
    if config.json_path and not can_plot:
        print(f"loadtest: no plots written: {report.PLOTS_MISSING}", file=sys.stderr)
    sys.stdout.write(report.markdown(full))
    sys.stdout.flush()
    return EXIT_OK if full["slo"]["passed"] else EXIT_SLO_FAILED


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
