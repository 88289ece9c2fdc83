"""Where aiortc spends CPU it need not: per-connection setup a process can share, and a slow clock.

Profiled under a 100-client join burst, most of the worker's join time went
to work aiortc repeats per object:

* every ``RTCRtpReceiver`` builds a bitrate estimator whose ``RateCounter``
  allocates 1000 one-millisecond bucket objects, even for send-only m-lines
  that never receive a packet (about half of the worker's join CPU);
* every ``RTCPeerConnection`` generates a new ECDSA key and self-signed
  certificate, every offer or answer formats three fingerprints of it, and
  every DTLS transport builds a new OpenSSL context from it.

And per packet, aiortc reads the time through timezone-aware ``datetime``
objects (``aiortc.clock``): about 7 % of the worker's forwarding CPU.

``LeanAiortc.install()`` replaces the counter with an equivalent one that
stores only the samples inside its window; shares one certificate per
process, as mediasoup and Janus do and WebRTC allows (a browser may reuse an
``RTCCertificate`` across connections), replaced after
``CERTIFICATE_ROTATE_S``, well inside aiortc's 30-day validity (connections
that already hold the old one keep it); and computes ``clock.current_ms`` and
``clock.current_ntp_time`` from ``time.time_ns()``, to the same microsecond.

The shared DTLS context also accepts peers whose certificate is RSA. aiortc offers only ECDHE-ECDSA suites,
and as the DTLS client (it answers WHIP offers ``a=setup:active``) that list is all an RSA server (GStreamer's
``dtlssrtpenc``, so every ``webrtcbin`` encoder) can choose from: the handshake failed with ``no shared
cipher``. Our own certificate stays ECDSA; the RSA suites only let the peer authenticate with its key.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import aiortc.clock
import aiortc.rate
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsFingerprint
from OpenSSL import SSL

from media.taps import sdp_once

CERTIFICATE_ROTATE_S = 24 * 3600
# aiortc's own suites, then the ECDHE-RSA ones an RSA-certificate peer needs: AEAD first, CBC for old stacks.
DTLS_CIPHERS = b":".join(
    [
        b"ECDHE-ECDSA-AES128-GCM-SHA256",
        b"ECDHE-ECDSA-CHACHA20-POLY1305",
        b"ECDHE-ECDSA-AES128-SHA",
        b"ECDHE-ECDSA-AES256-SHA",
        b"ECDHE-RSA-AES128-GCM-SHA256",
        b"ECDHE-RSA-AES256-GCM-SHA384",
        b"ECDHE-RSA-CHACHA20-POLY1305",
        b"ECDHE-RSA-AES128-SHA",
        b"ECDHE-RSA-AES256-SHA",
    ]
)
NTP_UNIX_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01


class WindowRateCounter:
    """aiortc's ``RateCounter`` (same ``add``/``rate``/``reset`` results) without its bucket array.

    Samples live in a deque ordered by arrival; leaving the window pops them.
    """

    def __init__(self, window_size: int, scale: int = 8000) -> None:
        self._window_size = window_size
        self._scale = scale
        self.reset()

    def reset(self) -> None:
        self._samples: deque[tuple[int, int]] = deque()
        self._origin_ms: int | None = None
        self._count = 0
        self._value = 0

    def add(self, value: int, now_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
        self._samples.append((now_ms, value))
        self._count += 1
        self._value += value

    def rate(self, now_ms: int) -> int | None:
        if self._origin_ms is not None:
            self._erase_old(now_ms)
            active_window_size = now_ms - self._origin_ms + 1
            if self._count > 0 and active_window_size > 1:
                return round(self._scale * self._value / active_window_size)
        return None

    def _erase_old(self, now_ms: int) -> None:
        assert self._origin_ms is not None
        new_origin_ms = now_ms - self._window_size + 1
        if self._origin_ms >= new_origin_ms:
            return
        self._origin_ms = new_origin_ms
        samples = self._samples
        while samples and samples[0][0] < new_origin_ms:
            _, value = samples.popleft()
            self._count -= 1
            self._value -= value


class LeanAiortc:
    """Install once per process: peer connections made after that cost less to set up and to run."""

    installed = False
    certificates_generated = 0
    _certificate: RTCCertificate | None = None
    _certificate_born = 0.0

    @classmethod
    def install(cls) -> None:
        if cls.installed:
            return
        cls.installed = True
        aiortc.rate.RateCounter = WindowRateCounter  # type: ignore[misc,assignment]
        RTCCertificate.generateCertificate = classmethod(_shared_certificate)  # type: ignore[method-assign,assignment]
        RTCCertificate.getFingerprints = _cached_fingerprints  # type: ignore[method-assign]
        RTCCertificate._create_ssl_context = _cached_ssl_context  # type: ignore[method-assign]
        aiortc.clock.current_ms = current_ms
        aiortc.clock.current_ntp_time = current_ntp_time
        sdp_once.install()  # a client's SDP is parsed once on the worker, by the guard


def current_ms() -> int:
    """Milliseconds since the NTP epoch, as ``aiortc.clock.current_ms``."""
    return (time.time_ns() // 1000 + NTP_UNIX_OFFSET_S * 1_000_000) // 1000


def current_ntp_time() -> int:
    """64-bit NTP time at microsecond resolution, as ``aiortc.clock.current_ntp_time``."""
    micros = time.time_ns() // 1000
    seconds, micros = divmod(micros, 1_000_000)
    return ((seconds + NTP_UNIX_OFFSET_S) << 32) | ((micros << 32) // 1_000_000)


_aiortc_rate_counter = aiortc.rate.RateCounter
_aiortc_current_ms = aiortc.clock.current_ms
_aiortc_current_ntp_time = aiortc.clock.current_ntp_time
_generate_certificate = RTCCertificate.generateCertificate
_get_fingerprints = RTCCertificate.getFingerprints
_create_ssl_context = RTCCertificate._create_ssl_context


def _shared_certificate(cls: type[RTCCertificate]) -> RTCCertificate:
    now = time.monotonic()
    if LeanAiortc._certificate is None or now - LeanAiortc._certificate_born > CERTIFICATE_ROTATE_S:
        LeanAiortc._certificate = _generate_certificate()
        LeanAiortc._certificate_born = now
        LeanAiortc.certificates_generated += 1
    return LeanAiortc._certificate


def _cached_fingerprints(self: RTCCertificate) -> list[RTCDtlsFingerprint]:
    cached = getattr(self, "_vitrine_fingerprints", None)
    if cached is None:
        cached = self._vitrine_fingerprints = _get_fingerprints(self)  # type: ignore[attr-defined]
    return list(cached)


def _cached_ssl_context(self: RTCCertificate, srtp_profiles: list[Any]) -> SSL.Context:
    """One OpenSSL context per certificate and SRTP profile list; each DTLS connection still gets its own SSL.

    Built by aiortc, then given ``DTLS_CIPHERS`` so that RSA-certificate peers can complete the handshake.
    """
    contexts: dict[tuple[str, ...], SSL.Context] = self.__dict__.setdefault("_vitrine_contexts", {})
    key = tuple(profile.openssl_profile.decode() for profile in srtp_profiles)
    context = contexts.get(key)
    if context is None:
        context = _create_ssl_context(self, srtp_profiles)
        context.set_cipher_list(DTLS_CIPHERS)
        contexts[key] = context
    return context
