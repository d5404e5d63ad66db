"""Containers and deployment, checked statically: no Docker engine, no GPU.

The linters and validators run through deploy/check.sh; a check whose tool is
not installed is skipped with the script's reason (which names the package
that brings the tool). compose.yaml and the Dockerfile are also read here and
held to what the deployment needs, and deploy/gpu-prep.sh runs for real with
a fake `nvidia-smi` (the hardware edge) on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "deploy" / "check.sh"
GPU_PREP = ROOT / "deploy" / "gpu-prep.sh"
SKIPPED = 77


def _checks() -> list[str]:
    match = re.search(r"^ALL_CHECKS=\(([^)]*)\)", CHECK.read_text(), re.MULTILINE)
    assert match is not None, "deploy/check.sh lists its checks in ALL_CHECKS"
    return match.group(1).split()


@pytest.mark.parametrize("check", _checks())
def test_deploy_check(check: str) -> None:
    result = subprocess.run(["bash", str(CHECK), check], capture_output=True, text=True, timeout=60)
    if result.returncode == SKIPPED:
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr


class ComposeLoader(yaml.SafeLoader):
    """Compose's YAML: `!reset` (drop an inherited value) becomes the string "!reset"."""


ComposeLoader.add_constructor("!reset", lambda loader, node: "!reset")


def load_yaml(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)
    return loaded


def dockerfile_stages() -> list[str]:
    return re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)


def test_the_gpu_server_is_reserved_a_gpu_shares_ipc_and_keeps_its_voices() -> None:
    compose = load_yaml("compose.yaml")
    server = compose["services"]["server"]
    assert server["build"]["target"] == "cuda"
    devices = server["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert server["ipc"] == "host"
    assert "voices:/data/voices" in server["volumes"] and "voices" in compose["volumes"]
    assert server["environment"]["VOICE_CACHE_DIR"] == "/data/voices"
    assert any("/healthz" in part for part in server["healthcheck"]["test"])
    assert server["expose"] == ["8080"] and "ports" not in server


def test_the_proxy_terminates_tls_in_front_of_the_server() -> None:
    proxy = load_yaml("compose.yaml")["services"]["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert {"443:443", "443:443/udp"} <= set(proxy["ports"])
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["depends_on"]["server"]["condition"] == "service_healthy"
    assert proxy["environment"]["UPSTREAM"] == "server:8080"
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "tls {$TLS_ISSUER:internal}" in caddyfile and "reverse_proxy {$UPSTREAM:" in caddyfile


def test_prometheus_scrapes_the_server_on_the_compose_network() -> None:
    prometheus = load_yaml("compose.yaml")["services"]["prometheus"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert all(port.startswith("127.0.0.1:") for port in prometheus["ports"])
    jobs = {job["job_name"]: job for job in load_yaml("deploy/prometheus.yml")["scrape_configs"]}
    server = jobs["media-server"]
    assert server["metrics_path"] == "/metrics"
    assert server["static_configs"][0]["targets"] == ["server:8080"]


def test_the_cpu_override_builds_the_cpu_image_without_a_gpu() -> None:
    server = load_yaml("compose.cpu.yaml")["services"]["server"]
    assert server["build"]["target"] == "cpu"
    assert server["environment"]["TTS_BACKEND"] == "piper"
    assert server["deploy"] == server["ipc"] == server["ulimits"] == "!reset"


def test_the_dockerfile_targets_match_compose_and_the_cpu_image_is_the_default() -> None:
    stages = dockerfile_stages()
    assert stages[-1] == "cpu"
    for name in ("compose.yaml", "compose.cpu.yaml"):
        assert load_yaml(name)["services"]["server"]["build"]["target"] in stages
    dockerfile = (ROOT / "Dockerfile").read_text()
    for stage in ("cuda", "cpu"):
        body = dockerfile.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        assert re.search(r"^USER 10001:10001$", body, re.MULTILINE), stage
        assert "EXPOSE 8080" in body and "/healthz" in body and "HOST=0.0.0.0" in body, stage
        assert "LD_PRELOAD=/usr/local/lib/libjemalloc.so.2" in body, stage
        assert re.search(r'^CMD \["media-server", "serve"\]$', body, re.MULTILINE), stage
    assert 'ENTRYPOINT ["gpu-prep"]' in dockerfile


def test_the_build_context_has_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    dockerfile = (ROOT / "Dockerfile").read_text()
    sources = set(re.findall(r"source=([^,\s]+)", dockerfile))
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE):
        words = line.split()
        if not words[0].startswith("--from="):
            sources |= {word for word in words[:-1] if not word.startswith("--")}
    assert sources - {"."} <= allowed
    assert {"media_server", "signaling", "web", "pyproject.toml", "requirements.lock"} <= allowed


FAKE_NVIDIA_SMI = """#!/bin/sh
# A GPU whose graphics clock may not be locked; records each call.
echo "$*" >> "$CALLS"
case "$*" in
    -L) echo "GPU 0: Fake GPU (UUID: GPU-0)" ;;
    *clocks.max.sm*) echo "0, 1980, 2619" ;;
    *pci.bus_id*) echo "0000$FAKE_BUS" ;;
    *-lgc*) echo "Insufficient Permissions"; exit 4 ;;
esac
"""


def run_gpu_prep(
    tmp_path: Path, command: list[str], env: dict[str, str] | None = None, fake_gpu: bool = True
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if fake_gpu:
        fake = bin_dir / "nvidia-smi"
        fake.write_text(FAKE_NVIDIA_SMI)
        fake.chmod(0o755)
    environment = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "CALLS": str(tmp_path / "calls"),
        **(env or {}),
    }
    return subprocess.run(["sh", str(GPU_PREP), *command], capture_output=True, text=True, env=environment, timeout=30)


def test_without_a_gpu_it_logs_one_line_and_runs_the_command(tmp_path: Path) -> None:
    result = run_gpu_prep(tmp_path, ["echo", "serving"], fake_gpu=False)
    assert result.returncode == 0
    assert result.stdout == "serving\n"
    assert result.stderr == "gpu-prep: nvidia-smi not found: no GPU preparation\n"


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="GPU preparation and dropping to APP_USER need root")


@needs_root
def test_as_root_it_sets_persistence_and_max_clocks_and_a_refusal_is_one_line(tmp_path: Path) -> None:
    result = run_gpu_prep(tmp_path, ["echo", "serving"])
    assert result.returncode == 0 and result.stdout == "serving\n"
    assert result.stderr.splitlines() == [
        "gpu-prep: persistence mode on",
        "gpu-prep: GPU 0: graphics clock locked at 1980 MHz: refused (Insufficient Permissions)",
        "gpu-prep: GPU 0: application clocks set to 2619,1980 MHz",
    ]
    calls = (tmp_path / "calls").read_text().splitlines()
    changes = [call for call in calls if call != "-L" and not call.startswith("--query-gpu")]
    assert changes == ["-pm 1", "-i 0 -lgc 1980,1980", "-i 0 -ac 2619,1980"]


@needs_root
def test_as_root_the_command_runs_as_app_user_without_capabilities(tmp_path: Path) -> None:
    script = 'id -u; echo "$HOME"; grep ^CapEff /proc/self/status'
    result = run_gpu_prep(tmp_path, ["sh", "-c", script], env={"APP_USER": "nobody"}, fake_gpu=False)
    assert result.returncode == 0, result.stderr
    uid, home, capabilities = result.stdout.splitlines()
    assert uid == "65534" and home == "/nonexistent"
    assert capabilities.split() == ["CapEff:", "0000000000000000"]


def affinity_command() -> list[str]:
    return ["python3", "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]


def test_engine_cpus_pins_the_command(tmp_path: Path) -> None:
    result = run_gpu_prep(tmp_path, affinity_command(), env={"ENGINE_CPUS": "0"}, fake_gpu=False)
    assert result.stdout == "[0]\n"
    assert "gpu-prep: pinned to CPUs 0" in result.stderr.splitlines()


def test_a_cpu_list_the_container_may_not_use_is_logged_and_ignored(tmp_path: Path) -> None:
    result = run_gpu_prep(tmp_path, affinity_command(), env={"ENGINE_CPUS": "4095"}, fake_gpu=False)
    assert result.returncode == 0
    assert result.stdout == f"{sorted(os.sched_getaffinity(0))}\n"
    assert "gpu-prep: ENGINE_CPUS=4095: not a CPU list this container may use; not pinning" in result.stderr


def test_engine_cpus_gpu_pins_to_the_cpus_local_to_the_gpu(tmp_path: Path) -> None:
    devices = sorted(Path("/sys/bus/pci/devices").glob("*/local_cpulist"))
    if not devices:
        pytest.skip("this machine has no PCI device in sysfs to stand in for the GPU")
    bus = devices[0].parent.name
    local = devices[0].read_text().strip()
    result = run_gpu_prep(tmp_path, affinity_command(), env={"ENGINE_CPUS": "gpu", "FAKE_BUS": bus})
    assert f"gpu-prep: pinned to CPUs {local}" in result.stderr.splitlines()


def kuberay(name: str) -> dict[str, Any]:
    return load_yaml(f"deploy/kuberay/{name}")


def test_the_rayservice_serves_the_engine_application_by_rays_own_schema() -> None:
    from ray.serve.schema import ServeDeploySchema

    from media_server.gateway.ray import cluster

    service = kuberay("engine-rayservice.yaml")
    assert service["kind"] == "RayService" and service["apiVersion"] == "ray.io/v1"
    config = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    (app,) = config.applications
    assert app.name == cluster.ENGINE_APP
    module, _, attribute = app.import_path.partition(":")
    assert module == cluster.__name__ and getattr(cluster, attribute) is cluster.app_from_env
    (deployment,) = app.deployments
    assert deployment.name == cluster.ENGINE_DEPLOYMENT
    assert deployment.ray_actor_options.num_gpus == 1  # one Qwen3-TTS replica per GPU
    assert service["spec"]["rayClusterConfig"]["rayVersion"] == __import__("ray").__version__
    env = app.runtime_env["env_vars"]
    assert env["TTS_BACKEND"] == "qwen" and env["QWEN_DEVICE"] == "cuda"


def test_gateways_join_the_engine_cluster_as_cpu_less_nodes_on_the_host_network() -> None:
    service = kuberay("engine-rayservice.yaml")
    gateway = kuberay("gateway-deployment.yaml")
    assert gateway["kind"] == "Deployment"
    pod = gateway["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    (container,) = pod["containers"]
    env = {entry["name"]: entry.get("value") for entry in container["env"]}
    assert env["MODE"] == "ray"
    assert env["RAY_ADDRESS"] == f"{service['metadata']['name']}-head-svc:6379"  # KubeRay's head service
    assert "--num-cpus=0" in container["args"][0] and "exec media-server serve" in container["args"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_ray_compose_file_has_a_head_engines_and_gateways_by_profile() -> None:
    compose = load_yaml("compose.ray.yaml")
    services = compose["services"]
    assert {name: service["profiles"] for name, service in services.items()} == {
        "head": ["head"],
        "engine": ["engine"],
        "gateway": ["gateway"],
    }
    assert "--head" in services["head"]["command"] and "--num-cpus=0" in services["head"]["command"]
    assert services["engine"]["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 1
    assert services["gateway"]["environment"]["MODE"] == "ray"
    assert "--num-cpus=0" in services["gateway"]["command"][-1]
