from pathlib import Path

import pytest

from connectors.common.credentials import CredentialsError, load_credentials


def test_from_environment_and_masked() -> None:
    env = {"BN_API_KEY": "abcdefghijkl", "BN_API_SECRET": "s3cr3t-value"}
    c = load_credentials("BN", environ=env)
    assert (c.api_key, c.secret) == ("abcdefghijkl", "s3cr3t-value")
    assert "s3cr3t" not in repr(c) and "efghijkl" not in repr(c) and "s3cr3t" not in str(c)


def test_from_file_environment_wins(tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    f = tmp_path / "okx.toml"
    f.write_text(f'api_key = "filekey"\napi_secret = "filesecret"\npassphrase = "pp"\n'
                 f'private_key_file = "{pem}"\n')
    c = load_credentials("OKX", f, environ={"OKX_API_KEY": "envkey"})
    assert (c.api_key, c.secret, c.passphrase) == ("envkey", "filesecret", "pp")
    assert c.private_key_pem is not None and "BEGIN PRIVATE KEY" in c.private_key_pem


def test_missing_says_where_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"\$BYBIT_API_KEY"):
        load_credentials("BYBIT", environ={"BYBIT_API_SECRET": "topsecret"})
    with pytest.raises(CredentialsError, match="secret or a private key") as exc:
        load_credentials("BYBIT", environ={"BYBIT_API_KEY": "k"})
    assert "topsecret" not in str(exc.value)
    with pytest.raises(CredentialsError, match="cannot read"):
        load_credentials(None, tmp_path / "absent.toml")
