"""What the load costs: CPU of each process under test, the machine it runs on, and the load
generator's own event-loop lag (a saturated generator inflates every client-side timing)."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from loadtest.stats import Distribution, distribution

LAG_PROBE_PERIOD_S = 0.010
QUIET_PERCENT = 25.0


@dataclass(frozen=True)
class CpuUsage:
    """CPU time used in a window; `percent` is of one core (200 = both cores of a 2-core machine)."""

    cpu_s: float
    percent: float


def _busy_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.system + getattr(times, "nice", 0.0) + getattr(times, "irq", 0.0))


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of process `pid` in MiB (None when unknown or gone)."""
    if pid is None:
        return None
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.Error:
        return None


class CpuMeter:
    """Measures the CPU of named processes, and of the whole machine, between `start` and `stop`."""

    def __init__(self, pids: Mapping[str, int | None]) -> None:
        self._processes = {name: psutil.Process(pid) if pid else None for name, pid in pids.items()}
        self._started_at = 0.0
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._start = {"machine": _machine_busy_s()}
        for name, process in self._processes.items():
            if process is not None:
                self._start[name] = _busy_s(process)

    def stop(self) -> dict[str, CpuUsage | None]:
        """Usage per process name (None when unknown or gone), of the whole machine (all cores summed),
        and of everything else on it (`others`: a busy neighbour skews a run, so it is reported)."""
        wall_s = max(time.monotonic() - self._started_at, 1e-9)
        usage: dict[str, CpuUsage | None] = {}
        for name, process in self._processes.items():
            try:
                used = _busy_s(process) - self._start[name] if process is not None else None
            except psutil.Error:
                used = None
            usage[name] = None if used is None else CpuUsage(round(used, 2), round(100 * used / wall_s, 1))
        machine = _machine_busy_s() - self._start["machine"]
        usage["machine"] = CpuUsage(round(machine, 2), round(100 * machine / wall_s, 1))
        measured = [u.cpu_s for name, u in usage.items() if name != "machine" and u is not None]
        others = max(0.0, machine - sum(measured))
        usage["others"] = CpuUsage(round(others, 2), round(100 * others / wall_s, 1))
        return usage


async def wait_for_quiet(max_wait_s: float, busy_percent: float = QUIET_PERCENT) -> bool:
    """Wait until the machine used under `busy_percent` of one core over a second (before a level,
    when the server is idle, that is everybody else); False when it stayed busy for `max_wait_s`."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before, started = _machine_busy_s(), time.monotonic()
        await asyncio.sleep(1.0)
        if 100 * (_machine_busy_s() - before) / (time.monotonic() - started) < busy_percent:
            return True
        if time.monotonic() >= deadline:
            return False


@dataclass
class LoopLagProbe:
    """Samples how late this event loop wakes a task that sleeps 10 ms (use as `async with`)."""

    lags_ms: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.create_task(self._run(), name="loop-lag-probe")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> Distribution | None:
        return distribution(self.lags_ms)

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_PROBE_PERIOD_S)
            self.lags_ms.append((time.monotonic() - before - LAG_PROBE_PERIOD_S) * 1000)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """The machine a run measured, for the results file."""
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_model(),
        "logical_cpus": psutil.cpu_count(logical=True),
        "physical_cpus": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
