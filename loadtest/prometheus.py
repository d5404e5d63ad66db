"""What the server says about itself on `GET /metrics` (issue 6), read before and after a load level:
its underrun counters, and its latency histograms (time to first audio, queue wait, step time,
chunk gaps, track lag), which break the client's figures down into where the time went; and its
count of HTTP answers by route and status, which the adversarial run checks for 5xx.

Counters and histograms are cumulative, so a level's share is the difference of two scrapes.
Quantiles of a histogram are estimated as Prometheus' `histogram_quantile` does: linearly within
the bucket the rank falls in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp

GAPS = "media_server_underruns_total"
REQUESTS = "media_server_http_requests_total"
SILENCE = "media_server_underrun_seconds_total"
HISTOGRAM_PREFIX = "media_server_"
# A sample line of the Prometheus text format: name, optional {labels}, value.
# A label value may hold braces (`route="/rtc/sessions/{session_id}"`), so quoted values are skipped whole.
SAMPLE = re.compile(r'^([a-zA-Z_:][\w:]*)(?:\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\})?\s+(\S+)', re.MULTILINE)
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class ServerUnderruns:
    gaps: float
    silence_s: float

    def __sub__(self, earlier: ServerUnderruns) -> ServerUnderruns:
        return ServerUnderruns(self.gaps - earlier.gaps, round(self.silence_s - earlier.silence_s, 3))


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


@dataclass(frozen=True)
class HistogramSummary:
    """A level's share of one histogram series, in the metric's unit (seconds for `*_seconds`)."""

    count: int
    mean: float
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class Scrape:
    underruns: ServerUnderruns | None
    histograms: dict[str, Histogram]

    def since(self, earlier: Scrape) -> tuple[ServerUnderruns | None, dict[str, HistogramSummary]]:
        """The underruns and histogram summaries of what happened between `earlier` and this scrape."""
        underruns = None
        if self.underruns is not None and earlier.underruns is not None:
            underruns = self.underruns - earlier.underruns
        summaries: dict[str, HistogramSummary] = {}
        for series, histogram in self.histograms.items():
            delta = histogram - earlier.histograms[series] if series in earlier.histograms else histogram
            if delta.count > 0:
                summaries[series] = HistogramSummary(
                    count=round(delta.count),
                    mean=delta.sum / delta.count,
                    p50=delta.quantile(0.5),
                    p95=delta.quantile(0.95),
                )
        return underruns, summaries


def _series(name: str, labels: Iterable[tuple[str, str]]) -> str:
    shown = ",".join(f'{key}="{value}"' for key, value in labels)
    return f"{name}{{{shown}}}" if shown else name


def parse(exposition: str) -> Scrape:
    """The underrun counters (None when the server has none) and every `media_server_*` histogram."""
    totals: dict[str, float] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for name, raw_labels, raw_value in SAMPLE.findall(exposition):
        value = float(raw_value)
        if name in (GAPS, SILENCE):
            totals[name] = totals.get(name, 0.0) + value
            continue
        if not name.startswith(HISTOGRAM_PREFIX):
            continue
        labels = LABEL.findall(raw_labels)
        if name.endswith("_bucket"):
            bound = float(dict(labels)["le"])
            series = _series(name.removesuffix("_bucket"), [kv for kv in labels if kv[0] != "le"])
            buckets.setdefault(series, []).append((bound, value))
        elif name.endswith("_count"):
            counts[_series(name.removesuffix("_count"), labels)] = value
        elif name.endswith("_sum"):
            sums[_series(name.removesuffix("_sum"), labels)] = value
    underruns = None
    if GAPS in exposition:  # declared by its HELP/TYPE lines even before any sample
        underruns = ServerUnderruns(totals.get(GAPS, 0.0), totals.get(SILENCE, 0.0))
    histograms = {
        series: Histogram(tuple(sorted(bounds)), counts.get(series, 0.0), sums.get(series, 0.0))
        for series, bounds in buckets.items()
    }
    return Scrape(underruns, histograms)


async def scrape(http: aiohttp.ClientSession, base_url: str) -> Scrape | None:
    """The server's metrics now; None when it has no `/metrics`."""
    try:
        async with http.get(base_url + "/metrics") as resp:
            if resp.status != 200:
                return None
            return parse(await resp.text())
    except aiohttp.ClientError:
        return None


def http_statuses(exposition: str) -> dict[str, dict[str, int]]:
    """The server's count of HTTP answers: route -> status -> requests, from `media_server_http_requests_total`."""
    counts: dict[str, dict[str, int]] = {}
    for name, raw_labels, raw_value in SAMPLE.findall(exposition):
        if name == REQUESTS:
            labels = dict(LABEL.findall(raw_labels))
            by_status = counts.setdefault(labels.get("route", "?"), {})
            status = labels.get("status", "?")
            by_status[status] = by_status.get(status, 0) + round(float(raw_value))
    return counts


def status_changes(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The answers counted between two `http_statuses` readings (routes and statuses with none left out)."""
    changes: dict[str, dict[str, int]] = {}
    for route, statuses in after.items():
        for status, count in statuses.items():
            delta = count - before.get(route, {}).get(status, 0)
            if delta:
                changes.setdefault(route, {})[status] = delta
    return changes


async def scrape_statuses(http: aiohttp.ClientSession, base_url: str) -> dict[str, dict[str, int]] | None:
    """The server's HTTP answer counts now (see `http_statuses`); None when it has no `/metrics`."""
    try:
        async with http.get(base_url + "/metrics") as resp:
            if resp.status != 200:
                return None
            return http_statuses(await resp.text())
    except aiohttp.ClientError:
        return None
