"""One SSH connection for the docker CLI's builds on an `ssh://` engine.

Given `DOCKER_HOST=ssh://...`, the docker CLI (and buildx) start a new `ssh HOST docker system
dial-stdio` process, with its own SSH handshake, for every connection they open: a cached
`docker buildx build` opens about ten, one after the other, and spends seconds in handshakes.
Instead the plugin opens one SSH connection (as docker-py does: paramiko, reading `~/.ssh/config`
and `known_hosts`) and serves a unix socket in a private folder; every connection accepted there
becomes one channel of that SSH connection, running the same `docker system dial-stdio` on the
engine's host. The CLI is pointed at that socket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from docker.utils import parse_host

DIAL = "docker system dial-stdio"  # what the docker CLI and docker-py run on the engine's host
CHUNK = 65536
PREFIX = "dockerimg-ssh-"  # the socket folders: PREFIX + pid + "-" + random
KEEPALIVE = 30  # seconds between keepalives: an idle session's connection is not dropped


def remove_stale_folders() -> None:
    """Remove the socket folders of this user's tunnels whose process is gone (killed: no
    `close()` ran)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = folder.name.removeprefix(PREFIX).partition("-")[0]
        try:
            if not pid.isdigit() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue  # alive under another user, or gone meanwhile


class SshTunnel:
    """A unix socket whose connections are channels of one SSH connection to the engine's host
    (connected at once, again when it has dropped). `host` is the `DOCKER_HOST` to give the
    docker CLI; `close()` ends the connection and removes the socket."""

    def __init__(self, address: str) -> None:
        self._address = str(parse_host(address))  # as docker-py's client takes it (port 22 added)
        self._lock = threading.Lock()
        self._ssh = self._connect()
        remove_stale_folders()
        self._folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")  # mode 0700: this user's
        self.path = os.path.join(self._folder, "docker.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._server.bind(self.path)
            self._server.listen(64)
        except OSError:
            self.close()
            raise
        threading.Thread(target=self._serve, name="dockerimg-ssh-tunnel", daemon=True).start()

    def _connect(self) -> Any:
        """A connected paramiko client, set up as docker-py sets up its own (~/.ssh/config,
        known hosts only); raises paramiko's or OS errors."""
        from docker.transport import SSHHTTPAdapter  # needs paramiko: only for ssh:// engines

        client: Any = SSHHTTPAdapter(self._address).ssh_client
        client.get_transport().set_keepalive(KEEPALIVE)
        return client

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _channel(self) -> Any:
        with self._lock:
            transport = self._ssh.get_transport()
            if transport is None or not transport.is_active():
                self._ssh.close()
                self._ssh = self._connect()
                transport = self._ssh.get_transport()
        channel = transport.open_session()
        channel.exec_command(DIAL)
        return channel

    def _relay(self, conn: socket.socket) -> None:
        """Copy both ways between `conn` and a new channel running `docker system dial-stdio`;
        an end of input on one side is passed on as the end of input to the other."""
        try:
            channel = self._channel()
        except Exception:  # the CLI sees its connection closed, and says so
            conn.close()
            return

        def upstream() -> None:
            with contextlib.suppress(Exception):
                while data := conn.recv(CHUNK):
                    channel.sendall(data)
            with contextlib.suppress(Exception):
                channel.shutdown_write()

        sender = threading.Thread(target=upstream, daemon=True)
        sender.start()
        with contextlib.suppress(Exception):
            while data := channel.recv(CHUNK):
                conn.sendall(data)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        sender.join()
        channel.close()
        conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._ssh.close()
        shutil.rmtree(self._folder, ignore_errors=True)
