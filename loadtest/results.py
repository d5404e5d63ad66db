"""The results file of one run: what was run, where, when, and everything it measured, as JSON."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loadtest.resources import machine_info

Document = dict[str, Any]
REPO = Path(__file__).resolve().parents[1]


def _revision() -> str:
    """The commit of the code under test, `-dirty` when the working tree has changes."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


def document(kind: str, command: str, server: dict[str, Any], body: dict[str, Any]) -> Document:
    """A results document: `body` (what the run measured) is kept under the run's `kind`."""
    return {
        "kind": kind,
        "command": command,
        "machine": machine_info(),
        "revision": _revision(),
        "server": server,
        kind: body,
    }


def write(doc: Document, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def load(paths: Iterable[Path]) -> list[Document]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def _settings(doc: Document) -> str:
    env: dict[str, str] = doc["server"].get("env") or {}
    return " ".join(f"{key}={value}" for key, value in sorted(env.items())) or "defaults"


def rtc_levels(docs: Iterable[Document]) -> list[dict[str, Any]]:
    """Every WebRTC level of `docs`, from swarm runs and capacity searches alike, by session count;
    each carries the spawned server's `settings`."""
    levels: list[dict[str, Any]] = []
    for doc in docs:
        found = doc["rtc"]["levels"] if doc["kind"] == "rtc" else doc.get("capacity", {}).get("levels", [])
        levels.extend({**level, "settings": _settings(doc)} for level in found)
    return sorted(levels, key=lambda level: int(level["peers"]))


def http_phases(docs: Iterable[Document]) -> list[dict[str, Any]]:
    """Every HTTP phase of `docs`, each carrying the spawned server's `settings`."""
    return [
        {**phase, "settings": _settings(doc)}
        for doc in docs
        if doc["kind"] == "http"
        for phase in doc["http"]["phases"]
    ]
