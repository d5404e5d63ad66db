"""The results as one PNG, from any mix of results documents: WebRTC TTFA and HTTP TTFB as CDFs per
route, sessions vs TTFA, sessions vs stretch, the server's own latency breakdown by sessions, and
HTTP throughput beside the piper baseline. Adversarial runs have a figure of their own (the server's
memory over the run, the live sessions' TTFA, the answers by route), drawn when they are all the
documents given; among other documents they are left out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

from loadtest.answers import status_class
from loadtest.report import SERVER_SERIES, STATUS_CLASSES
from loadtest.results import Document, http_phases, rtc_levels
from loadtest.utterance import UNDERRUN_TOLERANCE_MS

TTFA_TARGET_P50_MS = 50  # at 16 sessions (loadtest/RESULTS.md, targets)
TTFA_TARGET_P95_MS = 120  # at 16 sessions; capacity counts levels with p95 under 150 ms
CAPACITY_P95_MS = 150
CDF_TICKS_MS = (20, 50, 100, 150, 200, 300, 500, 1000, 2000, 5000)
Item = dict[str, Any]


def _cdf(ax: Axes, values: Sequence[float], label: str, style: str = "-") -> None:
    if values:
        data = np.sort(np.asarray(values, dtype=np.float64))
        ax.plot(data, np.arange(1, len(data) + 1) / len(data), style, label=label, linewidth=1.2)


def _values(items: Sequence[Item], key: str) -> list[float]:
    return [float(item[key]) for item in items if item[key] is not None and item.get("error") is None]


def _stat(level: Item, name: str, key: str) -> float:
    summary = level["summary"][name]
    return float("nan") if summary is None else float(summary[key])


def _log_ms_axis(ax: Axes, label: str) -> None:
    ax.axvline(TTFA_TARGET_P95_MS, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(CDF_TICKS_MS))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(label)
    ax.set_ylabel("fraction")


def _rtc_cdf(ax: Axes, docs: Sequence[Document]) -> None:
    for doc in docs:
        if doc["kind"] != "rtc":
            continue
        for level in doc["rtc"]["levels"]:
            name = f"{level['peers']} sessions" + (" (burst)" if level["mode"] == "burst" else "")
            _cdf(ax, _values(level["utterances"], "server_ttfa_ms"), f"{name}: server")
            _cdf(ax, _values(level["utterances"], "client_ttfa_corrected_ms"), f"{name}: client - 80 ms", "--")
    _log_ms_axis(ax, "time to first audio (ms, log)")
    ax.set_title("WebRTC TTFA, CDF (grey: p95 target)")


def _phase_label(phase: Item) -> str:
    settings = "" if phase["target"] == "piper" or phase["settings"] == "defaults" else f" {phase['settings']}"
    return f"{phase['route']} x{phase['concurrency']}{settings}"


def _http_cdf(ax: Axes, phases: Sequence[Item]) -> None:
    for phase in phases:
        style = ":" if phase["target"] == "piper" else "-"
        _cdf(ax, _values(phase["requests"], "ttfb_ms"), _phase_label(phase), style)
    _log_ms_axis(ax, "time to first byte of audio (ms, log)")
    ax.set_title("HTTP / WebSocket TTFB, CDF (dotted: piper)")


def _sessions_ttfa(ax: Axes, levels: Sequence[Item]) -> None:
    peers = [level["peers"] for level in levels]
    ax.plot(peers, [_stat(lv, "server_ttfa", "p95") for lv in levels], "o-", label="server p95")
    ax.plot(peers, [_stat(lv, "server_ttfa", "p50") for lv in levels], "s-", label="server p50")
    ax.plot(peers, [_stat(lv, "client_ttfa_corrected", "p95") for lv in levels], "^--", label="client p95 - 80 ms")
    ax.axhline(CAPACITY_P95_MS, color="red", linewidth=0.8, label="capacity p95 limit")
    ax.axhline(TTFA_TARGET_P95_MS, color="red", linewidth=0.8, linestyle="--", label="p95 target (16)")
    ax.axhline(TTFA_TARGET_P50_MS, color="orange", linewidth=0.8, linestyle="--", label="p50 target (16)")
    ax.set_xlabel("live WebRTC sessions")
    ax.set_ylabel("TTFA (ms)")
    ax.set_title("sessions vs TTFA")


def _sessions_stretch(ax: Axes, levels: Sequence[Item]) -> None:
    peers = [level["peers"] for level in levels]
    ax.plot(peers, [_stat(lv, "playout_stretch", "p95") for lv in levels], "o-", label="playout stretch p95")
    ax.plot(peers, [_stat(lv, "playout_stretch", "max") for lv in levels], "v-", label="playout stretch max")
    ax.plot(peers, [_stat(lv, "stretch", "p95") for lv in levels], "s--", label="audible stretch p95")
    ax.plot(peers, [_stat(lv, "max_gap", "p95") for lv in levels], "x:", label="max frame gap p95")
    ax.axhline(UNDERRUN_TOLERANCE_MS, color="red", linewidth=0.8, label="underrun threshold")
    for level in levels:
        if underran := level["summary"]["underrun_utterances"]:
            ax.annotate(f"{underran} underran", (level["peers"], UNDERRUN_TOLERANCE_MS), fontsize=7)
    ax.set_xlabel("live WebRTC sessions")
    ax.set_ylabel("ms")
    ax.set_title("sessions vs stretch (above 0: silence inserted)")


def _server_breakdown(ax: Axes, levels: Sequence[Item]) -> None:
    measured = [level for level in levels if level.get("server_histograms")]
    peers = [level["peers"] for level in measured]
    for name, series in SERVER_SERIES:
        p95 = [1000 * (level["server_histograms"].get(series, {}).get("p95") or float("nan")) for level in measured]
        ax.plot(peers, p95, "o-", label=f"{name} p95")
    ax.set_yscale("log")
    ax.set_xlabel("live WebRTC sessions")
    ax.set_ylabel("ms (log)")
    ax.set_title("the server's own account (/metrics)")


def _throughput(ax: Axes, phases: Sequence[Item]) -> None:
    rows = range(len(phases))
    speed = [p["summary"]["audio_x_realtime"] for p in phases]
    colors = ["tab:grey" if p["target"] == "piper" else "tab:blue" for p in phases]
    bars = ax.barh(rows, speed, color=colors)
    for bar, phase in zip(bars, phases, strict=True):
        ttfb = phase["summary"]["ttfb"]
        if ttfb is not None:
            ax.annotate(f" TTFB {ttfb['p50']:.0f} ms", (bar.get_width(), bar.get_y()), fontsize=6)
    ax.set_yticks(rows, [_phase_label(phase) for phase in phases], fontsize=6)
    ax.set_xlim(0, max(speed) * 1.3)
    ax.invert_yaxis()
    ax.set_xlabel("seconds of audio per second (x real time)")
    ax.set_title("HTTP throughput (grey: piper baseline)")


def _memory(ax: Axes, runs: Sequence[Item]) -> None:
    for index, run in enumerate(runs, 1):
        samples = run["server_rss"]["samples"]
        if samples:
            ax.plot([t for t, _ in samples], [mib for _, mib in samples], label=f"run {index}: server RSS")
            start = run["server_rss"]["start_mib"]
            bound = start + run["config"]["max_rss_growth_mib"]
            ax.axhline(bound, color="red", linewidth=0.8, linestyle="--", label=f"run {index}: start + bound")
    ax.set_xlabel("seconds")
    ax.set_ylabel("MiB")
    ax.set_title("server memory under attack")


def _live_cdf(ax: Axes, runs: Sequence[Item]) -> None:
    for index, run in enumerate(runs, 1):
        live = run["live"]
        if live is not None:
            _cdf(ax, _values(live["utterances"], "server_ttfa_ms"), f"run {index}: server")
            _cdf(ax, _values(live["utterances"], "client_ttfa_corrected_ms"), f"run {index}: client - 80 ms", "--")
    _log_ms_axis(ax, "time to first audio (ms, log)")
    ax.set_title("live sessions' TTFA under attack, CDF")


CLASS_COLORS = ("tab:grey", "tab:green", "tab:orange", "tab:blue", "tab:red", "tab:purple", "black")


def _answers(ax: Axes, run: Item) -> None:
    statuses = run["client_statuses"]
    routes = sorted(statuses)
    totals = np.array([sum(statuses[route].values()) for route in routes], dtype=float)
    left = np.zeros(len(routes))
    for name, color in zip(STATUS_CLASSES, CLASS_COLORS, strict=True):
        counts = np.array(
            [sum(n for key, n in statuses[route].items() if status_class(key) == name) for route in routes], dtype=float
        )
        if counts.any():
            ax.barh(range(len(routes)), counts / totals, left=left, label=name, color=color)
            left += counts / totals
    labels = [f"{route} (n={total:.0f})" for route, total in zip(routes, totals, strict=True)]
    ax.set_yticks(range(len(routes)), labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("share of the route's answers")
    ax.set_title("answers by route and class (last run)")


def _plot_adversarial(runs: Sequence[Item], path: Path, title: str) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    _memory(axes[0], runs)
    _live_cdf(axes[1], runs)
    _answers(axes[2], runs[-1])
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=64)
    plt.close(fig)
    return path


def _plot_intelligibility(run: Item, path: Path) -> Path:
    """Word errors per sentence, ours beside raw Piper's."""
    heard = run["sentences"]
    fig, ax = plt.subplots(figsize=(12, 4))
    positions = np.arange(len(heard))
    ax.bar(
        positions - 0.2, [h["ours_errors"] for h in heard], 0.4, label=f"ours (WER {run['summary']['ours_wer']:.3f})"
    )
    ax.bar(
        positions + 0.2, [h["raw_errors"] for h in heard], 0.4, label=f"raw Piper (WER {run['summary']['raw_wer']:.3f})"
    )
    ax.set_xticks(positions, [str(i + 1) for i in positions])
    ax.set_xlabel("sentence")
    ax.set_ylabel("word errors")
    ax.set_title(run["summary"]["model"])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=64)
    plt.close(fig)
    return path


def plot(docs: Sequence[Document], path: Path) -> Path:
    """Draw every panel the documents have data for into `path`."""
    machine = docs[0]["machine"] if docs else {}
    if docs and all(doc["kind"] == "intelligibility" for doc in docs):
        return _plot_intelligibility(docs[-1]["intelligibility"], path)
    if docs and all(doc["kind"] == "adversarial" for doc in docs):
        title = f"media-server adversarial run, {machine.get('logical_cpus')} CPUs, {machine.get('date')}"
        return _plot_adversarial([doc["adversarial"] for doc in docs], path, title)
    levels = [level for level in rtc_levels(docs) if level["mode"] == "conversation"]
    phases = http_phases(docs)
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    panels: list[tuple[Axes, bool, Callable[[Axes], None]]] = [
        (axes[0][0], bool(rtc_levels(docs)), lambda ax: _rtc_cdf(ax, docs)),
        (axes[0][1], bool(levels), lambda ax: _sessions_ttfa(ax, levels)),
        (axes[0][2], bool(levels), lambda ax: _sessions_stretch(ax, levels)),
        (axes[1][0], any(lv.get("server_histograms") for lv in levels), lambda ax: _server_breakdown(ax, levels)),
        (axes[1][1], bool(phases), lambda ax: _http_cdf(ax, phases)),
        (axes[1][2], bool(phases), lambda ax: _throughput(ax, phases)),
    ]
    for ax, has_data, draw in panels:
        if has_data:
            draw(ax)
        else:
            ax.text(0.5, 0.5, "no data in these results", ha="center", transform=ax.transAxes)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    fig.suptitle(f"media-server load test, {machine.get('logical_cpus')} CPUs, {machine.get('date')}")
    fig.tight_layout()
    fig.savefig(path, dpi=64)
    plt.close(fig)
    return path
