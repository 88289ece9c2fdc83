"""The key that signs evidence manifests: Ed25519, so anyone can check a bundle offline with the public key.

A deployment either provides a PEM private key (``VITRINE_EVIDENCE_KEY_FILE``) or lets every node derive
the same key from the API secret with HKDF: nothing extra is stored, and rotating the secret rotates the
key (bundles signed before keep verifying against the public key they embed and the one the shop published).
The private key never leaves this object: no property, repr or log line shows it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vitrine.core.config import InsecureSettingsError, Settings

DERIVATION_INFO = b"vitrine evidence signing key v1"
SIGNATURE_BYTES = 64


def public_key_raw(public_key_pem: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key in PEM; ``ValueError`` for anything else."""
    try:
        key = serialization.load_pem_public_key(public_key_pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(raw_public_key: bytes) -> str:
    """A short name people can compare: the first 16 hex digits of the raw public key's SHA-256."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def verify_signature(public_key_pem: str, data: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw(public_key_pem)).verify(signature, data)
    except (ValueError, InvalidSignature):
        return False
    return True


class EvidenceSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key()

    @classmethod
    def from_settings(cls, settings: Settings) -> EvidenceSigner:
        if settings.evidence_key_file:
            return cls.from_pem_file(Path(settings.evidence_key_file))
        if settings.secret_is_weak():  # a key derived from a known secret would let anyone sign
            raise InsecureSettingsError(
                "signing evidence needs VITRINE_EVIDENCE_KEY_FILE or a strong VITRINE_API_SECRET"
            )
        return cls.derive(settings.secret_bytes)

    @classmethod
    def derive(cls, secret: bytes) -> EvidenceSigner:
        seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DERIVATION_INFO).derive(secret)
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem_file(cls, path: Path) -> EvidenceSigner:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):  # the message names the file, never its contents
            raise ValueError(f"{path}: not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: the evidence key must be Ed25519")
        return cls(key)

    @property
    def public_key_pem(self) -> str:
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def key_id(self) -> str:
        return key_id_of(self._public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"EvidenceSigner(key_id={self.key_id})"
