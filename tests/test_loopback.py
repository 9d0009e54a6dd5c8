"""Test servers keep their traffic on loopback: nothing a test starts is told to reach out."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from tests.servers import seaweedfs_command

REPO = Path(__file__).resolve().parent.parent
_ADDRESS = re.compile(r"(?:https?://)?(\d{1,3}(?:\.\d{1,3}){3})")


def test_seaweedfs_runs_without_telemetry_on_loopback(tmp_path: Path) -> None:
    ports = {name: 1000 + i for i, name in enumerate(("s3", "master", "volume", "filer", "admin"))}
    command = seaweedfs_command("weed", tmp_path, ports)
    assert "-master.telemetry=false" in command
    for arg in command:
        assert "telemetry.url" not in arg
        for found in _ADDRESS.findall(arg):
            assert ipaddress.ip_address(found).is_loopback, arg
        assert not re.search(r"https?://(?!127\.0\.0\.1|localhost)", arg), arg


def test_every_weed_start_goes_through_the_one_command() -> None:
    """`weed` is started in one place only, so the flag above cannot be forgotten."""
    starts = []
    for folder in ("tests", "bench", ".ci"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix not in (".py", ".sh") or path == Path(__file__):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if re.search(r"[\"']mini[\"']|weed mini -", text):
                starts.append(path.relative_to(REPO).as_posix())
    assert starts == ["tests/servers.py"]


def test_moto_binds_loopback() -> None:
    text = (REPO / "tests" / "servers.py").read_text(encoding="utf-8")
    assert 'ThreadedMotoServer(ip_address="127.0.0.1"' in text
