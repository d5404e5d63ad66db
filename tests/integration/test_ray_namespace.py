"""Runs the `MODE=ray` tests (`tests/ray/`) inside a network namespace that has only loopback.

Ray binds the machine's non-loopback address unless it has none: in a fresh
namespace (`unshare -n`) with `lo` up every packet of the cluster, the gateway
and the clients stays in 127.0.0.0/8. 127.0.0.2 is added because aiortc's ICE
skips 127.0.0.1 as a host candidate but not other loopback addresses. Needs
root (or user namespaces) and `ip`, as `make test` has.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import ray  # noqa: F401  (make test installs it: missing, this module fails to import instead of skipping)

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE_SETUP = "ip link set lo up && ip addr add 127.0.0.2/8 dev lo"


@pytest.mark.timeout(1500)
def test_ray_mode_inside_a_loopback_namespace() -> None:
    # -rfE: the report ends with the failures' tracebacks and captured logs, not every passing test's.
    inner = f"{sys.executable} -m pytest tests/ray -p no:cacheprovider -q -rfE"
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", f"{NAMESPACE_SETUP} && exec {inner}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1400,
    )
    print(result.stdout[-40000:], result.stderr[-5000:])
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1]
