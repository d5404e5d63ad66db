"""`EngineScaling`: the policy Serve sizes the engine deployment by, when `ENGINE_MAX_REPLICAS` lets it.

This is Ray Serve's custom autoscaling policy (`AutoscalingConfig.policy`, with
each replica's custom metrics from `record_autoscaling_stats`: alpha APIs of
`ray[serve]==2.60.0`, the version the `ray` extra pins), set by
`cluster.engine_app`. Serve's controller calls it at every control-loop tick
with an `AutoscalingContext`; each replica's figures (`replica.py`: its
first-audio estimate, its batch occupancy and its count of deadline misses)
reach the controller every `METRICS_INTERVAL_S` and are averaged over the
last `LOOK_BACK_S` (the miss counter is read raw, as its rise within that
window). `policy.desired_replicas` turns them into a replica count; Serve
rounds it up, keeps it within `ENGINE_REPLICAS` .. `ENGINE_MAX_REPLICAS`, and
acts on a rise only once it has lasted `UPSCALE_DELAY_S` and on a fall once it
has lasted `DOWNSCALE_DELAY_S`. A replica being removed finishes its calls
first (Serve's graceful shutdown, `SHUTDOWN_GRACE`); new calls are routed to
the others.

Serve records this class in the deployment's config by reference (its import
path), and its controller imports it: the head node needs the package
installed (the engine's image has it).
"""

from __future__ import annotations

import warnings
from typing import Any

from ray.serve.config import AutoscalingConfig, AutoscalingContext, AutoscalingPolicy

from media_server.config import Settings
from media_server.gateway.ray.policy import ScalingSignals, desired_replicas

METRICS_INTERVAL_S = 0.5
"""How often each replica sends its figures to Serve's controller (Serve's default is 10 s)."""
LOOK_BACK_S = 5.0
"""The window the figures are averaged over."""
UPSCALE_DELAY_S = 2.0
"""How long more replicas must be wanted before Serve starts them: a burst shorter than this is absorbed."""
DOWNSCALE_DELAY_S = 60.0
"""How long fewer replicas must do before Serve stops one."""


class EngineScaling:
    """Called by Serve's controller with the deployment's context; returns the replicas wanted and its state."""

    def __init__(self, target_first_audio_s: float) -> None:
        self._target_first_audio_s = target_first_audio_s

    def __call__(self, ctx: AutoscalingContext) -> tuple[float, dict[str, Any]]:
        averaged = ctx.aggregated_metrics or {}
        raw = ctx.raw_metrics or {}
        estimates = averaged.get("first_audio_estimate_s", {})
        occupancy = averaged.get("batch_occupancy", {})
        misses = raw.get("late_chunks", {})
        signals = []
        for replica in ctx.running_replicas:
            if replica not in estimates or replica not in occupancy:
                continue  # a replica that has not reported yet
            late = [point.value for point in misses.get(replica, [])]
            signals.append(
                ScalingSignals(
                    first_audio_estimate_s=estimates[replica],
                    batch_occupancy=occupancy[replica],
                    late_chunks=max(late) - min(late) if late else 0.0,
                )
            )
        return desired_replicas(ctx.current_num_replicas, signals, self._target_first_audio_s), {}


def autoscaling_config(settings: Settings) -> AutoscalingConfig:
    """Serve's autoscaling config for the engine: `EngineScaling` between the two replica settings."""
    policy = AutoscalingPolicy(  # type: ignore[no-untyped-call]  # Ray leaves it unannotated
        policy_function=EngineScaling,
        policy_kwargs={"target_first_audio_s": settings.engine_target_first_audio_ms / 1000},
    )
    with warnings.catch_warnings():
        # Serve 2.60 deprecates `metrics_interval_s` for environment variables it does not read yet: the field
        # is still the only way to have replicas report more often than every 10 s.
        warnings.simplefilter("ignore", DeprecationWarning)
        return AutoscalingConfig(
            min_replicas=settings.engine_replicas,
            initial_replicas=settings.engine_replicas,
            max_replicas=settings.engine_max_replicas,
            metrics_interval_s=METRICS_INTERVAL_S,
            look_back_period_s=LOOK_BACK_S,
            upscale_delay_s=UPSCALE_DELAY_S,
            downscale_delay_s=DOWNSCALE_DELAY_S,
            policy=policy,
        )
