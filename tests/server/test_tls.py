"""TLS: server certificate only, and mutual TLS with a client CA (certificates made by the
``openssl`` command line in a temporary directory)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import Config

from .fixclient import ConnectionClosed, FixClient
from .harness import make_config, run, serving

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Certs:
    server_crt: Path
    server_key: Path
    ca_crt: Path
    client_crt: Path
    client_key: Path
    rogue_crt: Path
    rogue_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True,
                   timeout=30)


def _self_signed(d: Path, name: str, subject: str, *ext: str) -> None:
    addext = [a for e in ext for a in ("-addext", e)]
    _openssl("req", "-x509", *EC, "-keyout", f"{name}.key", "-out", f"{name}.crt",
             "-days", "2", "-subj", subject, *addext, cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("certs")
    _self_signed(d, "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    _self_signed(d, "ca", "/CN=fixgw test client CA", "basicConstraints=critical,CA:TRUE",
                 "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-new", *EC, "-keyout", "client.key", "-out", "client.csr",
             "-subj", "/CN=CLIENT1", cwd=d)
    (d / "client.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.ext",
             cwd=d)
    _self_signed(d, "rogue", "/CN=CLIENT1", "extendedKeyUsage=clientAuth")
    return Certs(d / "server.crt", d / "server.key", d / "ca.crt", d / "client.crt",
                 d / "client.key", d / "rogue.crt", d / "rogue.key")


def _config(tmp_path: Path, certs: Certs, *, client_ca: bool, relative: bool = False) -> Config:
    """``relative``: the paths are written relative to the configuration file's directory."""

    def p(path: Path) -> str:
        return os.path.relpath(path, tmp_path) if relative else str(path)

    tls = (
        "[gateway.tls]\n"
        f'cert_file = "{p(certs.server_crt)}"\nkey_file = "{p(certs.server_key)}"\n'
        + (f'client_ca_file = "{p(certs.ca_crt)}"\n' if client_ca else "")
    )
    return make_config(tmp_path, '[[session]]\ntarget_comp_id = "CLIENT1"\n',
                       gateway_extra=tls)


def _client_ctx(certs: Certs, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.server_crt))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


async def _logs_on(port: int, ctx: ssl.SSLContext) -> None:
    c = await FixClient.connect("127.0.0.1", port, ssl_context=ctx, server_hostname="localhost")
    reply = await c.logon(reset=True)  # each call starts the session's numbers afresh
    assert reply.msg_type == "A", str(reply)
    assert (await c.test_request("over-tls")).seq == 2
    assert c.writer.get_extra_info("ssl_object") is not None
    await c.close()


async def _refused(port: int, ctx: ssl.SSLContext | None) -> None:
    """The handshake fails (TLS 1.2), or with TLS 1.3 the server's alert arrives on the first
    read; either way no Logon is ever answered."""
    try:
        c = await FixClient.connect(
            "127.0.0.1", port, ssl_context=ctx, server_hostname="localhost" if ctx else None
        )
    except (ssl.SSLError, ConnectionError):
        return
    try:
        await c.send("A", [(98, 0), (108, 30)])
    except (ssl.SSLError, ConnectionError):
        await c.close()
        return
    try:
        got = await c.expect_closed(5.0)
    except ConnectionClosed:
        got = []
    await c.close()
    assert got == [], [str(m) for m in got]


def test_server_tls_without_client_certificates(tmp_path: Path, certs: Certs) -> None:
    cfg = _config(tmp_path, certs, client_ca=False)

    async def main() -> None:
        async with serving(cfg) as s:
            await _logs_on(s.port, _client_ctx(certs))
            # a client certificate is not required, but not refused either
            await _logs_on(s.port, _client_ctx(certs, (certs.client_crt, certs.client_key)))
            # a plain-TCP client speaking FIX at a TLS port gets nowhere
            await _refused(s.port, None)

    run(main())


@pytest.mark.parametrize("relative", [False, True], ids=["absolute-paths", "relative-paths"])
def test_client_certificate_required_with_client_ca(
    tmp_path: Path, certs: Certs, relative: bool
) -> None:
    cfg = _config(tmp_path, certs, client_ca=True, relative=relative)
    assert cfg.gateway.tls is not None
    assert cfg.gateway.tls.client_ca_file is not None, "client_ca_file lost by load_config"

    async def main() -> None:
        async with serving(cfg) as s:
            await _refused(s.port, _client_ctx(certs))
            await _refused(s.port, _client_ctx(certs, (certs.rogue_crt, certs.rogue_key)))
            await _logs_on(s.port, _client_ctx(certs, (certs.client_crt, certs.client_key)))

    run(main())


def test_tls_1_1_is_refused(tmp_path: Path, certs: Certs) -> None:
    cfg = _config(tmp_path, certs, client_ca=False)
    ctx = _client_ctx(certs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except ValueError:
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")

    async def main() -> None:
        async with serving(cfg) as s:
            await _refused(s.port, ctx)

    run(main())
