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
from typing import Any

from docker.utils import parse_host

DIAL = "docker system dial-stdio"  # what the docker CLI and docker-py run on the engine's host
CHUNK = 65536


class SshTunnel:
    """A unix socket whose connections are channels of one SSH connection to the engine's host.
    `host` is the `DOCKER_HOST` to give the docker CLI; `close()` ends the connection and removes
    the socket."""

    def __init__(self, ssh_client: Any) -> None:
        self._ssh = ssh_client
        self._folder = tempfile.mkdtemp(prefix="dockerimg-ssh-")  # mode 0700: this user's only
        self.path = os.path.join(self._folder, "docker.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._server.bind(self.path)
            self._server.listen(64)
        except OSError:
            self._server.close()
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        threading.Thread(target=self._serve, name="dockerimg-ssh-tunnel", daemon=True).start()

    @classmethod
    def open(cls, address: str) -> SshTunnel:
        """Connect to the host of `address` as docker-py does; raises paramiko's or OS errors."""
        from docker.transport import SSHHTTPAdapter  # needs paramiko: only for ssh:// engines

        adapter = SSHHTTPAdapter(str(parse_host(address)))  # the address as docker-py's client takes it
        try:
            return cls(adapter.ssh_client)
        except OSError:
            adapter.close()
            raise

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

    def _relay(self, conn: socket.socket) -> None:
        """Copy both ways between `conn` and a new channel running `docker system dial-stdio`;
        an end of input on one side is passed on as the end of input to the other."""
        try:
            transport = self._ssh.get_transport()
            if transport is None or not transport.is_active():
                raise OSError("the SSH connection to the engine's host is closed")
            channel = transport.open_session()
            channel.exec_command(DIAL)
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
