"""The ssh:// tunnel's socket folders: a killed session's folder goes at the next tunnel's start,
a live session's stays. (The tunnel itself: tests/integration/test_buildkit.py.)"""

from __future__ import annotations

import os
import subprocess
import tempfile

from pytest_dockerimg.sshtunnel import PREFIX, remove_stale_folders


def test_the_folders_of_dead_tunnels_go_and_live_ones_stay(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    process = subprocess.Popen(["true"])
    process.wait()
    dead = tmp_path / f"{PREFIX}{process.pid}-abc"
    live = tmp_path / f"{PREFIX}{os.getpid()}-def"
    other = tmp_path / f"{PREFIX}notapid"
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "docker.sock").touch()

    remove_stale_folders()

    assert not dead.exists()
    assert live.exists()
    assert other.exists()
