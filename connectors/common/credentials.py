"""Venue API credentials, from environment variables or a secrets file (never from the config
itself, never in a log: ``repr`` masks everything but the first characters of the key)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class CredentialsError(ValueError):
    """The credentials a venue entry names cannot be found (the message names where we looked,
    never a secret)."""


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    api_key: str
    secret: str = ""
    """HMAC secret (empty when the key is an Ed25519 key)."""
    passphrase: str | None = None
    """OKX: the passphrase given when the key was created."""
    private_key_pem: str | None = None
    """Binance Ed25519 keys: the PEM private key (requests are signed with it, not the secret)."""

    def __repr__(self) -> str:
        shown = self.api_key[:4] + "..." if len(self.api_key) > 8 else "***"
        return f"Credentials(api_key={shown!r}, secret=***)"

    __str__ = __repr__


def load_credentials(
    env_prefix: str | None = None,
    secrets_file: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """``<PREFIX>_API_KEY``, ``<PREFIX>_API_SECRET``, ``<PREFIX>_API_PASSPHRASE`` and
    ``<PREFIX>_PRIVATE_KEY`` (PEM text) or ``<PREFIX>_PRIVATE_KEY_FILE`` from the environment;
    or a TOML file with ``api_key``, ``api_secret``, ``passphrase``, ``private_key`` or
    ``private_key_file``. The environment wins where both give a value."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if secrets_file is not None:
        path = Path(secrets_file)
        try:
            with path.open("rb") as f:
                raw = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CredentialsError(f"cannot read the secrets file {path}: {exc}") from None
        values.update({k: str(v) for k, v in raw.items() if isinstance(v, str)})
    if env_prefix:
        for name, key in (("API_KEY", "api_key"), ("API_SECRET", "api_secret"),
                          ("API_PASSPHRASE", "passphrase"), ("PRIVATE_KEY", "private_key"),
                          ("PRIVATE_KEY_FILE", "private_key_file")):
            v = env.get(f"{env_prefix}_{name}")
            if v:
                values[key] = v
    pem = values.get("private_key")
    if pem is None and "private_key_file" in values:
        try:
            pem = Path(values["private_key_file"]).read_text()
        except OSError as exc:
            raise CredentialsError(f"cannot read the private key file: {exc}") from None
    api_key = values.get("api_key")
    if not api_key:
        where = " or ".join(
            w for w in (f"${env_prefix}_API_KEY" if env_prefix else None,
                        str(secrets_file) if secrets_file else None) if w
        ) or "nowhere (set credentials_env or secrets_file)"
        raise CredentialsError(f"no API key found in {where}")
    if not values.get("api_secret") and pem is None:
        raise CredentialsError("an API secret or a private key is needed besides the key")
    return Credentials(api_key, values.get("api_secret", ""), values.get("passphrase"), pem)
