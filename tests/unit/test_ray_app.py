"""The engine's Serve application as `cluster.engine_app` builds it: the slack router, and autoscaling when asked."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("ray")

from media_server.config import Settings
from media_server.gateway.ray.cluster import engine_app
from media_server.gateway.ray.scaling import DOWNSCALE_DELAY_S, METRICS_INTERVAL_S


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
