"""The Ray side of `MODE=ray`: the engine's Serve application, and the cluster a gateway joins or starts.

- `engine_app(settings)`: the Serve application, one deployment of
  `EngineReplica` (`ENGINE_REPLICAS` replicas, or autoscaled up to
  `ENGINE_MAX_REPLICAS` by `scaling.EngineScaling`; a Piper replica reserves
  `ENGINE_WORKERS` CPUs, a Qwen3-TTS replica one GPU), its calls routed by
  `routing.SlackRouter`. Its ongoing-request cap is what one replica's
  scheduler admits, so calls queue in the replica, in deadline order, and not
  first-in-first-out in front of it.
- `app_from_env`: the same application for a Serve config file (KubeRay's
  `RayService`), its settings read from the replicas' environment.
- `LocalCluster`: with no `RAY_ADDRESS`, the gateway starts a Ray head node on
  loopback only (`ray start --head --node-ip-address=127.0.0.1`, no dashboard,
  no usage reports) as its child process, and stops it when it stops.
- `join` / `deploy`: blocking Ray calls, run off the event loop by `RayCore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from typing import Any

import ray
from ray import serve
from ray.serve.config import RequestRouterConfig
from ray.serve.handle import DeploymentHandle

from media_server.config import Settings
from media_server.errors import ConfigError
from media_server.gateway.ray.board import REPORT_INTERVAL_S, board_handle
from media_server.gateway.ray.replica import EngineReplica
from media_server.gateway.ray.routing import SlackRouter
from media_server.gateway.ray.scaling import autoscaling_config

log = logging.getLogger(__name__)

ENGINE_APP = "media-server-engine"
ENGINE_DEPLOYMENT = "EngineReplica"
LOOPBACK = "127.0.0.1"
HEAD_START_TIMEOUT_S = 60.0
HEAD_STOP_TIMEOUT_S = 30.0
HEALTH_CHECK_PERIOD_S = 2.0
ROUTING_STATS_TIMEOUT_S = 5.0


def replica_resources(settings: Settings) -> dict[str, float]:
    """What one replica reserves: a GPU for Qwen3-TTS (unless on CPU), else a CPU per engine worker."""
    if settings.tts_backend == "qwen" and settings.qwen_device != "cpu":
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": settings.engine_workers}


def engine_app(settings: Settings) -> Any:
    """The engine's Serve application (a `serve.Application`): `ENGINE_REPLICAS` replicas of `EngineReplica`, or
    between that and `ENGINE_MAX_REPLICAS` as `scaling.EngineScaling` decides; calls routed by `routing.SlackRouter`."""
    sizing: dict[str, Any] = (
        {"autoscaling_config": autoscaling_config(settings)}
        if settings.engine_autoscales
        else {"num_replicas": settings.engine_replicas}
    )
    routing: dict[str, Any] = {  # Ray annotates RequestRouterConfig's keyword arguments wrongly: passed as a dict
        "request_router_class": SlackRouter,
        "request_routing_stats_period_s": REPORT_INTERVAL_S,
        "request_routing_stats_timeout_s": ROUTING_STATS_TIMEOUT_S,
    }
    deployment = serve.deployment(
        name=ENGINE_DEPLOYMENT,
        **sizing,
        request_router_config=RequestRouterConfig(**routing),
        max_ongoing_requests=settings.max_queue + settings.max_batch_queue,
        ray_actor_options=replica_resources(settings),
        health_check_period_s=HEALTH_CHECK_PERIOD_S,
        health_check_timeout_s=settings.worker_stall_timeout,
        graceful_shutdown_timeout_s=settings.shutdown_grace,
    )(EngineReplica)
    return deployment.bind(settings)


def app_from_env(args: dict[str, str]) -> Any:
    """The application for a Serve config's `import_path` (KubeRay): settings from the replicas' environment."""
    if args:
        raise ConfigError(f"set the engine's settings as env_vars of its runtime_env, not as args: {sorted(args)}")
    return engine_app(Settings.from_env())


def join(address: str) -> None:
    """Connect this process to the cluster at `address` as a driver (no resources of its own)."""
    ray.init(address=address, namespace="media-server", logging_level=logging.WARNING, log_to_driver=False)


def deploy(settings: Settings) -> DeploymentHandle[Any]:
    """The engine application's handle: deployed now unless the cluster already runs it (another gateway's)."""
    serve.start(proxy_location="Disabled")
    if ENGINE_APP not in serve.status().applications:
        serve.run(engine_app(settings), name=ENGINE_APP, route_prefix=None)
    return serve.get_deployment_handle(ENGINE_DEPLOYMENT, app_name=ENGINE_APP)


def leave(undeploy: bool) -> None:
    """Disconnect; with `undeploy`, first delete the engine application and its board (a local cluster is about
    to stop: a node drains until its actors are gone)."""
    if undeploy:
        serve.shutdown()  # type: ignore[no-untyped-call]  # Ray leaves it unannotated
        ray.kill(board_handle())
    ray.shutdown()


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class LocalCluster:
    """A Ray head node on loopback, this gateway's child process (`make run MODE=ray` on one machine)."""

    def __init__(self, cpus: int) -> None:
        self._cpus = cpus
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        """Start the head node; its address once it accepts connections."""
        port = free_port()
        self._process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"),
            f"--node-ip-address={LOOPBACK}",
            f"--port={port}",
            f"--num-cpus={self._cpus}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            stdin=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(HEAD_START_TIMEOUT_S):
            while True:
                if self._process.returncode is not None:
                    raise ConfigError(f"the local Ray head node exited with status {self._process.returncode}")
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection(LOOPBACK, port)
                    writer.close()
                    await writer.wait_closed()
                    return f"{LOOPBACK}:{port}"
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Stop the head node and every Ray process it started (SIGTERM drains them; SIGKILL after a timeout)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), HEAD_STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("the local Ray head node did not stop in %g s; killing it", HEAD_STOP_TIMEOUT_S)
            process.kill()
            await process.wait()
