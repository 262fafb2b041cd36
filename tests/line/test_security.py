"""Basic256Sha256 Sign&Encrypt with certificates and username login: in, and refused."""

from __future__ import annotations

import asyncio

import pytest

from biopilot.line import LineClient, LineConfigError, LoginRefusedError
from biopilot.line.security import (
    CLIENT_APP_URI,
    SERVER_APP_URI,
    ClientSecurity,
    ServerSecurity,
    generate_certificate,
    parse_user,
)
from biopilot.line.server import LineServer
from biopilot.line.twin_server import TwinLine, twin_tagmap


@pytest.fixture(scope="module")
def secured(aloop, tmp_path_factory):
    pki = tmp_path_factory.mktemp("pki")
    server_cert = generate_certificate(pki, "server", SERVER_APP_URI)
    client_cert = generate_certificate(pki, "client", CLIENT_APP_URI)
    server = LineServer(port=0, security=ServerSecurity(server_cert, {"operator": "s3cret"}))
    line = TwinLine(server, 1, speed=3600.0)

    async def start():
        await server.start()
        await line.advance(10)

    aloop.run(start())
    yield server, line, client_cert
    aloop.run(server.stop())


def _run(aloop, server, security, until_samples=0):
    got = []

    async def sink(batch):
        got.extend(batch)

    tagmap = twin_tagmap(1, raman=False)
    client = LineClient(server.endpoint, tagmap, sink, security=security, backfill_all=True)

    async def scenario():
        stop = asyncio.Event()
        run = asyncio.create_task(client.run(stop))
        done, _ = await asyncio.wait(
            [run, asyncio.create_task(client.connected.wait())],
            timeout=30,
            return_when="FIRST_COMPLETED",
        )
        if run in done:
            run.result()
        for _ in range(400):
            if len(got) >= until_samples:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await run

    aloop.run(scenario())
    return got


def test_sign_encrypt_with_username_records(aloop, secured):
    server, _line, cert = secured
    got = _run(aloop, server, ClientSecurity(cert, "operator", "s3cret"), until_samples=90)
    assert len(got) >= 90 and {s.unit for s in got} == {"BR-01"}
    assert all(s.quality == "good" for s in got if s.tag == "temperature_c")


def test_wrong_password_is_refused(aloop, secured):
    server, _, cert = secured
    with pytest.raises(LoginRefusedError, match="BadUserAccessDenied"):
        _run(aloop, server, ClientSecurity(cert, "operator", "guess"))


def test_unsecured_client_finds_no_endpoint(aloop, secured):
    server, _, _ = secured
    with pytest.raises(LineConfigError, match="no endpoint with this security"):
        _run(aloop, server, None)


def test_parse_user_needs_name_and_password():
    assert parse_user("op:pa:ss") == ("op", "pa:ss")
    for bad in ("op", "op:", ":pw"):
        with pytest.raises(ValueError, match="NAME:PASSWORD"):
            parse_user(bad)
