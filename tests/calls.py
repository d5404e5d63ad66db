"""Calls for the telephony tests: a server with an AudioSocket listener, a new call of any protocol with its
control channel (the fake platforms of `clients/telephony.py`), the events of a control channel, and the server's
account of live calls, sessions and tasks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from clients.metrics import Exposition, sample, scrape
from clients.telephony import CALL_PROTOCOLS, CALL_ROUTES, CallServer
from loadtest.server_process import free_port
from tests.server import RunningServer, start_server

LONG_TEXT = (
    "Thanks for calling the support line. Your call matters to us, and a member of the team will be with you "
    "shortly. While you wait, you can find answers to common questions on our website, where the help center "
    "covers billing, orders, deliveries and returns."
)  # about 13.6 s of speech


@dataclass(frozen=True)
class CallsServer(CallServer):
    server: RunningServer


def start_calls_server(extra_env: dict[str, str] | None = None) -> CallsServer:
    """A server with an AudioSocket listener on a free port (and `extra_env`), ready."""
    port = free_port()
    running = start_server({"AUDIOSOCKET_PORT": str(port), **(extra_env or {})})
    return CallsServer(running.url, port, running)


def live(exposition: Exposition, protocol: str) -> float:
    return exposition.samples[sample("media_server_sessions", route=CALL_ROUTES[protocol])]


async def settled(http: aiohttp.ClientSession, url: str, tasks_before: float) -> Exposition:
    """The server's metrics once no call, session or extra task is left (TimeoutError if that never comes)."""
    async with asyncio.timeout(20):
        while True:
            exposition = await scrape(url, http=http)
            calls = exposition.samples[sample("media_server_calls")]
            sessions = sum(live(exposition, protocol) for protocol in CALL_PROTOCOLS)
            if (
                calls == 0
                and sessions == 0
                and exposition.samples[sample("media_server_event_loop_tasks")] <= tasks_before
            ):
                return exposition
            await asyncio.sleep(0.05)


async def baseline_tasks(http: aiohttp.ClientSession, url: str) -> float:
    return (await scrape(url, http=http)).samples[sample("media_server_event_loop_tasks")]
