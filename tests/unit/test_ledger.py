"""The session ledger, the teardown order, the stale sweep and the private state folder, without
an engine: a recording stand-in for docker-py's APIClient answers the teardown's calls."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from docker.errors import ImageNotFound

from pytest_dockerimg import state
from pytest_dockerimg.cleanup import teardown
from pytest_dockerimg.labels import Identity
from pytest_dockerimg.ledger import KeepPolicy, Ledger
from pytest_dockerimg.state import Owner, SessionFiles, StateDirError, state_dir
from pytest_dockerimg.watcher import sweep_stale


class RecordingApi:
    """Answers the calls teardown makes, records them, and fails the ones told to."""

    def __init__(self, failing: set[str] = frozenset(), images: dict[str, str] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.failing = failing
        self.images = dict(images or {})  # ref -> image id

    def _call(self, name: str, ref: str) -> None:
        self.calls.append((name, ref))
        if ref in self.failing:
            raise requests.ConnectionError(f"engine gone while {name} {ref}")

    def version(self) -> dict[str, object]:
        return {"Components": [{"Name": "Engine"}]}  # Docker's (podman's says "Podman Engine")

    def remove_container(self, ref: str, **_: object) -> None:
        self._call("remove_container", ref)

    def remove_network(self, ref: str) -> None:
        self._call("remove_network", ref)

    def remove_volume(self, ref: str, **_: object) -> None:
        self._call("remove_volume", ref)

    def remove_image(self, ref: str, **_: object) -> None:
        self._call("remove_image", ref)
        self.images = {tag: image for tag, image in self.images.items() if ref not in (tag, image)}

    def inspect_image(self, ref: str) -> dict[str, str]:
        if ref in self.images:
            return {"Id": self.images[ref]}
        if ref in self.images.values():
            return {"Id": ref}
        raise ImageNotFound(ref)

    def tag(self, image: str, repository: str, tag: str, force: bool = False) -> None:
        self._call("tag", f"{repository}:{tag}")
        self.images[f"{repository}:{tag}"] = image

    def containers(self, **_: object) -> list[object]:
        return []

    def networks(self, **_: object) -> list[object]:
        return []

    def volumes(self, **_: object) -> dict[str, list[object]]:
        return {"Volumes": []}


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_ledger_file_replays_what_its_process_recorded(tmp_path: Path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path, KeepPolicy(containers="failed", images=True))
    container = ledger.record("container", "c1", scope="test_a")
    ledger.record("container", "c2", scope="test_b")
    ledger.record("image", "sha256:i1", prune=True)
    ledger.record("tag", "web:v1", image="sha256:i1", previous="sha256:user")
    ledger.settle("test_a", failed=True)
    ledger.settle("test_b", failed=False)
    ledger.mark_gone(ledger.entries[1])
    with path.open("a") as file:
        file.write('{"add": {"kind": "contain')  # the process died while writing this line

    replayed = Ledger.load(path)

    assert [(e.kind, e.ref, e.keep, e.kept, e.gone) for e in replayed.entries] == [
        ("container", "c1", "if-failed", True, False),
        ("container", "c2", "if-failed", False, True),
        ("image", "sha256:i1", "always", None, False),
        ("tag", "web:v1", "always", None, False),
    ]
    assert replayed.entries[2].prune
    assert replayed.entries[3].previous == "sha256:user"
    assert container.keep_now


@pytest.mark.parametrize(
    ("containers", "images", "container_keep", "image_keep"),
    [
        ("never", False, "never", "never"),
        ("failed", False, "if-failed", "never"),
        ("always", True, "always", "always"),
    ],
)
def test_the_keep_policy_is_decided_in_one_place(containers, images, container_keep, image_keep):
    policy = KeepPolicy(containers, images)
    assert [policy.for_kind(kind) for kind in ("container", "network", "volume")] == [container_keep] * 3
    assert [policy.for_kind(kind) for kind in ("image", "tag")] == [image_keep] * 2


def test_an_undecided_if_failed_entry_is_not_kept():
    ledger = Ledger(policy=KeepPolicy(containers="failed"))
    entry = ledger.record("container", "c1", scope="test_killed")
    assert not entry.keep_now  # the session died before its test could fail or pass


def test_teardown_goes_in_order_and_past_failures():
    ledger = Ledger()
    ledger.record("tag", "web:v1", image="sha256:new", previous="sha256:user")
    ledger.record("volume", "data")
    ledger.record("image", "sha256:new")
    ledger.record("network", "n1")
    ledger.record("container", "c1")
    ledger.record("container", "c2")
    api = RecordingApi(failing={"c2"}, images={"web:v1": "sha256:new", "user-image": "sha256:user"})

    removed = teardown(api, [ledger])  # type: ignore[arg-type]

    assert api.calls == [
        ("remove_container", "c2"),
        ("remove_container", "c1"),
        ("remove_network", "n1"),
        ("remove_image", "sha256:new"),
        ("remove_volume", "data"),
        ("tag", "web:v1"),
    ]
    assert api.images["web:v1"] == "sha256:user"  # the user's tag is back on the user's image
    assert len(removed.problems) == 1
    assert "engine gone while remove_container c2" in removed.problems[0]
    assert [entry.ref for entry in ledger.live()] == ["c2"]  # the next sweep tries again


def test_teardown_leaves_kept_entries_and_tags_moved_by_someone_else():
    ledger = Ledger(policy=KeepPolicy(containers="failed"))
    ledger.record("container", "kept", scope="test_failed")
    ledger.record("container", "gone", scope="test_passed")
    ledger.settle("test_failed", failed=True)
    ledger.settle("test_passed", failed=False)
    ledger.record("tag", "web:v1", image="sha256:mine", previous="")
    api = RecordingApi(images={"web:v1": "sha256:another-sessions"})

    teardown(api, [ledger])  # type: ignore[arg-type]

    assert api.calls == [("remove_container", "gone")]
    assert api.images == {"web:v1": "sha256:another-sessions"}


def test_the_stale_sweep_tears_down_dead_sessions_from_their_ledgers():
    me = Identity.create()
    dead = subprocess.Popen(["true"])
    dead.wait()
    here = "unix:///var/run/docker.sock"
    for session, pid, engine in (
        ("dead-one", dead.pid, here),
        ("live-one", os.getpid(), here),
        ("dead-on-another-engine", dead.pid, "tcp://10.0.0.9:2375"),  # its ids are not this engine's
    ):
        files = SessionFiles(session)
        files.write_owner(Owner(pid, 0, me.host, engine))
        ledger = Ledger(files.ledger_path(pid))
        ledger.record("container", f"{session}-container")
        ledger.record("tag", "web:v1", image="sha256:killed", previous="sha256:user")
    api = RecordingApi(images={"web:v1": "sha256:killed", "u": "sha256:user"})

    removed = sweep_stale(api, me, here)  # type: ignore[arg-type]

    assert ("remove_container", "dead-one-container") in api.calls
    assert ("remove_container", "live-one-container") not in api.calls
    assert ("remove_container", "dead-on-another-engine-container") not in api.calls
    assert api.images["web:v1"] == "sha256:user"
    assert removed.containers == 1
    assert [files.session for files, _ in state.sessions()] == ["dead-on-another-engine", "live-one"]


def test_the_state_folder_is_private(private_tmp: Path):
    folder = state_dir()
    assert folder.stat().st_mode & 0o777 == 0o700
    assert folder.stat().st_uid == os.getuid()
    os.chmod(folder, 0o755)
    assert state_dir().stat().st_mode & 0o777 == 0o700


def test_a_planted_state_folder_is_refused(private_tmp: Path):
    elsewhere = private_tmp / "elsewhere"
    elsewhere.mkdir()
    (private_tmp / f"pytest-dockerimg-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(StateDirError, match="not a folder of this user"):
        state_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="making a folder of another user needs root")
def test_another_users_state_folder_is_refused(private_tmp: Path):
    planted = private_tmp / f"pytest-dockerimg-{os.getuid()}"
    planted.mkdir(mode=0o777)
    os.chown(planted, 65534, 65534)
    with pytest.raises(StateDirError, match="owned by uid 65534"):
        state_dir()
