"""The results as Markdown tables, for `loadtest/RESULTS.md` and the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loadtest.answers import ADMISSION_REFUSALS, CUT_SHORT, FAILURES, NO_ANSWER, status_class
from loadtest.calls import calls_report
from loadtest.ray_mode import ray_report
from loadtest.results import Document, http_phases, rtc_levels

PROFILE_TOP = 8
Row = dict[str, Any]


def _pair(summary: Row, name: str, low: str = "p50", high: str = "p95") -> str:
    dist = summary[name]
    return "-" if dist is None else f"{dist[low]:.0f} / {dist[high]:.0f}"


def _cpu(cpu: Row, name: str) -> str:
    usage = cpu.get(name)
    return "-" if usage is None else f"{usage['percent']:.0f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def rtc_table(levels: Sequence[Row]) -> str:
    header = (
        "sessions",
        "mode",
        "server settings",
        "done / sent",
        "server TTFA p50 / p95",
        "client TTFA p50 / p95 (raw)",
        "client TTFA p50 / p95 (-80 ms)",
        "audible stretch p95",
        "playout stretch p95 / max",
        "underruns (utt. / sessions / server)",
        "frame gap p95 / max",
        "CPU % server / loadgen / others / machine",
        "loadgen lag p95",
        "server RSS MiB before / after",
    )
    rows = []
    for level in levels:
        s, cpu = level["summary"], level["cpu"]
        server = s["server_underruns"]
        lag = level["loadgen_loop_lag"]
        rows.append(
            (
                str(level["peers"]),
                level["mode"],
                level["settings"],
                f"{s['completed']} / {s['utterances']}",
                _pair(s, "server_ttfa"),
                _pair(s, "client_ttfa"),
                _pair(s, "client_ttfa_corrected"),
                "-" if s["stretch"] is None else f"{s['stretch']['p95']:.0f}",
                _pair(s, "playout_stretch", "p95", "max"),
                f"{s['underrun_utterances']} / {s['sessions_with_underruns']} / "
                + ("n/a" if server is None else f"{server['gaps']:.0f}"),
                _pair(s, "max_gap", "p95", "max"),
                " / ".join(_cpu(cpu, name) for name in ("server", "loadgen", "others", "machine")),
                "-" if lag is None else f"{lag['p95']:.1f}",
                " / ".join("-" if mib is None else f"{mib:.0f}" for mib in level.get("server_rss_mib") or (None, None)),
            )
        )
    return _table(header, rows)


# The server's own latency histograms (from /metrics) shown per level: (column, series).
SERVER_SERIES = (
    ("TTFA", 'media_server_ttfa_seconds{route="webrtc"}'),
    ("queue wait (real-time)", 'media_server_queue_wait_seconds{priority="realtime"}'),
    ("engine step", "media_server_engine_step_seconds"),
    ("chunk gap", 'media_server_chunk_gap_seconds{route="webrtc"}'),
    ("track lag", "media_server_track_lag_seconds"),
)


def server_table(levels: Sequence[Row]) -> str:
    """Where the server says the time went: its histograms' p50 / p95 in ms, per level."""
    header = ("sessions", "mode", "server settings", *(f"{name} p50 / p95" for name, _ in SERVER_SERIES))
    rows = []
    for level in levels:
        histograms = level.get("server_histograms") or {}
        cells = []
        for _, series in SERVER_SERIES:
            h = histograms.get(series)
            cells.append("-" if h is None else f"{1000 * (h['p50'] or 0):.0f} / {1000 * (h['p95'] or 0):.0f}")
        rows.append((str(level["peers"]), level["mode"], level["settings"], *cells))
    return _table(header, rows)


def http_table(phases: Sequence[Row]) -> str:
    header = (
        "target",
        "server settings",
        "route",
        "clients",
        "ok / sent",
        "TTFB p50 / p95",
        "total p50 / p95",
        "audio x real time",
        "req/s",
        "CPU % server / piper / loadgen / others / machine",
    )
    rows = []
    for phase in phases:
        s, cpu = phase["summary"], phase["cpu"]
        rows.append(
            (
                phase["target"],
                "-" if phase["target"] == "piper" else phase["settings"],
                f"`{phase['route']}`",
                str(phase["concurrency"]),
                f"{s['ok']} / {s['requests']}",
                _pair(s, "ttfb"),
                _pair(s, "total"),
                f"{s['audio_x_realtime']:.1f}",
                f"{s['requests_per_s']:.2f}",
                " / ".join(_cpu(cpu, name) for name in ("server", "piper", "loadgen", "others", "machine")),
            )
        )
    return _table(header, rows)


def _counts(counts: Row) -> str:
    return ", ".join(f"{key}: {n}" for key, n in counts.items()) or "-"


def _seconds(dist: Row | None, what: str) -> str:
    return "" if dist is None else f" ({what} p50 {dist['p50']:.0f} s, max {dist['max']:.0f} s)"


def _flood(flood: Row) -> str:
    return (
        f"{flood['connections']} connections, {flood['messages_sent']} messages; "
        f"{flood['disconnects']} dropped by the server{_seconds(flood['seconds_to_disconnect'], 'after')}; "
        f"{flood['open_at_end']} open at the end"
    )


def _attack_rows(run: Row) -> list[tuple[str, str, str]]:
    config, probe, slow, offers, batch = (
        run["config"],
        run["rate_probe"],
        run["slow_bodies"],
        run["candidates"],
        run["batch"],
    )
    offer_kinds = "; ".join(f"{kind}: {_counts(counts)}" for kind, counts in offers["offers"].items())
    return [
        (f"non-reading `{run['non_readers']['path']}`", str(config["non_readers"]), _flood(run["non_readers"])),
        (
            f"non-reading `{run['telephony']['path']}` flood",
            str(config["telephony_flooders"]),
            _flood(run["telephony"]),
        ),
        (
            "reading telephony flood",
            "1",
            f"{probe['messages_sent']} messages, {probe['rate_limited_events']} `rate_limited` events, "
            f"{probe['disconnects']} dropped",
        ),
        (
            "malformed JSON",
            "1",
            f"{run['malformed']['rounds']} rounds (each payload, by where it went, below)",
        ),
        (
            f"slow `/tts` bodies (a byte every {slow['byte_every_s']:g} s)",
            str(slow["clients"]),
            _counts(slow["outcomes"]) + _seconds(slow["held_s"], "held"),
        ),
        ("candidate-heavy offers", "1", f"{offer_kinds}; hang-ups: {_counts(offers['hang_ups'])}"),
        (
            "batch flood `/v1/audio/speech`",
            str(batch["loops"]),
            f"{_counts(batch['statuses'])}; {batch['audio_s']:.0f} s of audio, {batch['answers_per_s']:.1f} answers/s",
        ),
    ]


STATUS_CLASSES = ("1xx", "2xx", "4xx", *ADMISSION_REFUSALS, "5xx", CUT_SHORT, NO_ANSWER)


def _status_rows(run: Row) -> list[tuple[str, ...]]:
    server = run["server_statuses"] or {}
    rows = []
    for route in sorted(set(run["client_statuses"]) | set(server)):
        classes = dict.fromkeys(STATUS_CLASSES, 0)
        for key, n in run["client_statuses"].get(route, {}).items():
            name = status_class(key)
            classes[name] = classes.get(name, 0) + n
        seen = "n/a" if run["server_statuses"] is None else _counts(server.get(route, {}))
        rows.append((f"`{route}`", *(str(n) for n in classes.values()), seen))
    return rows


def intelligibility_report(doc: Document) -> str:
    """Word error rates of our speech and raw Piper's, sentence by sentence (`loadtest.intelligibility`)."""
    run = doc["intelligibility"]
    summary = run["summary"]
    rows = [
        f"| {h['sentence']} | {h['ours_errors']} | {h['raw_errors']} | {len(h['reference'].split())} "
        f"| {h['ours_written_errors']} | {h['raw_written_errors']} |"
        for h in run["sentences"]
    ]
    verdict = "pass" if summary["passed"] else "fail"
    return "\n".join(
        [
            f"Intelligibility ({summary['model']}), against the spoken references: WER ours "
            f"**{summary['ours_wer']:.3f}**, raw Piper **{summary['raw_wer']:.3f}** ({verdict}: target <= 0.18 "
            f"and <= 0.7x raw Piper). Against the written sentences: ours {summary['ours_written_wer']:.3f}, "
            f"raw Piper {summary['raw_written_wer']:.3f}.",
            "",
            "| sentence | our errors | raw Piper errors | words | ours vs written | raw vs written |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )


def adversarial_report(doc: Document) -> str:
    """The adversarial run of `doc`: its verdict, the live sessions, each attack, and every answer by route."""
    run = doc["adversarial"]
    verdict = "**pass**" if run["passed"] else "**fail**: " + "; ".join(run["failures"])
    config, rss, live = run["config"], run["server_rss"], run["live"]
    parts = [f"Adversarial run, {run['duration_s']:.0f} s: {verdict}"]
    rss_cell = (
        "-"
        if rss["start_mib"] is None
        else (
            f"{rss['start_mib']:.0f} / {rss['max_mib']:.0f} / {rss['end_mib']:.0f} "
            f"(+{rss['growth_mib']:.0f}, bound {config['max_rss_growth_mib']:.0f})"
        )
    )
    statuses = run["client_statuses"]
    fives = sum(n for counts in statuses.values() for k, n in counts.items() if status_class(k) in FAILURES)
    busy = sum(n for counts in statuses.values() for k, n in counts.items() if k in ADMISSION_REFUSALS)
    if live is None:
        live_cells = [str(config["sessions"]), run["live_error"] or "-", "-", "-", "-"]
    else:
        s = live["summary"]
        server = s["server_underruns"]
        live_cells = [
            str(live["peers"]),
            f"{s['completed']} / {s['utterances']}",
            _pair(s, "server_ttfa"),
            _pair(s, "client_ttfa_corrected"),
            f"{s['underrun_utterances']} / {s['sessions_with_underruns']} / "
            + ("n/a" if server is None else f"{server['gaps']:.0f}"),
        ]
    header = (
        "live sessions",
        "done / sent",
        "server TTFA p50 / p95",
        "client TTFA p50 / p95 (-80 ms)",
        "underruns (utt. / sessions / server)",
        "server RSS MiB start / max / end",
        "5xx (not busy) or cut short",
        "503 busy",
        "server alive after",
    )
    parts.append(
        _table(header, [(*live_cells, rss_cell, str(fives), str(busy), "yes" if run["server_alive"] else "no")])
    )
    parts.append(_table(("attack", "clients", "what the server did"), _attack_rows(run)))
    malformed = run["malformed"]["outcomes"]
    parts.append(
        _table(("malformed JSON: where, payload", "answers"), [(what, _counts(c)) for what, c in malformed.items()])
    )
    by_route = ("route", *STATUS_CLASSES, "the server's own count")
    parts.append("Every answer the attackers got, by route:\n\n" + _table(by_route, _status_rows(run)))
    if run["server_errors"]:
        parts.append(
            "Server errors:\n"
            + "\n".join(
                f"- `{e['route']}` {e['what']}: {e['status']} {e['code']}: {e['message']}" for e in run["server_errors"]
            )
        )
    if run["attack_errors"]:
        parts.append("Attacks that stopped early:\n" + "\n".join(f"- {error}" for error in run["attack_errors"]))
    return "\n\n".join(parts)


def _profiles(items: Sequence[Row], label: str) -> list[str]:
    lines = []
    for item in items:
        profile = item.get("profile")
        if profile is None:
            continue
        threads = ", ".join(f"{name} {share:.0f}%" for name, share in profile["threads"].items())
        top = "; ".join(f"{name} {share:.0f}%" for name, share in profile["top_self"][:PROFILE_TOP])
        lines.append(f"- {label.format(**item)} ({profile['samples']} samples): threads {threads}. Top: {top}")
    return lines


def render(docs: Sequence[Document]) -> str:
    """Tables of every WebRTC level, capacity search, HTTP phase, adversarial and calls run in `docs`."""
    parts = []
    for doc in docs:
        machine = doc["machine"]
        where = f"{machine['date']}, {machine['cpu']}, {machine['logical_cpus']} logical CPUs"
        parts.append(f"`{doc['command']}`: {where}, code at {doc['revision']}")
    levels = rtc_levels(docs)
    if levels:
        parts.append(rtc_table(levels))
        if any(level.get("server_histograms") for level in levels):
            parts.append("The server's own account (`/metrics` histograms, ms):\n\n" + server_table(levels))
    for doc in docs:
        if doc["kind"] == "capacity":
            result = doc["capacity"]
            verdicts = "; ".join(
                f"{v['peers']}: {'pass' if v['passed'] else 'fail (' + ', '.join(v['reasons']) + ')'}"
                for v in result["verdicts"]
            )
            parts.append(f"Capacity: **{result['capacity']} sessions**. Levels tried: {verdicts}.")
    phases = http_phases(docs)
    if phases:
        parts.append(http_table(phases))
    skipped = [skip for doc in docs if doc["kind"] == "http" for skip in doc["http"]["skipped"]]
    if skipped:
        parts.append("\n".join(f"- skipped {s['target']} `{s['route']}`: {s['reason']}" for s in skipped))
    parts.extend(adversarial_report(doc) for doc in docs if doc["kind"] == "adversarial")
    parts.extend(calls_report(doc["calls"]) for doc in docs if doc["kind"] == "calls")
    parts.extend(intelligibility_report(doc) for doc in docs if doc["kind"] == "intelligibility")
    parts.extend(ray_report(doc["ray"]) for doc in docs if doc["kind"] == "ray")
    profiles = _profiles(levels, "{peers} sessions") + _profiles(phases, "{target} {route} x{concurrency}")
    if profiles:
        parts.append("Server profile (py-spy, share of samples):\n" + "\n".join(profiles))
    return "\n\n".join(parts) + "\n"
