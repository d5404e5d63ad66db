"""The engine's Serve application as `cluster.engine_app` builds it (the slack router, autoscaling when asked), and
the scaling policy on Serve's own context."""

from __future__ import annotations

from typing import Any

from ray.serve._private.common import DeploymentID, ReplicaID, TimeStampedValue
from ray.serve.config import AutoscalingContext

from media_server.config import Settings
from media_server.gateway.ray.cluster import engine_app
from media_server.gateway.ray.scaling import DOWNSCALE_DELAY_S, METRICS_INTERVAL_S, EngineScaling


def deployment_config(settings: Settings) -> Any:
    return engine_app(settings)._bound_deployment._deployment_config


def test_calls_are_routed_by_the_slack_router() -> None:
    router = deployment_config(Settings()).request_router_config
    assert router.request_router_class == "media_server.gateway.ray.routing.SlackRouter"
    assert router.request_routing_stats_period_s == 0.5


def test_a_fixed_engine_has_no_autoscaling() -> None:
    config = deployment_config(Settings(engine_replicas=2))
    assert config.num_replicas == 2 and config.autoscaling_config is None


def test_the_engine_scales_by_its_own_policy_between_the_two_replica_settings() -> None:
    scaling = deployment_config(
        Settings(engine_replicas=1, engine_max_replicas=3, engine_target_first_audio_ms=150)
    ).autoscaling_config
    assert (scaling.min_replicas, scaling.initial_replicas, scaling.max_replicas) == (1, 1, 3)
    assert scaling.policy.policy_function == "media_server.gateway.ray.scaling.EngineScaling"
    assert scaling.policy.policy_kwargs == {"target_first_audio_s": 0.15}
    assert scaling.metrics_interval_s == METRICS_INTERVAL_S and scaling.downscale_delay_s == DOWNSCALE_DELAY_S


def context(replicas: list[ReplicaID], averaged: dict[str, Any], raw: dict[str, Any]) -> AutoscalingContext:
    deployment = DeploymentID(name="EngineReplica", app_name="media-server-engine")
    return AutoscalingContext(
        deployment_id=deployment,
        deployment_name="EngineReplica",
        app_name="media-server-engine",
        current_num_replicas=len(replicas),
        target_num_replicas=len(replicas),
        running_replicas=replicas,
        total_num_requests=0.0,
        total_queued_requests=0.0,
        aggregated_metrics=averaged,
        raw_metrics=raw,
        capacity_adjusted_min_replicas=1,
        capacity_adjusted_max_replicas=4,
        policy_state={},
        last_scale_up_time=None,
        last_scale_down_time=None,
        current_time=None,
        config=None,
    )


def test_the_policy_reads_serves_averaged_figures_and_the_rise_of_the_miss_counter() -> None:
    deployment = DeploymentID(name="EngineReplica", app_name="media-server-engine")
    a, b, new = (ReplicaID(name, deployment) for name in ("a", "b", "new"))
    averaged = {"first_audio_estimate_s": {a: 0.1, b: 0.1}, "batch_occupancy": {a: 0.0, b: 0.0}}
    steady = [TimeStampedValue(1.0, 7.0), TimeStampedValue(2.0, 7.0)]
    policy = EngineScaling(target_first_audio_s=0.1)
    # "new" has not reported yet: the two that did decide, and they are at their target.
    wanted, _ = policy(context([a, b, new], averaged, {"late_chunks": {a: steady, b: steady}}))
    assert wanted == 3.0
    # Misses counted before the window (7 all along) are not misses now; a rise within it is.
    rising = [TimeStampedValue(1.0, 7.0), TimeStampedValue(2.0, 9.0)]
    wanted, _ = policy(context([a, b], averaged, {"late_chunks": {a: steady, b: rising}}))
    assert wanted == 3.0
    wanted, _ = policy(context([a, b], averaged, {"late_chunks": {a: steady, b: steady}}))
    assert wanted == 2.0
