"""Inspection in the browser: from the buyer opening the link to the inspector seeing video, after the admit.

One Debian Chromium (fake camera) holds, for each case, the inspector console (web/inspector.html, joined
to the case's room) and a fresh phone-sized context on the buyer's page (web/inspect.html). The buyer
opens the link and agrees at once, and the console admits the knock ``--admit-after-ms`` after it shows
(1 s by default: a seller reads the knock before clicking; 0 admits before the buyer's connection, which
is set up while it knocks, is up). Every time is
read on the wall clock (``performance.timeOrigin + now``), so the two pages' times compare:

- ``link_to_knock``: the buyer's page starts loading, to the knock appearing on the console (it includes
  the page load, redeeming the link, consent, the camera opening and the knock);
- ``admit_to_first_frame``: the admit click, to the console painting the buyer's first video frame
  (``requestVideoFrameCallback``): the figure the target is about;
- the stages after the admit: the buyer's ``joined``, then the console's renegotiation (the offer that adds
  the buyer's tracks arrives, its answer leaves, the ``track`` event), then the first frame. The buyer's
  connection is already up by then: it was set up while the buyer knocked.

    python -m loadtest.bench.inspect_first_frame --cases 40 --out docs/bench/inspect-first-frame.json
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import httpx

from loadtest.bench import API_KEY, ServerProcess, cdf_plot, machine_facts, progress, publish, summary
from loadtest.browser import chromium, playwright_api

TIMEOUT_MS = 30_000
TARGET_MS = 300.0
# The console: the wall-clock time of the knock's appearance and of the first frame painted after it.
CONSOLE_PROBE = """() => {
  window.__knockAt = null; window.__frameAt = null;
  new MutationObserver(() => {
    if (window.__knockAt === null && document.querySelector("#knocks .knock")) window.__knockAt = Date.now();
  }).observe(document.getElementById("knocks"), { childList: true, subtree: true });
  const video = document.getElementById("remote");
  const onFrame = (now) => { window.__frameAt = performance.timeOrigin + now; };
  video.requestVideoFrameCallback(onFrame);
}"""
ADMIT = """() => {
  const button = [...document.querySelectorAll("#knocks .knock button")].find((b) => /^Admit/.test(b.textContent));
  window.__admitAt = Date.now();
  button.click();
}"""
# The last time each VitrineRoom mark was set in a page, on the wall clock.
MARKS = """() => {
  const at = (name) => {
    const entries = performance.getEntriesByName(`vitrine-room:${name}`);
    return entries.length ? performance.timeOrigin + entries[entries.length - 1].startTime : null;
  };
  return { start: performance.timeOrigin, joined: at("joined"), offer: at("offer"), answer_sent: at("answer-sent"),
           connected: at("connected"), track: window.__trackAt ?? null };
}"""
# The console's first remote video track event (the page's own listeners are VitrineRoom's).
TRACK_PROBE = """(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
      this.addEventListener("track", (e) => {
        if (e.track.kind === "video" && window.__trackAt == null) window.__trackAt = Date.now();
      });
    }
  };
})();"""
STAGES = [
    ("admit", "joined"),
    ("joined", "console_offer"),
    ("console_offer", "console_answer_sent"),
    ("console_answer_sent", "frame"),
]


def _case(server: ServerProcess) -> tuple[str, str]:
    with httpx.Client(base_url=server.url, auth=(API_KEY, server.secret)) as http:
        opened = http.post("/v1/shops/bench/cases", json={"order_ref": "B-1", "claim": "bench"}).json()
        console = http.post(f"/v1/shops/bench/cases/{opened['case']['id']}/console").json()["console_url"]
        return opened["link"], console


async def _one(browser: Any, server: ServerProcess, admit_after_s: float) -> dict[str, float]:
    link, console_url = _case(server)
    inspector = await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        permissions=["camera", "microphone"],
        bypass_csp=True,
    )
    try:
        await inspector.add_init_script(TRACK_PROBE)
        console = await inspector.new_page()
        await console.goto(console_url)
        await console.wait_for_function(
            '() => document.getElementById("connection").textContent === "connected"', timeout=TIMEOUT_MS
        )
        await console.evaluate(CONSOLE_PROBE)
        await phone.add_init_script(TRACK_PROBE)
        buyer = await phone.new_page()
        await buyer.goto(link)
        await buyer.locator("#agree").click(timeout=TIMEOUT_MS)
        await console.wait_for_function("() => window.__knockAt !== null", timeout=TIMEOUT_MS)
        await asyncio.sleep(admit_after_s)
        await console.evaluate(ADMIT)
        try:
            await console.wait_for_function("() => window.__frameAt !== null", timeout=TIMEOUT_MS)
        except playwright_api().Error:
            diag = (
                "() => ({state: document.body.dataset.state, phase: document.body.dataset.phase, "
                "buyer: document.body.dataset.buyer, video: document.getElementById('remote')?.videoWidth, "
                "pcs: (window.__pcs || []).map((pc) => [pc.connectionState, pc.signalingState, "
                "pc.getReceivers().map((r) => r.track && r.track.kind + ':' + r.track.readyState)])})"
            )
            progress(f"no first frame: console {await console.evaluate(diag)} buyer {await buyer.evaluate(diag)}")
            progress(server.log_tail(3000))
            raise
        times = await console.evaluate(
            "() => ({ knock: window.__knockAt, admit: window.__admitAt, frame: window.__frameAt })"
        )
        console_marks = await console.evaluate(MARKS)
        marks = {
            **await buyer.evaluate(MARKS),
            **times,
            "console_offer": console_marks["offer"],
            "console_answer_sent": console_marks["answer_sent"],
            "console_track": console_marks["track"],
        }
        stages = {f"{a}->{b}": marks[b] - marks[a] for a, b in STAGES if marks[a] and marks[b]}
        return {
            "admit_to_first_frame": marks["frame"] - marks["admit"],
            "link_to_knock": marks["knock"] - marks["start"],
            "admit_to_console_track": marks["console_track"] - marks["admit"],
            **stages,
        }
    finally:
        await phone.close()
        await inspector.close()


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    server = ServerProcess()
    server.start()
    samples: list[dict[str, float]] = []
    try:
        with httpx.Client(base_url=server.url, auth=(API_KEY, server.secret)) as http:
            http.post("/v1/shops", json={"id": "bench", "name": "Bench"}).raise_for_status()
        async with chromium() as browser:
            for index in range(args.warmup + args.cases):
                sample = await _one(browser, server, args.admit_after_ms / 1000)
                if index >= args.warmup:
                    samples.append(sample)
                progress(
                    f"case {index + 1}/{args.warmup + args.cases}: admit->frame {sample['admit_to_first_frame']:.0f} ms"
                )
    finally:
        server.stop()
    keys = sorted({key for sample in samples for key in sample})
    return {
        "benchmark": "inspect_first_frame",
        "cases": len(samples),
        "target_p95_ms": TARGET_MS,
        "admit_after_ms": args.admit_after_ms,
        "summary_ms": {key: summary([s[key] for s in samples if key in s]) for key in keys},
        "samples": samples,
        "machine": machine_facts(),
    }


def _plot(result: dict[str, Any], path: Path) -> None:
    cdf_plot(
        path,
        {"admit -> inspector's first frame": [s["admit_to_first_frame"] for s in result["samples"]]},
        target_ms=TARGET_MS,
        xlabel="ms",
        ylabel="fraction of cases",
        title=f"Inspection: admit to first frame in Chromium ({result['cases']} cases, "
        f"admitted {result['admit_after_ms']:.0f} ms after the knock)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=2, help="cases run first and not counted")
    parser.add_argument(
        "--admit-after-ms", type=float, default=1000.0, help="how long the knock shows before the console admits it"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    publish(asyncio.run(_main(args)), args.out, _plot)


if __name__ == "__main__":
    main()
