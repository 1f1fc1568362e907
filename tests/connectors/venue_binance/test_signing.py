"""Signatures against Binance's documented examples."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.binance.signing import Signer, Verifier, hmac_sha256_hex, ws_payload
from connectors.common.credentials import Credentials

# Spot REST API, "SIGNED Endpoint Examples for POST /api/v3/order" > "HMAC Keys"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PAYLOAD = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
               "&recvWindow=5000&timestamp=1499827319559")
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_rest_hmac_doc_vector() -> None:
    assert hmac_sha256_hex(DOC_SECRET, DOC_PAYLOAD) == DOC_SIGNATURE
    signer = Signer(Credentials("vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                                DOC_SECRET))
    assert signer.sign(DOC_PAYLOAD) == DOC_SIGNATURE
    assert DOC_SECRET not in repr(signer)


def test_rest_hmac_doc_vector_non_ascii() -> None:
    # same section, the example whose symbol is non-ASCII (signed percent-encoded)
    payload = ("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY"
               "&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
               "&timestamp=1499827319559")
    assert hmac_sha256_hex(DOC_SECRET, payload) == (
        "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3")


def test_ws_api_hmac_doc_vector() -> None:
    # WebSocket API, "SIGNED request example (HMAC)": parameters sorted by name
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
              "quantity": "0.01000000", "price": "52000.00", "recvWindow": 100,
              "timestamp": 1645423376532,
              "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
              "signature": "------ FILL ME ------"}
    payload = ws_payload(params)
    assert payload == (
        "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
        "&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT"
        "&timeInForce=GTC&timestamp=1645423376532&type=LIMIT")
    assert hmac_sha256_hex(DOC_SECRET, payload) == (
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24")


def test_hmac_verification_is_case_insensitive() -> None:
    v = Verifier(Credentials("k", DOC_SECRET))
    assert v.verify(DOC_PAYLOAD, DOC_SIGNATURE.upper())
    assert not v.verify(DOC_PAYLOAD + "&x=1", DOC_SIGNATURE)


def test_ed25519_round_trip() -> None:
    # The docs' Ed25519 example does not publish its private key (and its sample signatures
    # are RSA-sized), so: a generated key, base64 signature, verified with the public key.
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    signer = Signer(Credentials("ed", "", private_key_pem=pem))
    payload = ("symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2"
               "&timestamp=1668481559918&recvWindow=5000")
    sig = signer.sign(payload)
    assert signer.kind == "ed25519" and len(sig) == 88  # 64 bytes, base64
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert Verifier(Credentials("ed", ""), public_key_pem=pub).verify(payload, sig)
    assert not Verifier(Credentials("ed", ""), public_key_pem=pub).verify(payload + "0", sig)
