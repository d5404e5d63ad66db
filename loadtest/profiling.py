"""Where the server's time goes: py-spy samples its process while a load level runs.

py-spy (`pip install py-spy`) writes collapsed stacks (`--format raw --threads`), kept beside the
results; the summary in the results file gives each thread group's share of the samples and the
functions that were on top of the stack most (self), and the project's own functions that most
time was spent under (inclusive). py-spy leaves out threads it sees idle, but a thread waiting on
a lock or in `select` may still be counted, so the shares are of sampled, not strictly busy, time.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

SAMPLE_RATE_HZ = 25  # low, so py-spy itself takes little of a 2-core machine
TOP = 15
# "thread (123): engine-worker-0" -> "engine-worker"; "func (path/file.py:12)" -> "func (path/file.py)"
THREAD = re.compile(r"^thread \(\d+\): ([^;]*?)[-_]?\d*$")
LINE_NUMBER = re.compile(r":\d+\)$")
PROJECT_FILE = re.compile(r"\((media_server|signaling)/(?!__main__\.py)")


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    threads: dict[str, float]
    top_self: list[tuple[str, float]]
    top_project_inclusive: list[tuple[str, float]]


def record_command(path: Path, rate_hz: int = SAMPLE_RATE_HZ) -> list[str]:
    """`py-spy record` writing collapsed stacks to `path`; a target (`--pid=N` or `-- command`) is to follow."""
    executable = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if executable is None:
        raise RuntimeError("profiling needs py-spy: pip install py-spy")
    return [executable, "record", "--format=raw", f"--output={path}", f"--rate={rate_hz}", "--threads", "--nonblocking"]


class Profiler:
    """py-spy recording process `pid` for the duration of a `with` block into `path`."""

    def __init__(self, pid: int, path: Path) -> None:
        self._command = [*record_command(path), f"--pid={pid}"]
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        self._process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            self._process.wait(timeout=30)


def _share(counter: Counter[str], total: int) -> list[tuple[str, float]]:
    return [(name, round(100 * count / total, 1)) for name, count in counter.most_common(TOP)]


def summarize(paths: Sequence[Path]) -> ProfileSummary | None:
    """Shares (percent of samples) by thread group and by function, from py-spy's collapsed stacks."""
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    lines = [line for path in paths if path.is_file() for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        thread, *frames = stack.split(";")
        count = int(count_text)
        total += count
        match = THREAD.match(thread)
        threads[match.group(1) if match else thread] += count
        functions = [LINE_NUMBER.sub(")", frame) for frame in frames]
        if functions:
            own[functions[-1]] += count
        for function in {f for f in functions if PROJECT_FILE.search(f)}:
            under[function] += count
    if total == 0:
        return None
    return ProfileSummary(
        samples=total,
        threads={name: round(100 * count / total, 1) for name, count in threads.most_common()},
        top_self=_share(own, total),
        top_project_inclusive=_share(under, total),
    )
