"""A real Ray cluster (a head and three simulated nodes) and a `MODE=ray` gateway joined to it.

These tests run only inside a network namespace that has nothing but loopback
(Ray binds the machine's other addresses otherwise):
`tests/integration/test_ray_namespace.py` runs this directory that way
(`unshare -n`, `lo` up, and 127.0.0.2 added for aiortc's ICE, which skips
127.0.0.1 as a host candidate). Collected anywhere else, they are skipped.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402  (after the importorskip above)

from media_server.gateway.ray.board import BOARD_NAME, BOARD_NAMESPACE  # noqa: E402
from media_server.gateway.ray.cluster import ENGINE_APP, ENGINE_DEPLOYMENT, LOOPBACK  # noqa: E402
from tests.server import RunningServer, start_server  # noqa: E402

NODES = 3
REPLICAS = 2


def only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if only_loopback():
        return
    skip = pytest.mark.skip(reason="runs in a loopback-only network namespace: tests/integration/test_ray_namespace.py")
    for item in items:
        if "tests/ray/" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Cluster]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "node_ip_address": LOOPBACK, "include_dashboard": False},
    )
    for _ in range(NODES):
        cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
    ray.init(address=cluster.address, namespace="tests", log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()  # type: ignore[no-untyped-call]  # Ray leaves it unannotated


@pytest.fixture(scope="session")
def ray_gateway(ray_cluster: Cluster) -> Iterator[RunningServer]:
    server = start_server(
        {
            "MODE": "ray",
            "RAY_ADDRESS": ray_cluster.address,
            "ENGINE_REPLICAS": str(REPLICAS),
            "ENGINE_WORKERS": "1",
            # Every utterance is synthesized (a replayed one would leave no replica busy to kill).
            "AUDIO_CACHE_BYTES": "0",
        }
    )
    yield server
    server.stop()


def board() -> Any:
    return ray.get_actor(BOARD_NAME, namespace=BOARD_NAMESPACE)


def replica_actor(replica: str) -> Any:
    return ray.get_actor(f"SERVE_REPLICA::{ENGINE_APP}#{ENGINE_DEPLOYMENT}#{replica}", namespace="serve")


async def kill_replica(replica: str) -> None:
    """Kill a replica's actor for good, off the event loop (the test clients stamp what they receive on it)."""
    await asyncio.to_thread(lambda: ray.kill(replica_actor(replica), no_restart=True))
