"""Every use of aiortc/aioice private API lives in this package, and only here.

The forwarder needs to see decrypted RTP before aiortc's jitter buffer and
decoder, send RTP on a subscriber's DTLS transport without aiortc's encoder,
and receive the RTCP feedback addressed to a sender. aiortc exposes none of
this publicly, so these modules reach into name-mangled attributes of the
pinned aiortc 1.16 / aioice 0.13. ``tests/test_media_taps.py`` fails loudly
if an upgrade moves any of them.

* ``rtp``: RTP/RTCP taps and the fast send path of a forwarded packet.
* ``datagrams``: the foreign-datagram guard, link hooks, fast handshake retransmission.
* ``fastpath``: publishers' SRTP handled in the socket callback, without aiortc's queue and tasks.
* ``candidates``: which addresses and ports ICE gathers on; what to set for same-host encoders.
* ``lean``: per-process sharing of what aiortc rebuilds per connection, and a faster clock.
* ``malformed``: malformed header extensions dropped like any malformed packet, counted, logged at a bounded rate.
* ``bundle``: the candidates of every bundled m-line reach the shared transport, not only the last m-line's.
* ``srtp``: SRTP sessions with room for RTP from a full 1500-byte MTU; longer forwarded packets counted, dropped.
* ``sdp_once``: a client's SDP parsed once on the worker (by the guard), not again by aiortc.
"""

from media.taps import bundle  # noqa: F401 - installs on import
from media.taps.candidates import PortRangeExhausted, configure_host_candidates, host_addresses, loopback_only_warning
from media.taps.datagrams import DatagramGuard, DatagramHook, HandshakeAccelerator, deliver_rtp_now, hook_datagrams
from media.taps.fastpath import FastPathCounters
from media.taps.lean import LeanAiortc, WindowRateCounter
from media.taps.malformed import MalformedPackets
from media.taps.rtp import (
    PRIVATE_ATTRIBUTES,
    SenderBinding,
    decoder_running,
    disable_sender_feedback,
    encoder_created,
    negotiated_codecs,
    offered_direction,
    on_sender_started,
    restrict_codecs,
    send_nack,
    send_pli,
    sender_last_rtp_timestamp,
    sender_started,
    tap_receiver,
    tap_receiver_sync,
    tap_sender,
    transport_connected,
)
from media.taps.sdp_once import parsed_once
from media.taps.srtp import OversizeRtp

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "DatagramGuard",
    "DatagramHook",
    "HandshakeAccelerator",
    "PortRangeExhausted",
    "SenderBinding",
    "LeanAiortc",
    "WindowRateCounter",
    "configure_host_candidates",
    "host_addresses",
    "loopback_only_warning",
    "decoder_running",
    "disable_sender_feedback",
    "encoder_created",
    "hook_datagrams",
    "negotiated_codecs",
    "offered_direction",
    "on_sender_started",
    "restrict_codecs",
    "send_nack",
    "send_pli",
    "sender_last_rtp_timestamp",
    "sender_started",
    "tap_receiver",
    "tap_receiver_sync",
    "tap_sender",
    "transport_connected",
    "FastPathCounters",
    "MalformedPackets",
    "OversizeRtp",
    "deliver_rtp_now",
    "parsed_once",
]
