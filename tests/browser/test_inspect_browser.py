"""After-sales video inspection through the real pages, in Debian Chromium, against a real embedded server.

The buyer's phone page (web/inspect.html, 360x640, Chromium's fake camera) opens the case's one-time
link, agrees to the recording, knocks, and is admitted from the inspector's console (web/inspector.html).
The console then watches the video, sees that the fake camera has neither torch nor zoom (and why, from
the buyer's own results), takes a full-resolution photo that is larger than the video it receives, draws
marks the buyer sees, prompts, sees the buyer pause, writes a note, ends with a verdict and downloads
the evidence bundle. Separately: a denied knock, a replayed, an expired and a forged link, each on its
own friendly page. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from signaling.inspect.links import mint_link_token
from tests.browser_support import (
    DESKTOP,
    INJECTION,
    STATE_TIMEOUT_MS,
    WatchedPage,
    assert_csp_blocks_inline_handlers,
    playwright_api,
    video_playing,
)
from tests.desk_helpers import make_shop
from tests.servers import RunningServer
from vitrine.core.models import now_ms

pytestmark = pytest.mark.browser

expect = playwright_api.expect
PHONE_360 = {"width": 360, "height": 640}
# Counts getUserMedia calls, keeps the page's peer connections and WebSockets reachable, and records the
# states the page goes through (body[data-state]).
INSTRUMENT = """(() => {
  window.__getUserMediaCalls = 0;
  window.__ws = [];
  window.__states = [];
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = (...args) => { window.__getUserMediaCalls += 1; return original(...args); };
  }
  const NativeSocket = window.WebSocket;
  window.WebSocket = class extends NativeSocket {
    constructor(...args) { super(...args); window.__ws.push(this); }
  };
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(() => window.__states.push(document.body.dataset.state))
      .observe(document.body, { attributes: true, attributeFilter: ["data-state"] });
  });
  const NativePc = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends NativePc {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
})();"""
# The scale the buyer's video sender sends at (web/inspect/camera.js sendEncoding).
SENT_SCALE = """() => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "video");
  const encodings = sender ? sender.getParameters().encodings : [];
  return encodings.length ? encodings[0].scaleResolutionDownBy || 1 : null;
}"""


# -- the case, through the shop's API ----------------------------------------------------------------


@dataclass
class OpenCase:
    id: str
    link: str
    console_url: str


async def open_case(server: RunningServer, language: str = "en", **setup: Any) -> OpenCase:
    """A case for shop acme (created on first use) with its buyer link and the inspector's console URL."""
    async with server.api() as api:
        if (await api.get("/v1/shops/acme")).status_code == 404:
            await make_shop(server)
        opened = await api.post(
            "/v1/shops/acme/cases",
            json={
                "order_ref": "A-1042",
                "claim": "The lamp arrived with a cracked shade",
                "language": language,
                **setup,
            },
        )
        assert opened.status_code == 201, opened.text
        case = opened.json()["case"]
        login = await api.post(f"/v1/shops/acme/cases/{case['id']}/console")
        assert login.status_code == 200, login.text
    return OpenCase(id=case["id"], link=opened.json()["link"], console_url=login.json()["console_url"])


async def case_record(server: RunningServer, case_id: str) -> dict[str, Any]:
    async with server.api() as api:
        response = await api.get(f"/v1/shops/acme/cases/{case_id}")
        assert response.status_code == 200, response.text
        return response.json()


# -- the two pages ---------------------------------------------------------------------------------------


class BuyerPage(WatchedPage):
    async def state(self, state: str) -> None:
        await self.wait_for("(s) => document.body.dataset.state === s", state, what=f"the buyer's {state} state")

    async def text(self, selector: str) -> str:
        return ((await self.page.locator(selector).text_content()) or "").strip()


class InspectorPage(WatchedPage):
    async def phase(self, phase: str) -> None:
        await self.wait_for("(p) => document.body.dataset.phase === p", phase, what=f"the console's {phase} phase")

    async def buyer(self, kind: str) -> None:
        await self.wait_for("(k) => document.body.dataset.buyer === k", kind, what=f"the buyer {kind}")

    async def row(self, control: str) -> playwright_api.Locator:
        return self.page.locator(f'#controls .control-row[data-control="{control}"]')

    async def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Drag on the frozen frame, from and to fractions of its width and height."""
        box = await self.page.locator("#draw").bounding_box()
        assert box is not None
        mouse = self.page.mouse
        await mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
        await mouse.down()
        await mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=6)
        await mouse.up()


def no_errors(page: WatchedPage, *expected: str) -> None:
    """No error in the page's console but the ``expected`` ones."""
    errors = [
        line
        for line in page.log
        if line.startswith(("error", "pageerror")) and not any(part in line for part in expected)
    ]
    assert not errors, page.diagnostics()


async def open_buyer(
    browser: playwright_api.Browser, url: str, name: str = "buyer", locale: str = "en-US"
) -> BuyerPage:
    # bypass_csp: the page's CSP forbids eval, and Playwright evaluates the tests' string predicates.
    context = await browser.new_context(
        viewport=PHONE_360,
        locale=locale,
        bypass_csp=True,
        has_touch=True,
        is_mobile=True,
        permissions=["camera", "microphone"],
    )
    await context.add_init_script(INSTRUMENT)
    buyer = BuyerPage(page=await context.new_page(), name=name)
    await buyer.page.goto(url)
    return buyer


async def open_inspector(browser: playwright_api.Browser, url: str) -> InspectorPage:
    context = await browser.new_context(viewport=DESKTOP, locale="en-US", bypass_csp=True, accept_downloads=True)
    await context.add_init_script(INSTRUMENT)
    console = InspectorPage(page=await context.new_page(), name="inspector")
    await console.page.goto(url)
    await console.phase("live")
    await console.wait_for(
        'document.getElementById("connection").textContent === "connected"',
        what="the console joined to the case's room",
    )
    return console


async def admit_buyer(console: InspectorPage, buyer: BuyerPage, *, screenshots: bool = False) -> None:
    """The buyer agrees and knocks; the console admits it."""
    await buyer.state("consent")
    await buyer.page.locator("#agree").click()
    await buyer.state("waiting")
    await buyer.wait_for(
        'document.getElementById("waiting-heading").dataset.t === "waiting_heading"',
        what="the buyer waiting at the door",
    )
    knock = console.page.locator("#knocks .knock")
    await expect(knock).to_have_count(1, timeout=STATE_TIMEOUT_MS)
    await expect(knock).to_contain_text("this case's buyer")
    await console.buyer("knocking")
    if screenshots:
        await buyer.screenshot("inspect-buyer-waiting.png")
        await console.screenshot("inspect-console-knock.png")
    await knock.get_by_role("button", name=re.compile("^Admit")).click()
    await buyer.state("live")
    await expect(console.page.locator("#knocks .knock")).to_have_count(0, timeout=STATE_TIMEOUT_MS)
    await console.buyer("present")


# -- tests ---------------------------------------------------------------------------------------------


async def test_an_inspection_from_the_link_to_the_verdict_and_its_bundle(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    case = await open_case(server)
    console = await open_inspector(browser, case.console_url)
    buyer = await open_buyer(browser, case.link)
    try:
        page = buyer.page
        # The link was spent and left the address bar; the session token lives in this tab only.
        await buyer.state("consent")
        assert "#t=" not in page.url and "#t=" not in console.page.url
        assert await page.evaluate('JSON.parse(sessionStorage.getItem("vitrine.inspect.session")).token.length') > 20
        assert await console.page.evaluate('sessionStorage.getItem("vitrine.inspector.token")') is not None
        # Nothing is captured or joined before the buyer agrees; the consent text is the server's.
        assert await page.evaluate("[window.__getUserMediaCalls, window.__ws.length]") == [0, 0]
        assert "180" in await buyer.text("#retention")  # the shop's retention, in days
        assert len(await buyer.text("#consent-text")) > 40
        assert await console.page.locator("#fact-consent").get_attribute("data-consented") == "false"
        await buyer.screenshot("inspect-buyer-consent.png")

        await admit_buyer(console, buyer, screenshots=True)
        assert await page.evaluate("window.__getUserMediaCalls") >= 1
        await console.wait_for(
            'document.getElementById("fact-consent").dataset.consented === "true"',
            what="the console to show the buyer's consent",
        )
        await buyer.wait_for(video_playing(selector="#preview"), what="the buyer's own preview")

        # The video plays on the console, sent scaled down from the full-resolution capture.
        await console.wait_remote_video_plays()
        assert await page.evaluate(SENT_SCALE) >= 2.9  # 1920 px captured, at most 640 px sent

        # The fake camera has one lens, no torch, no zoom: the console says so and still lets the seller ask.
        await console.wait_for(
            'document.getElementById("controls").dataset.caps === "1"', what="the buyer's capabilities on the console"
        )
        for control in ("camera", "torch", "zoom"):
            row = await console.row(control)
            await expect(row).to_have_attribute("data-supported", "false")
            await expect(row.locator(".control-note")).to_be_visible()
        await expect(console.page.locator("#torch")).to_be_disabled()
        await expect(console.page.locator("#zoom")).to_be_disabled()
        await expect((await console.row("torch")).locator(".control-note")).to_contain_text("no torch")
        await expect((await console.row("zoom")).locator(".control-note")).to_contain_text("cannot zoom")
        for control, reason in (
            ("torch", "this camera has no torch"),
            ("zoom", "this camera cannot zoom"),
            ("camera", "only one camera"),
        ):
            row = await console.row(control)
            await row.locator(".ask-anyway").click()
            result = row.locator('.control-result[data-ok="false"]')
            await expect(result).to_contain_text(reason, timeout=STATE_TIMEOUT_MS)
        await buyer.state("live")  # nothing broke on the phone

        # A full-resolution photo, over the data channel, larger than the video the console receives.
        await console.page.locator("#take-photo").click()
        await expect(console.page.locator("#take-photo")).to_be_disabled()
        photo = console.page.locator('#gallery li.artifact[data-kind="photo"][data-loaded="1"]')
        await expect(photo).to_have_count(1, timeout=STATE_TIMEOUT_MS)
        natural = await photo.locator("img").evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
        video = await console.page.evaluate(
            '(() => { const v = document.querySelector("video.remote"); return [v.videoWidth, v.videoHeight]; })()'
        )
        assert natural == [int(await photo.get_attribute("data-width")), int(await photo.get_attribute("data-height"))]
        assert natural[0] * natural[1] > video[0] * video[1], (natural, video)
        assert natural[0] >= 1280 and video[0] <= 640, (natural, video)
        await expect(photo.locator(".check")).to_have_text("✓ matches", timeout=STATE_TIMEOUT_MS)
        await buyer.wait_for('document.body.dataset.photosSent === "1"', what="the buyer's photo sent")
        await expect(console.page.locator("#take-photo")).to_be_enabled()

        # A guidance prompt, preset in the buyer's language, then free text that stays text.
        await console.page.locator('#presets button[data-prompt="prompt_label"]').click()
        await expect(page.locator("#prompt-text")).to_have_text(
            "Please show the label or the serial number.", timeout=STATE_TIMEOUT_MS
        )
        await expect(page.locator("#prompt")).to_be_visible()
        await console.page.locator("#prompt-input").fill(INJECTION)
        await console.page.locator("#prompt-send").click()
        await expect(page.locator("#prompt-text")).to_have_text(INJECTION, timeout=STATE_TIMEOUT_MS)
        assert await page.evaluate("window.__pwned") is None

        # Freeze and draw: an arrow, a circle and a label, shown over a frozen copy of the buyer's preview.
        await console.page.locator("#freeze").click()
        await expect(console.page.locator("#annotator")).to_be_visible()
        await console.drag((0.2, 0.3), (0.6, 0.3))
        await console.page.locator('#draw-tools button[data-tool="circle"]').click()
        await console.drag((0.7, 0.6), (0.8, 0.6))
        await console.page.locator('#draw-tools button[data-tool="text"]').click()
        await console.page.locator("#mark-text").fill("crack here")
        await console.drag((0.3, 0.8), (0.3, 0.8))
        await expect(console.page.locator("#draw")).to_have_attribute("data-marks", "3")
        marked = page.locator("#marked")
        await expect(marked).to_have_attribute("data-marks", "3", timeout=STATE_TIMEOUT_MS)
        await expect(marked).to_be_visible()
        await expect(page.locator("#marks-note")).to_be_visible()
        # The arrow's middle, on the buyer's full-resolution frozen frame, is the mark's red.
        pixel = await marked.evaluate("""(canvas) => {
          const x = Math.round(canvas.width * 0.4), y = Math.round(canvas.height * 0.3);
          return [...canvas.getContext("2d").getImageData(x, y, 1, 1).data];
        }""")
        assert pixel[0] > 200 and pixel[1] < 110 and pixel[2] < 110, pixel
        assert await marked.evaluate("(c) => [c.width, c.height]") == [1920, 1080]
        await console.screenshot("inspect-console-marks.png")
        await buyer.screenshot("inspect-buyer-marks.png")
        await console.page.locator("#clear-marks").click()
        await expect(marked).to_be_hidden(timeout=STATE_TIMEOUT_MS)
        await expect(console.page.locator("#annotator")).to_be_hidden()

        # A server snapshot, the fallback when a phone cannot take photos.
        await console.page.locator("#snapshot").click()
        snapshot = console.page.locator('#gallery li.artifact[data-kind="snapshot"][data-loaded="1"]')
        await expect(snapshot.first).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await expect(console.page.locator("#snapshot")).to_be_enabled(timeout=STATE_TIMEOUT_MS)

        # The buyer pauses: camera and microphone stop, and the console says so.
        await page.locator("#pause").click()
        await expect(page.locator("#paused-cover")).to_be_visible(timeout=STATE_TIMEOUT_MS)
        await console.buyer("paused")
        await expect(console.page.locator("#paused-badge")).to_be_visible()
        await expect(console.page.locator("#take-photo")).to_be_disabled()
        assert await page.evaluate("""() => window.__pcs[window.__pcs.length - 1].getTransceivers()
          .filter((t) => t.currentDirection === "sendonly").every((t) => t.sender.track === null)""")
        await page.locator("#pause").click()
        await console.buyer("present")
        await expect(console.page.locator("#paused-badge")).to_be_hidden()

        # Chat both ways, and a case note saved with the case.
        await page.locator("#chat-input").fill("It is the shade on the left")
        await page.locator("#chat-send").click()
        await expect(console.page.locator("#chat-log .line .text")).to_have_text(
            ["It is the shade on the left"], timeout=STATE_TIMEOUT_MS
        )
        await console.page.locator("#note-input").fill("Crack visible on the shade, 3 cm")
        await console.page.locator("#note-add").click()
        await expect(console.page.locator("#notes .note-text")).to_have_text(
            ["Crack visible on the shade, 3 cm"], timeout=STATE_TIMEOUT_MS
        )
        await console.screenshot("inspect-console-live.png")
        await buyer.screenshot("inspect-buyer-live.png")

        # The phone changes network: its socket drops. The page joins again with a fresh token, straight in
        # (admitted once), on a fresh peer connection with a new evidence channel, and photos still work.
        peers = await page.evaluate("window.__pcs.length")
        states = await page.evaluate("window.__states.length")
        await page.evaluate("window.__ws[window.__ws.length - 1].close(4000)")
        await buyer.wait_for(
            "(n) => window.__pcs.length > n && window.__pcs[n].connectionState === 'connected'",
            peers,
            what="the buyer's new peer connection",
        )
        await buyer.state("live")
        await console.buyer("present")
        assert "waiting" not in (await page.evaluate("window.__states"))[states:]
        await expect(console.page.locator("#knocks .knock")).to_have_count(0)
        await console.wait_remote_video_plays()
        await expect(console.page.locator("#take-photo")).to_be_enabled(timeout=STATE_TIMEOUT_MS)
        await console.page.locator("#take-photo").click()
        photos = console.page.locator('#gallery li.artifact[data-kind="photo"][data-loaded="1"]')
        await expect(photos).to_have_count(2, timeout=STATE_TIMEOUT_MS)
        await buyer.wait_for('document.body.dataset.photosSent === "2"', what="the photo after the reconnect")

        # The buyer leaves (the camera goes off), then comes back in without knocking.
        await page.locator("#leave").click()
        await buyer.state("left")
        await console.buyer("absent")
        assert (
            await page.evaluate('document.getElementById("preview").srcObject.getVideoTracks()[0].readyState')
            == "ended"
        )
        states = await page.evaluate("window.__states.length")
        await page.locator("#rejoin").click()
        await buyer.state("live")
        await console.buyer("present")
        assert "waiting" not in (await page.evaluate("window.__states"))[states:]
        await console.wait_remote_video_plays()

        # End with a verdict: the buyer thanks, the bundle downloads.
        await console.page.locator('#verdict-form input[value="accepted"]').check()
        await console.page.locator("#verdict-comment").fill("Transport damage, refund approved")
        await console.page.locator("#end").click()
        await console.page.locator("#confirm .confirm-ok").click()
        await console.phase("ended")
        await expect(console.page.locator("#outcome")).to_have_text("Verdict: Accepted", timeout=STATE_TIMEOUT_MS)
        await buyer.state("ended")
        await expect(page.locator("#verdict")).to_have_text("The seller accepted your claim.")
        await buyer.screenshot("inspect-buyer-ended.png")

        async with console.page.expect_download() as downloading:
            await console.page.locator("#bundle").click()
        download = await downloading.value
        path = Path(await download.path())
        assert path.read_bytes()[:2] == b"PK"
        assert download.suggested_filename == f"inspection-{case.id}.zip"
        await expect(console.page.locator("#bundle-state")).to_contain_text("Downloaded", timeout=STATE_TIMEOUT_MS)
        try:
            from signaling.inspect.bundle import verify_bundle
        except ImportError:  # the bundle code lands separately
            verify_bundle = None
        if verify_bundle is not None:
            verified = verify_bundle(path)
            assert verified.ok, verified.problems
        await console.screenshot("inspect-console-ended.png")

        record = await case_record(server, case.id)
        assert record["state"] == "closed"
        assert record["outcome"]["verdict"] == "accepted"
        assert record["consent"] is not None
        assert [n["text"] for n in record["notes"]] == ["Crack visible on the shade, 3 cm"]
        photos = [a for a in record["artifacts"] if a["kind"] == "photo"]
        assert [(p["width"], p["height"]) for p in photos] == [tuple(natural)] * 2
        no_errors(console)
        no_errors(buyer)
        assert not any("eyJ" in line for line in console.log + buyer.log)  # no token in any console line
    finally:
        await buyer.close()
        await console.close()


async def test_the_inspector_switches_the_buyer_camera(server: RunningServer, browser: playwright_api.Browser) -> None:
    """A phone with two cameras (Chromium's one fake camera, listed twice): the console flips it, and the
    page reopens the camera and replaces the sent track without renegotiating, still scaled down."""
    case = await open_case(server)
    console = await open_inspector(browser, case.console_url)
    buyer = await open_buyer(browser, case.link)
    try:
        await buyer.page.evaluate("""() => {
          const list = navigator.mediaDevices.enumerateDevices.bind(navigator.mediaDevices);
          navigator.mediaDevices.enumerateDevices = async () => {
            const devices = await list();
            const camera = devices.find((d) => d.kind === "videoinput");
            return camera ? [...devices, camera] : devices;
          };
        }""")
        await admit_buyer(console, buyer)
        await console.wait_remote_video_plays()
        row = await console.row("camera")
        await expect(row).to_have_attribute("data-supported", "true", timeout=STATE_TIMEOUT_MS)
        await expect(console.page.locator("#controls")).to_contain_text("2 cameras")
        calls = await buyer.page.evaluate("window.__getUserMediaCalls")
        offers = await buyer.page.evaluate("window.__pcs[window.__pcs.length - 1].localDescription.sdp.length")
        await console.page.locator("#facing-user").click()
        await expect(row.locator('.control-result[data-ok="true"]')).to_have_text(
            "Switched to the front camera.", timeout=STATE_TIMEOUT_MS
        )
        assert await buyer.page.evaluate("window.__getUserMediaCalls") > calls
        assert await buyer.page.evaluate(SENT_SCALE) >= 2.9  # the new track is sent scaled down too
        assert await buyer.page.evaluate("window.__pcs.length") == 1  # the same peer connection
        assert (
            await buyer.page.evaluate("window.__pcs[0].localDescription.sdp.length") == offers
        )  # and no renegotiation
        await console.wait_remote_video_plays()
        await buyer.wait_for(video_playing(selector="#preview"), what="the preview of the new camera")

        # A browser without ImageCapture: the photo is drawn from the full-resolution preview instead.
        await buyer.page.evaluate("() => { delete window.ImageCapture; }")
        await console.page.locator("#take-photo").click()
        photo = console.page.locator('#gallery li.artifact[data-kind="photo"][data-loaded="1"]')
        await expect(photo).to_have_count(1, timeout=STATE_TIMEOUT_MS)
        assert await photo.locator("img").evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [1920, 1080]
        stored = [a for a in (await case_record(server, case.id))["artifacts"] if a["kind"] == "photo"]
        assert [a["content_type"] for a in stored] == ["image/jpeg"]
        no_errors(buyer)
    finally:
        await buyer.close()
        await console.close()


async def test_a_denied_knock_shows_the_buyer_why(server: RunningServer, browser: playwright_api.Browser) -> None:
    case = await open_case(server, language="de")
    console = await open_inspector(browser, case.console_url)
    buyer = await open_buyer(browser, case.link, locale="de-DE")
    try:
        await buyer.state("consent")
        assert await buyer.text("#agree") == "Ich stimme zu, weiter"  # the case's language
        await buyer.page.locator("#agree").click()
        knock = console.page.locator("#knocks .knock")
        await expect(knock).to_have_count(1, timeout=STATE_TIMEOUT_MS)
        await knock.get_by_role("button", name=re.compile("^Deny")).click()
        await buyer.state("denied")
        await expect(buyer.page.locator("#denied-heading")).to_have_text("Der Verkäufer konnte Sie nicht hereinlassen")
        await expect(knock).to_have_count(0, timeout=STATE_TIMEOUT_MS)
        # The camera is released once turned away.
        await buyer.wait_for(
            '(() => { const s = document.getElementById("preview").srcObject; '
            'return s === null || s.getTracks().every((t) => t.readyState === "ended"); })()',
            what="the camera released",
        )
        await buyer.screenshot("inspect-buyer-denied.png")
        assert (await case_record(server, case.id))["state"] != "closed"
    finally:
        await buyer.close()
        await console.close()


async def test_the_seller_talks_on_a_connection_that_was_up_before_the_admit(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    """The console reserves its audio m-line at the join, and the buyer's connection is set up while it knocks:
    both are connected before the admit. Talking then opens the microphone with no renegotiation, and the
    buyer hears it; the recording keeps to the buyer's own tracks."""
    case = await open_case(server)
    console = await open_inspector(browser, case.console_url)
    buyer = await open_buyer(browser, case.link)
    connected = (
        "(() => { const pc = window.__pcs[window.__pcs.length - 1]; "
        'return pc && pc.connectionState === "connected"; })()'
    )
    try:
        await console.wait_for(connected, what="the console connected before any buyer")
        await buyer.state("consent")
        await buyer.page.locator("#agree").click()
        await buyer.state("waiting")
        await buyer.wait_for(connected, what="the knocking buyer's connection set up while it waits")
        assert await buyer.page.evaluate("document.getElementById('remote-audio').srcObject") is None
        await console.page.locator("#knocks .knock").get_by_role("button", name=re.compile("^Admit")).click()
        await buyer.state("live")
        await console.page.locator("#talk").click()
        await expect(console.page.locator("#talk")).to_have_attribute("aria-pressed", "true", timeout=STATE_TIMEOUT_MS)
        await buyer.wait_for(
            '(() => { const s = document.getElementById("remote-audio").srcObject; '
            'return Boolean(s && s.getAudioTracks().some((t) => t.readyState === "live")); })()',
            what="the seller's voice on the buyer's page",
        )
        sending = (
            "(() => window.__pcs[window.__pcs.length - 1].getSenders()"
            '.some((s) => s.track && s.track.kind === "audio" && s.track.readyState === "live"))()'
        )
        assert await console.page.evaluate(sending)
        await console.page.locator("#talk").click()  # stop: the sender carries no track, nothing leaves
        await expect(console.page.locator("#talk")).to_have_attribute("aria-pressed", "false", timeout=STATE_TIMEOUT_MS)
        assert not await console.page.evaluate(sending)
        no_errors(console)
    finally:
        await buyer.close()
        await console.close()


async def test_a_link_works_once_and_every_bad_link_gets_a_friendly_page(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    case = await open_case(server, language="fr")
    first = await open_buyer(browser, case.link, name="first")
    pages = [first]
    try:
        await first.state("consent")
        assert await first.text("#agree") == "J'accepte, continuer"
        # A reload of the same tab carries on with the session: it never redeems again.
        await first.page.reload()
        await first.state("consent")

        # The same link in a fresh browser: already used (said in the browser's language: the case's is
        # not known without a valid link).
        replay = await open_buyer(browser, case.link, name="replay", locale="fr-FR")
        pages.append(replay)
        await replay.state("problem")
        await expect(replay.page.locator("body")).to_have_attribute("data-problem", "link_used")
        assert await replay.text("#problem-heading") == "Ce lien a déjà été utilisé"
        await expect(replay.page.locator("#problem-retry")).to_be_hidden()

        # An expired link (its case's expiry moved into the past, the token minted for it).
        other = await open_case(server, language="en")
        assert server.runtime is not None
        stored = await server.runtime.state.records.cases.get("acme", other.id)
        stale = stored.model_copy(update={"link_expires_at_ms": now_ms() - 60_000})
        await server.runtime.state.records.cases.save(stale)
        expired = await open_buyer(
            browser, f"{server.url}/inspect.html#t={mint_link_token(server.settings, stale)}", name="expired"
        )
        pages.append(expired)
        await expired.state("problem")
        await expect(expired.page.locator("body")).to_have_attribute("data-problem", "link_expired")
        assert await expired.text("#problem-heading") == "This link has expired"
        assert "new link" in await expired.text("#problem-body")

        # A forged or truncated link, and none at all.
        forged = await open_buyer(browser, f"{server.url}/inspect.html#t=not-a-token", name="forged")
        pages.append(forged)
        await forged.state("problem")
        await expect(forged.page.locator("body")).to_have_attribute("data-problem", "invalid_token")
        assert await forged.text("#problem-heading") == "This link doesn't work"
        await forged.screenshot("inspect-buyer-bad-link.png")

        for page in (replay, expired, forged):
            shown = await page.page.locator("body").inner_text()
            assert "{" not in shown and "code" not in shown and "Traceback" not in shown, shown
            assert await page.page.evaluate("window.__getUserMediaCalls") == 0
        # The strings are complete in every language.
        missing = await first.page.evaluate("""async () => {
          const { MESSAGES } = await import("/inspect/strings.js");
          const keys = Object.keys(MESSAGES.en);
          return Object.fromEntries(Object.entries(MESSAGES).map(([lang, table]) =>
            [lang, keys.filter((k) => !(k in table)).concat(Object.keys(table).filter((k) => !keys.includes(k)))]));
        }""")
        assert all(not keys for keys in missing.values()), missing
    finally:
        for page in pages:
            await page.close()

    # With the CSP in force, injected markup would not run on either page.
    await assert_csp_blocks_inline_handlers(browser, f"{server.url}/inspect.html", ready='body[data-state="problem"]')
    await assert_csp_blocks_inline_handlers(browser, f"{server.url}/inspector.html", ready='body[data-phase="login"]')


async def test_the_console_refuses_a_bad_token_in_plain_words(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    context = await browser.new_context(viewport=DESKTOP, bypass_csp=True)
    console = InspectorPage(page=await context.new_page(), name="inspector")
    try:
        await console.page.goto(f"{server.url}/inspector.html#t=not-a-token")
        await console.phase("login")
        await expect(console.page.locator("#login-error")).to_contain_text("not valid or has expired")
        assert "#t=" not in console.page.url
        async with httpx.AsyncClient(base_url=server.url) as http:  # the API itself answers a typed error
            response = await http.get("/v1/inspect/console", headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 401 and response.json()["code"] == "invalid_token"
        assert json.dumps(response.json()).count("not-a-token") == 0
    finally:
        await console.close()
