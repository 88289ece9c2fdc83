"""The worker's DTLS context completes a handshake with a peer whose certificate is RSA (media/taps/lean.py).

GStreamer's ``dtlssrtpenc`` (every ``webrtcbin`` encoder) has an RSA certificate and is the DTLS server when
Vitrine answers its WHIP offer. The handshakes here run between two OpenSSL connections over memory BIOs, as
aiortc drives them, so the cipher lists and certificates meet exactly as on the wire, with no socket.
"""

from __future__ import annotations

import datetime

import pytest
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from media.taps import lean

# What GStreamer 1.22's DTLS agent sets (ext/dtls/gstdtlsagent.c), with a 2048-bit RSA key of its own.
GSTREAMER_CIPHERS = b"ALL:!ADH:!LOW:!EXP:!MD5:@STRENGTH"
MAX_FLIGHTS = 20


def rsa_context(ciphers: bytes = GSTREAMER_CIPHERS) -> SSL.Context:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gstreamer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    context = SSL.Context(SSL.DTLS_METHOD)
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
    context.use_certificate(cert)
    context.use_privatekey(key)
    context.set_cipher_list(ciphers)
    context.set_tlsext_use_srtp(b":".join(profile.openssl_profile for profile in SRTP_PROFILES))
    return context


def ours() -> tuple[RTCCertificate, SSL.Context]:
    """A fresh certificate (not the process's shared one) and the context the lean patch gives it."""
    certificate = lean._generate_certificate()
    return certificate, lean._cached_ssl_context(certificate, SRTP_PROFILES)


def handshake(client: SSL.Context, server: SSL.Context) -> tuple[SSL.Connection, SSL.Connection]:
    """Run a DTLS handshake over memory BIOs, flight by flight; raise ``SSL.Error`` if either side refuses."""
    sides = SSL.Connection(client), SSL.Connection(server)
    sides[0].set_connect_state()
    sides[1].set_accept_state()
    done = [False, False]
    for _ in range(MAX_FLIGHTS):
        for index, side in enumerate(sides):
            if not done[index]:
                try:
                    side.do_handshake()
                    done[index] = True
                except SSL.WantReadError:
                    pass
            other = sides[1 - index]
            while True:
                try:
                    other.bio_write(side.bio_read(65536))
                except SSL.WantReadError:
                    break
        if all(done):
            return sides
    raise AssertionError(f"the handshake did not finish in {MAX_FLIGHTS} rounds")


def test_our_certificate_stays_ecdsa() -> None:
    certificate, _ = ours()
    assert isinstance(certificate._key, ec.EllipticCurvePrivateKey)


def test_aiortcs_own_context_finds_no_shared_cipher_with_an_rsa_server() -> None:
    """The failure GStreamer publishers met: without the patch the RSA server has nothing it can choose."""
    certificate, _ = ours()
    with pytest.raises(SSL.Error, match="no shared cipher|no_shared_cipher|handshake failure"):
        handshake(lean._create_ssl_context(certificate, SRTP_PROFILES), rsa_context())


def test_an_rsa_server_completes_the_handshake_and_agrees_on_srtp() -> None:
    certificate, context = ours()
    client, server = handshake(context, rsa_context())
    assert client.get_cipher_name() == server.get_cipher_name()
    assert client.get_cipher_name().startswith("ECDHE-RSA-")
    assert client.get_selected_srtp_profile() == server.get_selected_srtp_profile() != b""
    # Each side holds the other's certificate: the fingerprints in the SDP can be checked against them.
    assert isinstance(server.get_peer_certificate().to_cryptography().public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(client.get_peer_certificate().to_cryptography().public_key(), rsa.RSAPublicKey)


@pytest.mark.parametrize("suite", [s.decode() for s in lean.DTLS_CIPHERS.split(b":") if b"-RSA-" in s])
def test_every_rsa_suite_we_offer_completes_a_handshake(suite: str) -> None:
    """An RSA server that supports only one of our suites still gets it (DTLS 1.2 is what WebRTC uses)."""
    _, context = ours()
    client, _ = handshake(context, rsa_context(suite.encode()))
    assert client.get_cipher_name() == suite


def test_an_rsa_client_still_meets_our_ecdsa_server() -> None:
    """The other role (a client that answers ``a=setup:active``): our ECDSA certificate picks an ECDSA suite."""
    _, context = ours()
    rsa_client, server = handshake(rsa_context(), context)
    assert server.get_cipher_name().startswith("ECDHE-ECDSA-")
    assert rsa_client.get_selected_srtp_profile() != b""


def test_the_context_is_built_once_per_certificate() -> None:
    certificate, context = ours()
    assert lean._cached_ssl_context(certificate, SRTP_PROFILES) is context
