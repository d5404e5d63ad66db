"""What a running server says about itself on `GET /metrics`, read with prometheus_client's own
text parser: every sample by name and labels, the families it declares, and from them what the
tests and the load harness ask of it: its count of HTTP answers by route and status, its underrun
counters and its latency histograms (time to first audio, queue wait, step time, chunk gaps, track
lag), which break a client's figures down into where the time went.

Counters and histograms are cumulative, so what happened between two scrapes is their difference
(`since`, `status_changes`). Quantiles of a histogram are estimated as Prometheus'
`histogram_quantile` does: linearly within the bucket the rank falls in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[Key, float]

REQUESTS = "media_server_http_requests_total"
GAPS = "media_server_underruns_total"
SILENCE = "media_server_underrun_seconds_total"
HISTOGRAM_PREFIX = "media_server_"


def sample(name: str, **labels: str) -> Key:
    """The key of one sample in `Samples`: its name and its labels, sorted."""
    return name, tuple(sorted(labels.items()))


@dataclass(frozen=True)
class Exposition:
    """One scrape: every sample, and the name of every family declared (with samples or none yet)."""

    samples: Samples
    families: frozenset[str]

    def declares(self, name: str) -> bool:
        # The parser names a counter's family without its `_total`.
        return name in self.families or name.removesuffix("_total") in self.families


def parse(text: str) -> Exposition:
    families = list(text_string_to_metric_families(text))
    samples = {sample(s.name, **s.labels): s.value for family in families for s in family.samples}
    return Exposition(samples, frozenset(family.name for family in families))


class MetricsUnavailable(Exception):
    """`GET /metrics` answered something other than 200."""


async def scrape(
    base_url: str, headers: Mapping[str, str] | None = None, http: aiohttp.ClientSession | None = None
) -> Exposition:
    """The server's metrics now (on `http` when given); MetricsUnavailable unless it answers 200."""
    if http is None:
        async with aiohttp.ClientSession() as own:
            return await scrape(base_url, headers, own)
    async with http.get(base_url + "/metrics", headers=headers) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise MetricsUnavailable(f"GET {base_url}/metrics answered {resp.status}: {text[:200]}")
    return parse(text)


async def scrape_if_any(http: aiohttp.ClientSession, base_url: str) -> Exposition | None:
    """The server's metrics now; None when it has no `/metrics` or cannot be reached."""
    try:
        return await scrape(base_url, http=http)
    except (MetricsUnavailable, aiohttp.ClientError):
        return None


def http_statuses(samples: Samples) -> dict[str, dict[str, int]]:
    """The server's count of HTTP answers: route -> status -> requests (a WebSocket session counts as one)."""
    counts: dict[str, dict[str, int]] = {}
    for (name, labels), value in samples.items():
        if name == REQUESTS:
            by_label = dict(labels)
            by_status = counts.setdefault(by_label.get("route", "?"), {})
            status = by_label.get("status", "?")
            by_status[status] = by_status.get(status, 0) + round(value)
    return counts


def internal_errors(samples: Samples) -> int:
    """HTTP requests that ended in a 500, on any route."""
    return sum(statuses.get("500", 0) for statuses in http_statuses(samples).values())


def status_changes(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The answers counted between two `http_statuses` readings (routes and statuses with none left out)."""
    changes: dict[str, dict[str, int]] = {}
    for route, statuses in after.items():
        for status, count in statuses.items():
            delta = count - before.get(route, {}).get(status, 0)
            if delta:
                changes.setdefault(route, {})[status] = delta
    return changes


@dataclass(frozen=True)
class ServerUnderruns:
    gaps: float
    silence_s: float

    def __sub__(self, earlier: ServerUnderruns) -> ServerUnderruns:
        return ServerUnderruns(self.gaps - earlier.gaps, round(self.silence_s - earlier.silence_s, 3))


def underruns(exposition: Exposition) -> ServerUnderruns | None:
    """The underrun counters summed over routes; None when the server declares none."""
    if not exposition.declares(GAPS):
        return None
    totals = {GAPS: 0.0, SILENCE: 0.0}
    for (name, _), value in exposition.samples.items():
        if name in totals:
            totals[name] += value
    return ServerUnderruns(totals[GAPS], totals[SILENCE])


@dataclass(frozen=True)
class Histogram:
    """One histogram series: cumulative counts at each bucket's upper bound, its count and sum."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float

    def __sub__(self, earlier: Histogram) -> Histogram:
        before = dict(earlier.buckets)
        buckets = tuple((bound, count - before.get(bound, 0.0)) for bound, count in self.buckets)
        return Histogram(buckets, self.count - earlier.count, self.sum - earlier.sum)

    def quantile(self, q: float) -> float | None:
        if self.count <= 0:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower  # beyond the last finite bucket: its bound is all that is known
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower


def _series(name: str, labels: Iterable[tuple[str, str]]) -> str:
    shown = ",".join(f'{key}="{value}"' for key, value in labels)
    return f"{name}{{{shown}}}" if shown else name


def histograms(samples: Samples) -> dict[str, Histogram]:
    """Every `media_server_*` histogram, by series (`name{label="value"}`, its labels but `le` sorted)."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if not name.startswith(HISTOGRAM_PREFIX):
            continue
        if name.endswith("_bucket"):
            series = _series(name.removesuffix("_bucket"), [kv for kv in labels if kv[0] != "le"])
            buckets.setdefault(series, []).append((float(dict(labels)["le"]), value))
        elif name.endswith("_count"):
            counts[_series(name.removesuffix("_count"), labels)] = value
        elif name.endswith("_sum"):
            sums[_series(name.removesuffix("_sum"), labels)] = value
    return {
        series: Histogram(tuple(sorted(bounds)), counts.get(series, 0.0), sums.get(series, 0.0))
        for series, bounds in buckets.items()
    }


@dataclass(frozen=True)
class HistogramSummary:
    """The share of one histogram series between two scrapes, in the metric's unit (seconds for `*_seconds`)."""

    count: int
    mean: float
    p50: float | None
    p95: float | None


def since(earlier: Exposition, later: Exposition) -> tuple[ServerUnderruns | None, dict[str, HistogramSummary]]:
    """The underruns and histogram summaries of what happened between two scrapes."""
    before, after = underruns(earlier), underruns(later)
    gaps = after - before if after is not None and before is not None else None
    earlier_histograms = histograms(earlier.samples)
    summaries: dict[str, HistogramSummary] = {}
    for series, histogram in histograms(later.samples).items():
        delta = histogram - earlier_histograms[series] if series in earlier_histograms else histogram
        if delta.count > 0:
            summaries[series] = HistogramSummary(
                count=round(delta.count),
                mean=delta.sum / delta.count,
                p50=delta.quantile(0.5),
                p95=delta.quantile(0.95),
            )
    return gaps, summaries
