"""Consult in the browser: from the agent's accept to the shopper's first remote video frame.

One Debian Chromium (fake camera and microphone) holds the agent console, logged in and available,
and, for each call, a fresh shopper context on a shop page served from its own origin with the
one-line embed. Each call: the shopper clicks the launcher, continues, starts; the console accepts
the ring ``--accept-after-ms`` after it shows (0: at once). While it rings, the widget connects to the
call's room (``call_ringing``: a knock, set up on the worker, unseen by the agent), so the accept only
admits it. The widget marks ``vitrine:accepted`` when ``call_started`` arrives and
``vitrine:first-frame`` on the agent's first painted frame (requestVideoFrameCallback), and reports
the difference to the server (``vitrine_consult_first_frame_seconds``). This reads both marks from
the page, plus the time from the Start click to the first frame (which includes the queue, the ring
and the scripted accept), then ends the call from the console.

    python -m loadtest.bench.consult_first_frame --calls 30 --out docs/bench/consult-first-frame.json
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from loadtest.bench import API_KEY, ServerProcess, cdf_plot, machine_facts, progress, publish, summary
from loadtest.browser import chromium, embed_html, origin_of, playwright_api, shop_page
from vitrine.core.shops import WEEKDAYS

WIDGET = 'document.querySelector("vitrine-consult").shadowRoot'
TIMEOUT_MS = 30_000
MARKS = """() => {
  const at = (name, from = -Infinity) => {
    const entry = performance.getEntriesByName(name).find((e) => e.startTime >= from);
    return entry ? entry.startTime : null;
  };
  const accepted = at("vitrine:accepted");
  // Each of VitrineRoom's steps, first after the accept: a connection made while it rang did its join,
  // offer, answer and ICE/DTLS before it, so those stages are absent and the admit's follow.
  const room = (step) => at(`vitrine-room:${step}`, accepted ?? -Infinity);
  return { accepted, first: at("vitrine:first-frame"), start: window.__start ?? null,
           join_sent: room("join-sent"), joined: room("joined"), offer: room("offer"),
           answer_sent: room("answer-sent"), connected: room("connected"),
           connected_before: at("vitrine-room:connected") !== null && room("connected") === null };
}"""
# The shopper's path from the accept to the first frame, as consecutive stages of VitrineRoom's marks.
STAGES = [
    ("accepted", "join_sent"),
    ("join_sent", "joined"),
    ("joined", "offer"),
    ("offer", "answer_sent"),
    ("answer_sent", "connected"),
    ("connected", "first"),
]
# A connection made while it rang skips join, offer, answer and connection after the accept: the admit's path.
PREJOINED = [("accepted", "joined"), ("answer_sent", "first")]


def _setup(server: ServerProcess, origin: str) -> str:
    with httpx.Client(base_url=server.url, auth=(API_KEY, server.secret)) as http:
        http.post(
            "/v1/shops",
            json={
                "id": "bench",
                "name": "Bench",
                "allowed_origins": [origin],
                "opening_hours": [{"day": d.value, "opens": "00:00", "closes": "24:00"} for d in WEEKDAYS],
            },
        ).raise_for_status()
        http.put("/v1/shops/bench/agents/ann", json={"display_name": "Ann", "languages": ["en"]}).raise_for_status()
        return http.post("/v1/shops/bench/agents/ann/token").json()["console_url"]


async def _call(browser: Any, agent: Any, page_url: str, accept_after_ms: int) -> dict[str, float]:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, permissions=["camera", "microphone"], locale="en-US"
    )
    try:
        shopper = await context.new_page()
        await shopper.goto(page_url)
        await shopper.locator(".vt-launcher").click(timeout=TIMEOUT_MS)
        await shopper.locator(".vt-continue").click(timeout=TIMEOUT_MS)
        await shopper.wait_for_function(
            f'() => {WIDGET}.querySelector("video.local")?.videoWidth > 0', timeout=TIMEOUT_MS
        )
        await shopper.evaluate("() => { window.__start = performance.now(); }")
        await shopper.locator(".vt-start").click(timeout=TIMEOUT_MS)
        await agent.locator("#ring .accept").wait_for(timeout=TIMEOUT_MS)
        await asyncio.sleep(accept_after_ms / 1000)
        await agent.locator("#ring .accept").click(timeout=TIMEOUT_MS)
        await shopper.wait_for_function(
            '() => performance.getEntriesByName("vitrine:first-frame").length > 0', timeout=TIMEOUT_MS
        )
        marks = await shopper.evaluate(MARKS)
        await agent.locator("#end-call").click(timeout=TIMEOUT_MS)
        await agent.locator("#wrapup-submit").click(timeout=TIMEOUT_MS)
        await agent.wait_for_function(
            '() => document.querySelector("#status").dataset.status === "available"', timeout=TIMEOUT_MS
        )
        pairs = [*STAGES, *PREJOINED] if marks["connected_before"] else STAGES
        stages = {f"{a}->{b}": marks[b] - marks[a] for a, b in pairs if marks[a] is not None and marks[b] is not None}
        return {
            "accept_to_first_frame": marks["first"] - marks["accepted"],
            "start_to_first_frame": marks["first"] - marks["start"],
            "connected_before_accept": 1.0 if marks["connected_before"] else 0.0,
            **stages,
        }
    finally:
        await context.close()


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from media import taps

    taps.configure_host_candidates(["127.0.0.1"])
    server = ServerProcess()
    server.start()
    results: list[dict[str, float]] = []
    failures: list[str] = []
    try:
        browser_error = playwright_api().Error
        async with chromium() as browser:
            with shop_page(embed_html(server.url, "bench", "mug-1")) as page_url:
                console_url = _setup(server, origin_of(page_url))
                agent_ctx = await browser.new_context(
                    viewport={"width": 1280, "height": 800}, bypass_csp=True, permissions=["camera", "microphone"]
                )
                agent = await agent_ctx.new_page()
                await agent.goto(console_url)
                await agent.locator("#go-available").click(timeout=TIMEOUT_MS)
                deadline = time.monotonic() + args.max_minutes * 60
                for index in range(args.calls):
                    if time.monotonic() > deadline:
                        failures.append(f"stopped after {index} calls: --max-minutes reached")
                        break
                    try:
                        results.append(await _call(browser, agent, page_url, args.accept_after_ms))
                    except browser_error as exc:
                        failures.append(f"call {index}: {str(exc).splitlines()[0]}")
                    if (index + 1) % 10 == 0:
                        progress(f"{index + 1}/{args.calls} calls")
        with httpx.Client(base_url=server.url) as http:
            metrics = [
                line
                for line in http.get("/metrics").text.splitlines()
                if line.startswith("vitrine_consult_first_frame_seconds_count")
            ]
    finally:
        server.stop()
    return {
        "benchmark": "consult_first_frame",
        "calls": len(results),
        "accept_after_ms": args.accept_after_ms,
        "connected_before_accept": int(sum(r["connected_before_accept"] for r in results)),
        "failures": failures,
        "accept_to_first_frame_ms": summary([r["accept_to_first_frame"] for r in results]),
        "start_to_first_frame_ms": summary([r["start_to_first_frame"] for r in results]),
        "shopper_stages_ms": {
            f"{a}->{b}": summary([r[f"{a}->{b}"] for r in results if f"{a}->{b}" in r])
            for a, b in [*STAGES, *PREJOINED]
        },
        "server_histogram_count": float(metrics[0].split()[-1]) if metrics else 0.0,
        "samples": [{k: round(v, 1) for k, v in r.items()} for r in results],
        "machine": machine_facts(),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    cdf_plot(
        path,
        {
            label: [s[key] for s in result["samples"]]
            for key, label in (
                ("accept_to_first_frame", "call_started → first remote frame"),
                ("start_to_first_frame", "Start click → first remote frame (scripted accept)"),
            )
        },
        target_ms=250,
        xlabel="ms",
        ylabel="fraction of calls",
        title=f"Consult widget, Chromium, loopback: {result['calls']} calls",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--max-minutes", type=float, default=10.0)
    parser.add_argument("--accept-after-ms", type=int, default=0, help="the console accepts this long after the ring")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    publish(asyncio.run(benchmark(args)), args.out, plot, bulky=("samples", "machine"))


if __name__ == "__main__":
    main()
