"""The report: versioned JSON (``loadtest/report.schema.json``), a Markdown summary, PNG plots, the SLO verdict.

``join_ms`` of a client is the time from the start of its token fetch to its
first decoded video frame (watchers) or to DTLS connected (publish-only
clients: a live host, an inspection buyer). Failed clients have none: they are
counted in ``summary.failures``.

Loss tolerance: for each impaired direction the packets dropped at random are
compared with the configured loss ``L`` over the ``N`` packets the impairment
saw. With mean burst ``B`` the Gilbert-Elliott chain has lag-1 correlation
``r = 1 - 1/(B (1 - L))`` (0 for B = 1), so the measured rate has standard
error ``s = sqrt(L (1 - L) / N * (1 + r) / (1 - r))``. The check passes when
``|measured - L| <= max(4 s, 0.005)``. Kernel impairment (``--impair-mode kernel``)
is independent loss (B = 1) counted by nftables over the UDP of every client:
``|measured - L| <= max(4 sqrt(L (1 - L) / N), 0.005)``, in ``impairment.kernel``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

from loadtest.agent import STAGES
from loadtest.config import RunConfig
from loadtest.quality import glass_to_glass_ms
from loadtest.runner import PointResult
from loadtest.stats import distribution

SCHEMA_VERSION = "1.2.0"  # 1.1.0: summary.impairment.mode and .kernel; 1.2.0: config.transport, whip stages
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
LOSS_TOLERANCE_SIGMAS = 4.0
LOSS_TOLERANCE_MIN = 0.005
KERNEL_TOLERANCE_RULE = (
    f"|measured - p| <= max({LOSS_TOLERANCE_SIGMAS:g} * sqrt(p * (1 - p) / packets), "
    f"{LOSS_TOLERANCE_MIN:g}), p = configured loss"
)
OVERLOADED_LAG_P95_MS = 50.0


# -- per point ----------------------------------------------------------------------------


def _attach_glass_to_glass(clients: list[dict[str, Any]]) -> list[float]:
    """Match subscribers' frame arrivals to their publisher's capture times; return every sample (ms).

    A WHEP watcher knows its publisher by identity only (``remote_identity``): its sid is the publisher's record's.
    """
    captures: dict[str, dict[int, float]] = {}
    sid_of: dict[str, str] = {}
    for client in clients:
        if client.get("participant_sid") and client.get("captures"):
            captures[client["participant_sid"]] = {int(ts): float(t) for ts, t in client["captures"]}
            sid_of[client["identity"]] = client["participant_sid"]
    pooled: list[float] = []
    for client in clients:
        media = client.get("media")
        if not media:
            continue
        samples = [(int(ts), float(t)) for ts, t in media.pop("g2g_samples", [])]
        publisher = client.get("remote_participant_sid") or sid_of.get(client.get("remote_identity") or "", "")
        values = glass_to_glass_ms(samples, captures.get(publisher, {}))
        dist = distribution(values)
        media["glass_to_glass_ms"] = {k: dist[k] for k in ("n", "p50", "p95", "max")}
        pooled.extend(values)
    for client in clients:
        client.pop("captures", None)
    return pooled


def loss_tolerance(configured: float, burst: float, packets: int) -> float:
    if packets <= 0:
        return math.inf
    r = 0.0 if burst <= 1 else 1 - 1 / (burst * (1 - configured))
    r = min(max(r, 0.0), 0.999)
    sigma = math.sqrt(configured * (1 - configured) / packets * (1 + r) / (1 - r))
    return max(LOSS_TOLERANCE_SIGMAS * sigma, LOSS_TOLERANCE_MIN)


def kernel_summary(config: RunConfig, counters: dict[str, Any]) -> dict[str, Any]:
    """The nftables counters of one point (``KernelLink.report()``), each direction checked against --loss."""
    imp = config.impairment
    summary: dict[str, Any] = {key: counters[key] for key in ("namespace", "host_ip", "client_ip")}
    summary["tolerance_rule"] = KERNEL_TOLERANCE_RULE
    for direction in ("down", "up"):
        packets, dropped = counters[direction]["packets"], counters[direction]["dropped"]
        configured = imp.loss_pct / 100 if imp.direction in ("both", direction) else 0.0
        tolerance = loss_tolerance(configured, 1, packets) if packets else None
        summary[direction] = {
            "packets": packets,
            "dropped": dropped,
            "configured_loss_pct": round(configured * 100, 3),
            "measured_loss_pct": _pct(dropped / packets) if packets else None,
            "tolerance_pct": _pct(tolerance),
            "loss_within_tolerance": abs(dropped / packets - configured) <= tolerance if packets else None,
        }
    verdicts = [summary[d]["loss_within_tolerance"] for d in ("down", "up")]
    summary["loss_within_tolerance"] = None if None in verdicts else all(verdicts)
    return summary


def impairment_summary(
    config: RunConfig, clients: list[dict[str, Any]], kernel: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The configured impairment and the loss measured by the layer that applied it (``measured``: userspace)."""
    imp = config.impairment
    configured = {
        "loss_pct": imp.loss_pct,
        "burst": imp.burst,
        "delay_ms": imp.delay_ms,
        "jitter_ms": imp.jitter_ms,
        "bandwidth_kbps": imp.bandwidth_kbps,
        "direction": imp.direction,
        "seed": imp.seed,
        "clients": imp.clients,
    }
    measured: dict[str, Any] = {}
    verdicts: list[bool] = []
    for direction in ("down", "up"):
        applies = imp.mode == "userspace" and imp.active and imp.direction in ("both", direction)
        totals: Counter[str] = Counter()
        for client in clients:
            counters = (client.get("impairment") or {}).get(direction)
            if counters:
                totals.update(counters)
        packets = totals["packets"]
        random_drops = totals["dropped"] - totals["queue_drops"]
        entry: dict[str, Any] = {
            "packets": packets,
            "dropped": totals["dropped"],
            "queue_drops": totals["queue_drops"],
            "loss": round(random_drops / packets, 5) if packets else None,
            "configured_loss": imp.loss_pct / 100 if applies else 0.0,
        }
        if applies and packets:
            tolerance = loss_tolerance(imp.loss_pct / 100, imp.burst, packets)
            entry["tolerance"] = round(tolerance, 5)
            entry["within_tolerance"] = abs(entry["loss"] - imp.loss_pct / 100) <= tolerance
            verdicts.append(entry["within_tolerance"])
        else:
            entry["tolerance"] = None
            entry["within_tolerance"] = None
        measured[direction] = entry
    kernel_checked = kernel_summary(config, kernel) if kernel is not None else None
    if kernel_checked is not None and kernel_checked["loss_within_tolerance"] is not None:
        verdicts.append(kernel_checked["loss_within_tolerance"])
    return {
        "active": imp.active,
        "mode": imp.mode,
        "configured": configured,
        "measured": measured,
        "kernel": kernel_checked,
        "loss_verified": all(verdicts) if verdicts else None,
    }


def media_summary(clients: list[dict[str, Any]], g2g: list[float]) -> dict[str, Any]:
    media = [c["media"] for c in clients if c.get("media")]
    expected = sum(m["frames_expected"] for m in media)
    delivered = sum(m["frames_delivered"] for m in media)
    watched_s = sum(m["window_s"] for m in media)
    freeze_ms = sum(m["freezes"]["total_ms"] for m in media)
    freeze_count = sum(m["freezes"]["count"] for m in media)
    audio = [m["audio"] for m in media if m.get("audio")]
    return {
        "subscribers": len(media),
        "watched_s": round(watched_s, 2),
        "frames_expected": expected,
        "frames_delivered": delivered,
        "frames_lost": sum(m["frames_lost"] for m in media),
        "delivered_ratio": round(delivered / expected, 4) if expected else None,
        "frame_rate": distribution(m["frame_rate"] for m in media),
        "freezes": {
            "count": freeze_count,
            "total_ms": round(freeze_ms, 1),
            "per_minute": round(freeze_count / (watched_s / 60), 3) if watched_s else None,
            "time_ratio": round(freeze_ms / 1000 / watched_s, 5) if watched_s else None,
            "max_ms": max((m["freezes"]["max_ms"] for m in media), default=None),
        },
        "nacks_sent": sum(m["nacks_sent"] for m in media),
        "nacked_packets": sum(m["nacked_packets"] for m in media),
        "plis_sent": sum(m["plis_sent"] for m in media),
        "bitrate_kbps": distribution(m["bitrate_kbps"] for m in media),
        "jitter_ms": distribution(m["jitter_ms"] for m in media),
        "glass_to_glass_ms": distribution(g2g),
        "audio": {
            "subscribers": len(audio),
            "bitrate_kbps": distribution(a["bitrate_kbps"] for a in audio),
            "loss_ratio": distribution(a["loss_ratio"] for a in audio),
        },
    }


def failure_summary(clients: list[dict[str, Any]]) -> dict[str, Any]:
    failed = [c for c in clients if not c["ok"]]
    return {
        "count": len(failed),
        "ratio": round(len(failed) / len(clients), 4) if clients else 0.0,
        "by_stage": dict(Counter(c["failure"]["stage"] for c in failed)),
        "by_reason": dict(Counter(c["failure"]["reason"] for c in failed)),
    }


def slo_verdict(slo_config: Any, summary: dict[str, Any]) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []

    def check(name: str, op: str, threshold: float, value: float | None) -> None:
        if value is None:
            passed = False
        elif op == "<":
            passed = value < threshold
        elif op == "<=":
            passed = value <= threshold
        else:
            passed = value >= threshold
        checks.append({"name": name, "op": op, "threshold": threshold, "value": value, "passed": passed})

    check("join_p95_ms", "<", slo_config.join_p95_ms, summary["join_ms"]["p95"])
    check("failure_pct", "<=", slo_config.max_failure_pct, round(summary["failures"]["ratio"] * 100, 3))
    media = summary["media"]
    if slo_config.min_delivered_pct is not None:
        ratio = media["delivered_ratio"]
        check("delivered_pct", ">=", slo_config.min_delivered_pct, None if ratio is None else round(ratio * 100, 3))
    if slo_config.max_freeze_pct is not None:
        ratio = media["freezes"]["time_ratio"]
        check("freeze_pct", "<=", slo_config.max_freeze_pct, None if ratio is None else round(ratio * 100, 3))
    return {"passed": all(c["passed"] for c in checks), "checks": checks}


def harness_summary(workers: list[dict[str, Any]]) -> dict[str, Any]:
    lags = [w["loop_lag_ms"]["p95"] for w in workers if w.get("loop_lag_ms") and w["loop_lag_ms"]["p95"] is not None]
    worst = max(lags) if lags else None
    return {
        "workers": workers,
        "loop_lag_p95_ms_max": worst,
        "overloaded": bool(worst is not None and worst > OVERLOADED_LAG_P95_MS) or any("error" in w for w in workers),
    }


def point_report(result: PointResult) -> dict[str, Any]:
    clients = result.clients
    g2g = _attach_glass_to_glass(clients)
    ok = [c for c in clients if c.get("join_ms") is not None]
    summary = {
        "clients": len(clients),
        "joined": len(ok),
        "join_ms": distribution(c["join_ms"] for c in ok),
        "stages_ms": {
            stage: distribution((c.get("stages_ms") or {}).get(stage) for c in ok)
            for stage in STAGES[result.config.transport]
        },
        "failures": failure_summary(clients),
        "media": media_summary(clients, g2g),
        "impairment": impairment_summary(result.config, clients, result.kernel),
    }
    return {
        "loss_pct": result.config.impairment.loss_pct,
        "config": result.config.public_dict(),
        "summary": summary,
        "slo": slo_verdict(result.config.slo, summary),
        "harness": harness_summary(result.workers),
        "server": result.server,
        "timing": result.timing,
        "clients": clients,
    }


# -- the whole report ------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    import aioice
    import aiortc

    loadavg: list[float] = []
    try:
        with open("/proc/loadavg") as f:
            loadavg = [float(v) for v in f.read().split()[:3]]
    except OSError:
        pass
    return {
        "nproc": os.cpu_count() or 1,
        "loadavg": loadavg,
        "python": platform.python_version(),
        "aiortc": aiortc.__version__,
        "aioice": aioice.__version__,
        "platform": platform.platform(),
    }


def build_report(config: RunConfig, results: list[PointResult]) -> dict[str, Any]:
    points = [point_report(r) for r in results]
    first = points[0]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "sweep" if len(points) > 1 else "run",
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tool": {"name": "vitrine-loadtest", **_machine()},
        "config": config.public_dict(),
        "summary": first["summary"],
        "slo": first["slo"],
        "harness": first["harness"],
        "server": first["server"],
        "timing": first["timing"],
        "clients": first["clients"],
    }
    if len(points) > 1:
        checks = [{**c, "name": f"{c['name']}@loss={p['loss_pct']:g}%"} for p in points for c in p["slo"]["checks"]]
        report["slo"] = {"passed": all(p["slo"]["passed"] for p in points), "checks": checks}
        report["points"] = points
        report["table"] = [sweep_row(p) for p in points]
    return report


def sweep_row(point: dict[str, Any]) -> dict[str, Any]:
    s = point["summary"]
    media = s["media"]
    kernel = s["impairment"].get("kernel")
    measured_down = kernel["down"]["measured_loss_pct"] if kernel else _pct(s["impairment"]["measured"]["down"]["loss"])
    return {
        "loss_pct": point["loss_pct"],
        "measured_down_loss_pct": measured_down,
        "join_p50_ms": s["join_ms"]["p50"],
        "join_p95_ms": s["join_ms"]["p95"],
        "failures": s["failures"]["count"],
        "delivered_ratio": media["delivered_ratio"],
        "frame_rate_p50": media["frame_rate"]["p50"],
        "freeze_count": media["freezes"]["count"],
        "freeze_time_ratio": media["freezes"]["time_ratio"],
        "nacks_sent": media["nacks_sent"],
        "plis_sent": media["plis_sent"],
        "g2g_p95_ms": media["glass_to_glass_ms"]["p95"],
        "slo_passed": point["slo"]["passed"],
    }


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 3)


# -- Markdown -------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    s = report["summary"]
    lines = [f"# Vitrine load test: {cfg['scenario']}", ""]
    target = "embedded `vitrine serve`" if cfg["embedded"] else cfg["url"]
    size = f"{cfg['pairs']} pairs" if cfg["scenario"] != "live" else f"1 host + {cfg['viewers']} viewers"
    shape = f"ramp at {cfg['join_rate']:g} joins/s" if cfg["shape"] == "ramp" else "burst (all at once)"
    transport = "WHIP/WHEP" if cfg["transport"] == "whip" else "the WebSocket protocol"
    lines.append(
        f"{size} ({cfg['clients']} clients) against {target} over {transport}; {shape}; "
        + f"hold {cfg['duration_s']:g} s; {len(report['harness']['workers'])} worker process(es). "
        + f"Report schema {report['schema_version']}, {report['generated_at']}."
    )
    lines += [
        "",
        f"**SLO: {'PASSED' if report['slo']['passed'] else 'FAILED'}**",
        "",
        "| check | value | threshold | passed |",
        "|---|---|---|---|",
    ]
    for c in report["slo"]["checks"]:
        lines.append(
            f"| {c['name']} | {_fmt(c['value'], 1)} | {c['op']} {c['threshold']:g} | "
            f"{'yes' if c['passed'] else '**no**'} |"
        )
    if report["kind"] == "sweep":
        lines += [
            "",
            "## Sweep",
            "",
            "| loss % | measured % | join p50 ms | join p95 ms | failures | delivered | fps p50 | freezes "
            "| freeze time | NACKs | PLIs | g2g p95 ms | SLO |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in report["table"]:
            lines.append(
                f"| {row['loss_pct']:g} | {_fmt(row['measured_down_loss_pct'], 2)} | {_fmt(row['join_p50_ms'])} "
                f"| {_fmt(row['join_p95_ms'])} | {row['failures']} | {_fmt_pct(row['delivered_ratio'])} "
                f"| {_fmt(row['frame_rate_p50'], 1)} | {row['freeze_count']} | {_fmt_pct(row['freeze_time_ratio'])} "
                f"| {row['nacks_sent']} | {row['plis_sent']} | {_fmt(row['g2g_p95_ms'])} "
                f"| {'pass' if row['slo_passed'] else 'FAIL'} |"
            )
        lines += ["", "The sections below describe the first point of the sweep."]
    lines += [
        "",
        "## Join stages (ms from the start of the token fetch)",
        "",
        f"{s['joined']} of {s['clients']} clients joined. join = first decoded frame for watchers, "
        "DTLS connected for publish-only clients.",
        "",
        "| stage | n | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    if cfg["transport"] == "whip":
        retries = sum(c.get("whep_retries") or 0 for c in report["clients"])
        lines[-2:-2] = [
            f"WHEP offers refused with `track_not_found` (the watched publisher was not in yet) and "
            f"sent again: {retries}.",
            "",
        ]
    for stage, d in [("join", s["join_ms"]), *s["stages_ms"].items()]:
        lines.append(
            f"| {stage} | {d['n']} | {_fmt(d['p50'])} | {_fmt(d['p95'])} | {_fmt(d['p99'])} | {_fmt(d['max'])} |"
        )
    f = s["failures"]
    lines += ["", f"## Failures: {f['count']} ({_fmt_pct(f['ratio'])})"]
    for reason, count in sorted(f["by_reason"].items(), key=lambda kv: -kv[1]):
        lines.append(f"- {count} x {reason}")
    m = s["media"]
    lines += [
        "",
        f"## Media ({m['subscribers']} video subscribers, {m['watched_s']:.0f} s watched)",
        "",
        f"- delivered frames: {m['frames_delivered']} of {m['frames_expected']} "
        f"({_fmt_pct(m['delivered_ratio'])}); lost {m['frames_lost']}",
        f"- delivered frame rate per subscriber: p50 {_fmt(m['frame_rate']['p50'], 1)} fps, "
        f"max {_fmt(m['frame_rate']['max'], 1)} fps",
        f"- freezes: {m['freezes']['count']}, {m['freezes']['total_ms']:.0f} ms in total "
        f"({_fmt_pct(m['freezes']['time_ratio'])} of watched time), longest {_fmt(m['freezes']['max_ms'])} ms",
        f"- NACK messages {m['nacks_sent']} ({m['nacked_packets']} packets asked), PLIs {m['plis_sent']}",
        f"- bitrate p50 {_fmt(m['bitrate_kbps']['p50'], 1)} kbit/s; "
        f"jitter p50 {_fmt(m['jitter_ms']['p50'], 2)} ms, p95 {_fmt(m['jitter_ms']['p95'], 2)} ms",
        f"- glass-to-glass: p50 {_fmt(m['glass_to_glass_ms']['p50'])} ms, "
        f"p95 {_fmt(m['glass_to_glass_ms']['p95'])} ms, max {_fmt(m['glass_to_glass_ms']['max'])} ms "
        f"(n={m['glass_to_glass_ms']['n']})",
    ]
    imp = s["impairment"]
    kernel = imp.get("kernel")
    if kernel:
        c = imp["configured"]
        lines += [
            "",
            "## Impairment (kernel)",
            "",
            f"Configured: random loss {c['loss_pct']:g}%, direction {c['direction']}; dropped by nftables on "
            f"the veth of network namespace {kernel['namespace']} (clients {kernel['client_ip']}, server "
            f"{kernel['host_ip']}), UDP only.",
            "",
        ]
        verdict = {True: "within tolerance", False: "**outside tolerance**", None: "no packets"}
        for direction in ("down", "up"):
            e = kernel[direction]
            lines.append(
                f"- {direction}: {e['dropped']} of {e['packets']} UDP packets dropped, measured "
                f"{_fmt(e['measured_loss_pct'], 2)}% (configured {e['configured_loss_pct']:g}%, tolerance "
                f"±{_fmt(e['tolerance_pct'], 2)} points): {verdict[e['loss_within_tolerance']]}"
            )
    elif imp["active"]:
        c = imp["configured"]
        lines += [
            "",
            "## Impairment",
            "",
            f"Configured: loss {c['loss_pct']:g}% (mean burst {c['burst']:g}), delay {c['delay_ms']:g} ms, "
            f"jitter {c['jitter_ms']:g} ms, bandwidth {c['bandwidth_kbps']:g} kbit/s, "
            f"direction {c['direction']}, seed {c['seed']}.",
            "",
        ]
        for direction, e in imp["measured"].items():
            if e["within_tolerance"] is None:
                continue
            lines.append(
                f"- {direction}: measured {_fmt_pct(e['loss'])} over {e['packets']} packets "
                f"(tolerance ±{e['tolerance'] * 100:.2f} points): "
                f"{'within tolerance' if e['within_tolerance'] else '**outside tolerance**'}"
            )
    h = report["harness"]
    lines += ["", "## Harness health", ""]
    for w in h["workers"]:
        if "error" in w:
            lines.append(f"- worker {w['worker']}: **failed**: {w['error'].splitlines()[-1] if w['error'] else ''}")
        else:
            lag = w["loop_lag_ms"]
            lines.append(
                f"- worker {w['worker']}: {w['clients']} clients, {_fmt(w.get('cpu_cores'), 2)} cores, "
                f"loop lag p95 {_fmt(lag['p95'], 1)} ms, max {_fmt(lag['max'], 1)} ms"
            )
    if h["overloaded"]:
        lines.append(
            f"- **warning**: a harness event loop lagged over {OVERLOADED_LAG_P95_MS:.0f} ms (p95): the "
            "numbers may describe the harness rather than the server. Add --workers or lower the load."
        )
    server = report["server"]
    if server.get("cpu_cores") is not None:
        lines.append(f"- server process: {server['cpu_cores']:.2f} cores during the main phase")
    if server.get("log_problem_lines"):
        lines.append(
            f"- server log: {server['log_problem_lines']} warning/error lines; last: "
            f"`{server['log_excerpt'][-1][:200]}`"
        )
    return "\n".join(lines) + "\n"


def _fmt_pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.2f}%"


# -- plots ---------------------------------------------------------------------------------------------

# The plots need matplotlib (and numpy under it): the ``bench`` extra. The run and its JSON and Markdown do not.
PLOTS_EXTRA = "pip install 'vitrine[bench]'"
PLOTS_MISSING = f"the plots need matplotlib, which is not installed: {PLOTS_EXTRA}"


def plotting_available() -> bool:
    """Whether matplotlib imports (it comes with the ``bench`` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_join_cdf(config: dict[str, Any], loss_pct: float, clients: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for stage in STAGES[config["transport"]]:
        values = sorted(
            v
            for c in clients
            if c.get("join_ms") is not None
            for v in [(c.get("stages_ms") or {}).get(stage)]
            if v is not None
        )
        if values:
            ax.step(
                values,
                [(i + 1) / len(values) for i in range(len(values))],
                where="post",
                label=f"{stage} (n={len(values)})",
            )
    slo = config["slo"]["join_p95_ms"]
    ax.axvline(slo, color="red", linestyle="--", linewidth=1)
    ax.text(slo, 0.5, f" SLO: join p95 < {slo:g} ms", color="red", rotation=90, va="center", fontsize=8)
    ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time since the start of the token fetch (ms, log scale)")
    ax.set_ylabel("fraction of joined clients")
    ax.set_title(f"Join stages: {config['scenario']}, {config['clients']} clients, loss {loss_pct:g}%")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_lines()[:-2]:  # beyond the two reference lines
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no client joined", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_quality_vs_impairment(table: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = [row["loss_pct"] for row in table]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = [
        ("join p95 (ms)", [row["join_p95_ms"] for row in table]),
        (
            "delivered frames (%)",
            [None if row["delivered_ratio"] is None else row["delivered_ratio"] * 100 for row in table],
        ),
        (
            "freeze time (% of watched time)",
            [None if row["freeze_time_ratio"] is None else row["freeze_time_ratio"] * 100 for row in table],
        ),
    ]
    for ax, (title, values) in zip(axes, panels):
        xs = [x for x, v in zip(loss, values) if v is not None]
        ys = [v for v in values if v is not None]
        ax.plot(xs, ys, marker="o")
        ax.set_xlabel("configured packet loss (%)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    fig.suptitle("Quality against impairment")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- writing -----------------------------------------------------------------------------------------------


def write_outputs(config: RunConfig, report: dict[str, Any], plots: bool = True) -> list[Path]:
    """JSON, Markdown and PNGs where the configuration asks for them; returns the files written.

    ``plots=False``: no PNGs (matplotlib is missing: ``plotting_available()``).
    """
    written: list[Path] = []
    stem: Path | None = None
    if config.json_path:
        path = Path(config.json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1, allow_nan=False))
        written.append(path)
        stem = path.with_suffix("")
    md_path = Path(config.markdown_path) if config.markdown_path else (stem.with_suffix(".md") if stem else None)
    if md_path is not None:
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(markdown(report))
        written.append(md_path)
    plots_dir = Path(config.plots_dir) if config.plots_dir else (stem.parent if stem else None)
    if plots_dir is not None and plots:
        name = stem.name if stem else "loadtest"
        written.append(
            plot_join_cdf(report["config"], config.losses_pct[0], report["clients"], plots_dir / f"{name}-join-cdf.png")
        )
        if report["kind"] == "sweep":
            written.append(plot_quality_vs_impairment(report["table"], plots_dir / f"{name}-quality.png"))
    return written
