"""Reading `/metrics` with one parser: underrun counters, answer counts by route and status, histograms."""

from __future__ import annotations

import pytest

from clients.metrics import ServerUnderruns, http_statuses, internal_errors, parse, since, status_changes, underruns

EXPOSITION = """\
# HELP media_server_underruns_total Gaps of silence inside an utterance.
# TYPE media_server_underruns_total counter
media_server_underruns_total{route="rtc"} 3.0
media_server_underruns_total{route="ws"} 1.0
media_server_underruns_created{route="rtc"} 1.7e9
# HELP media_server_underrun_seconds_total Seconds of silence played inside utterances.
# TYPE media_server_underrun_seconds_total counter
media_server_underrun_seconds_total{route="rtc"} 0.12
media_server_underrun_seconds_total{route="ws"} 0.02
"""


def test_underrun_counters_are_summed_over_routes() -> None:
    gaps = underruns(parse(EXPOSITION))
    assert gaps is not None and gaps.gaps == 4.0
    assert gaps.silence_s == pytest.approx(0.14)


def test_a_declared_counter_without_samples_is_zero_and_a_missing_one_is_none() -> None:
    declared = "# TYPE media_server_underruns_total counter\n"
    assert underruns(parse(declared)) == ServerUnderruns(gaps=0.0, silence_s=0.0)
    assert underruns(parse("process_cpu_seconds_total 1.0\n")) is None


def test_answer_counts_by_route_even_where_the_route_holds_braces() -> None:
    def scrape(hung_up: int, refused: int) -> str:
        return (
            f'media_server_http_requests_total{{route="/rtc/sessions/{{session_id}}",status="200"}} {hung_up}.0\n'
            f'media_server_http_requests_total{{route="/tts",status="400"}} {refused}.0\n'
            'media_server_http_requests_created{route="/tts",status="400"} 1.7e9\n'
            'media_server_underruns_total{route="webrtc"} 2.0\n'
        )

    before, after = http_statuses(parse(scrape(1, 3)).samples), http_statuses(parse(scrape(4, 3)).samples)
    assert before == {"/rtc/sessions/{session_id}": {"200": 1}, "/tts": {"400": 3}}
    assert status_changes(before, after) == {"/rtc/sessions/{session_id}": {"200": 3}}
    assert underruns(parse(scrape(1, 3))) == ServerUnderruns(gaps=2.0, silence_s=0.0)


def test_a_levels_histogram_share_and_its_quantiles() -> None:
    def scrape(counts: tuple[int, int, int, int], total_s: float) -> str:
        lines = [
            f'media_server_queue_wait_seconds_bucket{{le="{le}",priority="realtime"}} {count}'
            for le, count in zip(("0.01", "0.05", "0.1", "+Inf"), counts, strict=True)
        ]
        lines += [
            f'media_server_queue_wait_seconds_count{{priority="realtime"}} {counts[-1]}',
            f'media_server_queue_wait_seconds_sum{{priority="realtime"}} {total_s}',
        ]
        return "\n".join(lines) + "\n"

    before = parse(scrape((5, 5, 5, 5), 0.02))
    after = parse(scrape((5, 15, 25, 25), 1.22))
    _, summaries = since(before, after)
    wait = summaries['media_server_queue_wait_seconds{priority="realtime"}']
    assert wait.count == 20 and wait.mean == pytest.approx(0.06)
    assert wait.p50 == pytest.approx(0.05)  # the 10th of 20 falls at the top of the (0.01, 0.05] bucket
    assert wait.p95 == pytest.approx(0.095)  # the 19th: 9 of 10 into the (0.05, 0.1] bucket


def test_internal_errors_are_the_500s_on_every_route() -> None:
    exposition = parse(
        'media_server_http_requests_total{route="/tts",status="500"} 2.0\n'
        'media_server_http_requests_total{route="/ws/tts",status="500"} 1.0\n'
        'media_server_http_requests_total{route="/tts",status="503"} 4.0\n'
    )
    assert internal_errors(exposition.samples) == 3
