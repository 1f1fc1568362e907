"""Binance request signatures (Spot REST API, "SIGNED Endpoint security" and "SIGNED Endpoint
Examples for POST /api/v3/order"; WebSocket API, "SIGNED request security").

* HMAC keys: HMAC-SHA256 of the payload with the secret key, as lowercase hex.
* Ed25519 keys: the Ed25519 signature of the payload, base64 (percent-encoded when it travels in
  a query string or form body).

The REST payload is the query string exactly as sent, concatenated without separator to the
request body. The WebSocket API payload is every parameter but ``signature``, sorted by name,
as ``name=value`` pairs joined by ``&`` (UTF-8, not percent-encoded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from connectors.common.credentials import Credentials


def hmac_sha256_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def ws_payload(params: Mapping[str, object]) -> str:
    """The WebSocket API signature payload: parameters sorted by name, ``signature`` left out."""
    return "&".join(f"{k}={_ws_value(v)}" for k, v in sorted(params.items()) if k != "signature")


def _ws_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Signer:
    """Signs payloads with the key type the credentials hold (an Ed25519 PEM wins over a
    secret). Never logs or shows the secret or the signature."""

    def __init__(self, credentials: Credentials) -> None:
        self.api_key = credentials.api_key
        self._secret = credentials.secret
        self._ed25519: Ed25519PrivateKey | None = None
        if credentials.private_key_pem:
            key = load_pem_private_key(credentials.private_key_pem.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("Binance private keys must be Ed25519 (RSA is not supported)")
            self._ed25519 = key
        elif not self._secret:
            raise ValueError("Binance needs an HMAC secret or an Ed25519 private key")

    @property
    def kind(self) -> str:
        return "ed25519" if self._ed25519 is not None else "hmac"

    def sign(self, payload: str) -> str:
        if self._ed25519 is not None:
            return base64.b64encode(self._ed25519.sign(payload.encode())).decode()
        return hmac_sha256_hex(self._secret, payload)

    def __repr__(self) -> str:
        return f"Signer({self.kind}, api_key={self.api_key[:4]}...)"


class Verifier:
    """The venue's side (the emulator): checks a signature as Binance does."""

    def __init__(self, credentials: Credentials, public_key_pem: str | None = None) -> None:
        self.api_key = credentials.api_key
        self._secret = credentials.secret
        self._public: Ed25519PublicKey | None = None
        pem = public_key_pem
        if pem is None and credentials.private_key_pem:
            priv = load_pem_private_key(credentials.private_key_pem.encode(), password=None)
            if isinstance(priv, Ed25519PrivateKey):
                self._public = priv.public_key()
        elif pem is not None:
            pub = load_pem_public_key(pem.encode())
            if isinstance(pub, Ed25519PublicKey):
                self._public = pub

    def verify(self, payload: str, signature: str) -> bool:
        if self._public is not None:
            try:
                self._public.verify(base64.b64decode(signature, validate=True), payload.encode())
            except (InvalidSignature, ValueError):
                return False
            return True
        if not self._secret:
            return False
        # HMAC signatures are case-insensitive (Spot REST API, "Signature Case Sensitivity")
        return hmac.compare_digest(hmac_sha256_hex(self._secret, payload), signature.lower())
