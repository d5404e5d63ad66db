"""Fetching user-supplied audio URLs: off by default, then https to allow-listed public hosts only.

A real https server on loopback (a certificate from a throwaway CA that the
fetcher is told to trust through `SSL_CERT_FILE`) stands in for the remote
host. Being loopback, it is refused unless `REMOTE_AUDIO_ALLOW_PRIVATE` is set,
which is itself one of the checks.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import pytest_asyncio
import trustme
from aiohttp import web

from media_server.api.remote_audio import MAX_REDIRECTS, fetch_reference
from media_server.config import Settings
from media_server.errors import RemoteFetchFailed, UrlRefused

AUDIO = b"RIFF" + bytes(range(256)) * 64
LIMIT = 64 * 1024


@dataclass
class Remote:
    port: int

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"


async def _audio(request: web.Request) -> web.Response:
    return web.Response(body=AUDIO, content_type="audio/wav")


async def _streamed_too_large(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(LIMIT // 4096 + 2):
        await response.write(bytes(4096))
    return response


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _missing(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()


@pytest.fixture
def trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return ca


@pytest_asyncio.fixture
async def remote(trust: trustme.CA) -> AsyncIterator[Remote]:
    app = web.Application()
    app.router.add_get("/ref.wav", _audio)
    app.router.add_get("/streamed", _streamed_too_large)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/missing", _missing)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trust.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    _, port = runner.addresses[0][:2]
    yield Remote(port)
    await runner.cleanup()


ALLOWED = Settings(
    allow_remote_audio_urls=True,
    remote_audio_hosts=("localhost",),
    remote_audio_allow_private=True,
    remote_audio_max_bytes=LIMIT,
)


async def refusal(url: str, settings: Settings) -> str:
    with pytest.raises(UrlRefused) as refused:
        await fetch_reference(url, settings)
    return refused.value.message


@pytest.mark.asyncio
async def test_an_allowed_host_is_fetched(remote: Remote) -> None:
    assert await fetch_reference(remote.url("/ref.wav"), ALLOWED) == AUDIO


@pytest.mark.asyncio
async def test_fetching_is_off_by_default(remote: Remote) -> None:
    assert "ALLOW_REMOTE_AUDIO_URLS" in await refusal(remote.url("/ref.wav"), Settings())
    disabled = replace(ALLOWED, allow_remote_audio_urls=False)
    assert "ALLOW_REMOTE_AUDIO_URLS" in await refusal(remote.url("/ref.wav"), disabled)


@pytest.mark.asyncio
async def test_only_https(remote: Remote) -> None:
    assert "only https" in await refusal(f"http://localhost:{remote.port}/ref.wav", ALLOWED)


@pytest.mark.asyncio
async def test_only_listed_hosts_exactly(remote: Remote) -> None:
    assert "not one of REMOTE_AUDIO_HOSTS" in await refusal(remote.url("/ref.wav", host="127.0.0.1"), ALLOWED)
    suffix = replace(ALLOWED, remote_audio_hosts=("host",))
    assert "not one of REMOTE_AUDIO_HOSTS" in await refusal(remote.url("/ref.wav"), suffix)


@pytest.mark.asyncio
async def test_credentials_in_the_url_are_refused(remote: Remote) -> None:
    assert "user or password" in await refusal(remote.url("/ref.wav", host="user:pw@localhost"), ALLOWED)


@pytest.mark.asyncio
async def test_a_listed_name_that_resolves_to_loopback_is_refused(remote: Remote) -> None:
    public_only = replace(ALLOWED, remote_audio_allow_private=False)
    assert "a loopback address" in await refusal(remote.url("/ref.wav"), public_only)


@pytest.mark.asyncio
async def test_private_and_mapped_literals_are_refused(remote: Remote) -> None:
    for host, literal in (("10.1.2.3", "10.1.2.3"), ("::ffff:127.0.0.1", "[::ffff:127.0.0.1]")):
        settings = replace(ALLOWED, remote_audio_hosts=(host,), remote_audio_allow_private=False)
        assert "address" in await refusal(remote.url("/ref.wav", host=literal), settings)


@pytest.mark.asyncio
async def test_link_local_is_refused_even_when_private_addresses_are_allowed() -> None:
    metadata = replace(ALLOWED, remote_audio_hosts=("169.254.169.254",))
    assert "link-local" in await refusal("https://169.254.169.254/latest/meta-data", metadata)


@pytest.mark.asyncio
async def test_redirects_stay_on_the_same_host(remote: Remote) -> None:
    same = remote.url("/redirect") + "?to=/ref.wav"
    assert await fetch_reference(same, ALLOWED) == AUDIO
    both = replace(ALLOWED, remote_audio_hosts=("localhost", "127.0.0.1"))
    other = remote.url("/redirect") + "?to=" + remote.url("/ref.wav", host="127.0.0.1")
    assert "another host" in await refusal(other, both)
    assert f"more than {MAX_REDIRECTS}" in await refusal(remote.url("/loop"), ALLOWED)


@pytest.mark.asyncio
async def test_the_body_is_capped(remote: Remote) -> None:
    small = replace(ALLOWED, remote_audio_max_bytes=len(AUDIO) - 1)
    assert "over the limit" in await refusal(remote.url("/ref.wav"), small)
    assert "over the limit" in await refusal(remote.url("/streamed"), ALLOWED)


@pytest.mark.asyncio
async def test_an_error_status_is_a_fetch_failure(remote: Remote) -> None:
    with pytest.raises(RemoteFetchFailed, match="404"):
        await fetch_reference(remote.url("/missing"), ALLOWED)
