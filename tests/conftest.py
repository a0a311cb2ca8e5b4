"""Test-wide set-up: headless Qt, no network, a private cache and settings folder."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Point the download cache and the test-look counts at fresh temp folders, so tests
    never see or change the user's."""
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("SANDBOX_LOOKS_FILE", str(tmp_path_factory.mktemp("looks") / "looks.json"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail loudly if any test tries to open a network connection (loopback is allowed)."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")):
            return real_connect(self, address)
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        raise RuntimeError(f"test tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
