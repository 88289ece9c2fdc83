"""A WHIP publisher built on GStreamer's ``webrtcbin``, from Debian's packages only.

Debian 12's GStreamer (1.22) has no ``whipsink`` (the webrtchttp plugin is in gst-plugins-rs), so this script
does what a WHIP client does around ``webrtcbin``: offer, gather every candidate, ``POST`` the offer with the
Bearer token, apply the ``201``'s answer, and ``DELETE`` the session's ``Location`` on the way out. Everything
else (encoders, payloaders at ``mtu``, DTLS with GStreamer's own RSA certificate, libnice's ICE) is GStreamer's.

It runs under Debian's ``/usr/bin/python3`` (python3-gi, gir1.2-gst-plugins-bad-1.0), not the project's venv:

    /usr/bin/python3 gst_whip_publisher.py URL TOKEN --codec vp8|h264 [--mtu 1400] [--width 640 --height 360]

It prints one JSON object a line on stdout: ``answered`` (with ``location``), each change of ``ice`` and
``connection`` state, and every second ``stats``: the RTP packets the payloader made and how many of them were
longer than ``--big`` bytes. It stops on SIGTERM or SIGINT, or exits 1 with a ``failed`` line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urljoin

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402 - after require_version, as gi needs

ENCODERS = {
    # Realtime settings, a keyframe every second: a new viewer gets a picture soon after it connects.
    "vp8": (
        "vp8enc deadline=1 cpu-used=8 target-bitrate={bitrate} keyframe-max-dist=30 ! rtpvp8pay mtu={mtu} pt=96"
        " ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
    ),
    "h264": (
        "x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max=30"
        " ! video/x-h264,profile=constrained-baseline ! rtph264pay mtu={mtu} config-interval=-1 pt=102"
        " ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000"
    ),
}
AUDIO = (
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111"
    " ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! webrtc."
)


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Publisher:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.location: str | None = None
        self.offered = False  # WHIP cannot renegotiate: one offer per session, posted once
        self.posted = False
        self.failed = False
        self.packets = 0
        self.big_packets = 0
        self.largest = 0
        self.loop = GLib.MainLoop()
        encoder = ENCODERS[args.codec].format(bitrate=args.kbps * 1000, kbps=args.kbps, mtu=args.mtu)
        video = (
            f"videotestsrc is-live=true pattern={args.pattern} ! video/x-raw,width={args.width},height={args.height},"
            f"framerate=30/1 ! videoconvert ! queue ! {encoder} ! identity name=payloaded ! webrtc."
        )
        self.pipeline = Gst.parse_launch(f"webrtcbin name=webrtc bundle-policy=max-bundle {video} {AUDIO}")
        self.webrtc = self.pipeline.get_by_name("webrtc")
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::ice-connection-state", self.on_state, "ice", "ice-connection-state")
        self.webrtc.connect("notify::connection-state", self.on_state, "connection", "connection-state")
        payloaded = self.pipeline.get_by_name("payloaded").get_static_pad("src")
        payloaded.add_probe(Gst.PadProbeType.BUFFER, self.on_packet)
        self.pipeline.get_bus().add_signal_watch()
        self.pipeline.get_bus().connect("message::error", self.on_error)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, self.stop)
        # The transceivers exist once parse_launch linked the pads: make them send-only before negotiating.
        for transceiver_index in (0, 1):
            transceiver = self.webrtc.emit("get-transceiver", transceiver_index)
            if transceiver is not None:
                transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        self.pipeline.set_state(Gst.State.PLAYING)
        GLib.timeout_add_seconds(1, self.report)
        self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        self.delete()
        return 1 if self.failed else 0

    def fail(self, reason: str) -> None:
        emit("failed", reason=reason)
        self.failed = True
        self.loop.quit()

    def stop(self) -> bool:
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def on_packet(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        size = info.get_buffer().get_size()
        self.packets += 1
        self.largest = max(self.largest, size)
        if size > self.args.big:
            self.big_packets += 1
        return Gst.PadProbeReturn.OK

    def report(self) -> bool:
        emit("stats", packets=self.packets, big_packets=self.big_packets, largest=self.largest)
        return GLib.SOURCE_CONTINUE

    def on_error(self, bus: Gst.Bus, message: Gst.Message) -> None:
        error, debug = message.parse_error()
        self.fail(f"{error.message} ({debug})")

    def on_state(self, element: Gst.Element, spec: Any, name: str, prop: str) -> None:
        emit(name, state=element.get_property(prop).value_nick)

    def on_negotiation_needed(self, element: Gst.Element) -> None:
        if self.offered:
            return
        self.offered = True
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        element.emit("create-offer", None, promise)

    def on_offer(self, promise: Gst.Promise, _: Any) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            self.fail(f"create-offer failed: {reply.to_string() if reply is not None else 'no reply'}")
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def on_gathering(self, element: Gst.Element, spec: Any) -> None:
        """Non-trickle WHIP: the offer leaves once it holds every candidate."""
        complete = element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE
        if complete and not self.posted:
            self.posted = True
            GLib.idle_add(self.post_offer)

    def post_offer(self) -> bool:
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        emit("offer", candidates=[line for line in sdp.splitlines() if line.startswith("a=candidate")])
        request = urllib.request.Request(self.args.url, data=sdp.encode(), method="POST", headers=self.headers())
        request.add_header("Content-Type", "application/sdp")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer_sdp = response.read().decode()
                self.location = urljoin(self.args.url, response.headers["Location"])
                status = response.status
        except urllib.error.HTTPError as exc:
            self.fail(f"POST answered {exc.code}: {exc.read().decode(errors='replace')[:300]}")
            return GLib.SOURCE_REMOVE
        except OSError as exc:
            self.fail(f"POST failed: {exc}")
            return GLib.SOURCE_REMOVE
        if status != 201:
            self.fail(f"POST answered {status}, not 201")
            return GLib.SOURCE_REMOVE
        emit(
            "answered",
            location=self.location,
            candidates=[line for line in answer_sdp.splitlines() if line.startswith("a=candidate")],
        )
        _, message = GstSdp.SDPMessage.new_from_text(answer_sdp)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        return GLib.SOURCE_REMOVE

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.args.token}"}

    def delete(self) -> None:
        """End the session as a WHIP client should (RFC 9725 section 4.2)."""
        if self.location is None:
            return
        request = urllib.request.Request(self.location, method="DELETE", headers=self.headers())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                emit("deleted", status=response.status)
        except (urllib.error.HTTPError, OSError) as exc:
            emit("deleted", error=str(exc))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the WHIP endpoint, e.g. http://HOST:7880/whip/ROOM")
    parser.add_argument("token", help="the Bearer token: a join token, or a show's stream key")
    parser.add_argument("--codec", choices=sorted(ENCODERS), default="vp8")
    parser.add_argument("--mtu", type=int, default=1400, help="the payloader's MTU (GStreamer's default: 1400)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--kbps", type=int, default=1500, help="the video bitrate")
    # SMPTE bars: detailed enough that VP8 and H.264 frames span several packets of a 1400-byte MTU.
    parser.add_argument("--pattern", default="smpte", help="videotestsrc's pattern")
    parser.add_argument("--big", type=int, default=1356, help="count payloaded packets longer than this")
    Gst.init(None)
    return Publisher(parser.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
