#!/bin/sh
# Entrypoint of the cuda image: prepare the GPU, then run the command.
#
# - persistence mode (nvidia-smi -pm 1) and clocks locked at their maximum
#   (-lgc for the graphics clock, -ac for the application clocks): each is
#   tried when the container runs as root, and a refusal (no GPU, no
#   permission, not supported) is one log line, never a failed start;
# - ENGINE_CPUS: a CPU list for taskset (e.g. 0-7,16-23), or `gpu` for the
#   CPUs local to GPU 0 (its NUMA node); unset: no pinning;
# - started as root, the command itself runs as APP_USER.
#
# See docs/operations.md.
set -eu

log() {
    printf 'gpu-prep: %s\n' "$*" >&2
}

# Run "$@"; log what was done, or why not in one line.
attempt() {
    what=$1
    shift
    if output=$("$@" 2>&1); then
        log "$what"
    else
        log "$what: refused ($(printf '%s' "$output" | head -n 1))"
    fi
}

prepare_gpu() {
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        log "nvidia-smi not found: no GPU preparation"
        return
    fi
    if ! nvidia-smi -L >/dev/null 2>&1; then
        log "no GPU visible: no GPU preparation"
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        log "not root: persistence mode and clock locks are left to the host"
        return
    fi
    attempt "persistence mode on" nvidia-smi -pm 1
    nvidia-smi --query-gpu=index,clocks.max.sm,clocks.max.memory --format=csv,noheader,nounits |
        while IFS=', ' read -r index sm memory; do
            attempt "GPU $index: graphics clock locked at $sm MHz" nvidia-smi -i "$index" -lgc "$sm,$sm"
            attempt "GPU $index: application clocks set to $memory,$sm MHz" nvidia-smi -i "$index" -ac "$memory,$sm"
        done
}

# The CPUs of GPU 0's NUMA node, from sysfs (nvidia-smi names the bus 00000000:17:00.0).
gpu_local_cpus() {
    bus=$(nvidia-smi -i 0 --query-gpu=pci.bus_id --format=csv,noheader 2>/dev/null) || return 1
    bus=$(printf '%s' "$bus" | cut -c5- | tr 'A-F' 'a-f')
    cat "/sys/bus/pci/devices/$bus/local_cpulist" 2>/dev/null
}

prepare_gpu

if [ -n "${ENGINE_CPUS:-}" ]; then
    cpus=$ENGINE_CPUS
    if [ "$cpus" = gpu ]; then
        cpus=$(gpu_local_cpus) || cpus=""
    fi
    if [ -n "$cpus" ] && taskset -c "$cpus" true 2>/dev/null; then
        log "pinned to CPUs $cpus"
        set -- taskset -c "$cpus" "$@"
    else
        log "ENGINE_CPUS=$ENGINE_CPUS: not a CPU list this container may use; not pinning"
    fi
fi

if [ "$(id -u)" = 0 ] && [ -n "${APP_USER:-}" ]; then
    HOME=$(getent passwd "$APP_USER" | cut -d: -f6)
    export HOME
    set -- setpriv --reuid="$APP_USER" --regid="$(id -g "$APP_USER")" --init-groups --inh-caps=-all "$@"
fi

exec "$@"
