"""The exception hierarchy: every error the plugin raises on purpose derives from DockerImgError."""

from __future__ import annotations

from collections.abc import Sequence


def tail(text: str | Sequence[str], lines: int = 15) -> str:
    """The last `lines` non-empty lines of a log, for error messages."""
    rows = text.splitlines() if isinstance(text, str) else list(text)
    rows = [row for row in rows if row.strip()]
    return "\n".join(rows[-lines:])


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


class DockerImgError(Exception):
    """Base class of every error raised by pytest-dockerimg."""


class InvalidSpec(DockerImgError, ValueError):
    """A build, run, port or readiness specification that cannot be used as given."""


class EngineUnavailable(DockerImgError):
    """No Docker engine answers at the configured address."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"no Docker engine answers at {address}: {reason}")


class BuildError(DockerImgError):
    """`docker build` failed; names the failing step and the last good layer to debug from."""

    def __init__(
        self,
        context: str,
        message: str,
        *,
        step: str | None = None,
        instruction: str | None = None,
        exit_code: int | None = None,
        log: Sequence[str] = (),
        last_image_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.context = context
        self.message = message
        self.step = step
        self.instruction = instruction
        self.exit_code = exit_code
        self.log = list(log)
        self.last_image_id = last_image_id
        self.hint = hint
        parts = [f"docker build of {context} failed"]
        if step:
            parts[0] += f" at {step}"
        parts.append(f"  {message}")
        if exit_code is not None:
            parts.append(f"  exit code: {exit_code}")
        log_tail = tail(self.log)
        if log_tail:
            parts.append("  last lines of the build log:\n" + _indent(log_tail))
        if last_image_id:
            parts.append(
                f"  last good layer: {last_image_id} (debug it with: docker run --rm -it {last_image_id} sh)"
            )
        if hint:
            parts.append(f"  hint: {hint}")
        super().__init__("\n".join(parts))


class ContainerExited(DockerImgError):
    """A container stopped before it was ready."""

    def __init__(self, name: str, exit_code: int | None, logs: str) -> None:
        self.name = name
        self.exit_code = exit_code
        self.logs = logs
        code = f"with code {exit_code}" if exit_code is not None else "(and was restarted)"
        message = f"container {name} exited {code} before it was ready"
        log_tail = tail(logs)
        message += "\n  last log lines:\n" + _indent(log_tail) if log_tail else "\n  (no log output)"
        super().__init__(message)


class NotReady(DockerImgError):
    """A container did not pass its readiness checks within the timeout."""

    def __init__(self, name: str, check: str, timeout: float, last_error: str, logs: str) -> None:
        self.name = name
        self.check = check
        self.timeout = timeout
        self.last_error = last_error
        self.logs = logs
        message = (
            f"container {name} was not ready after {timeout:g} s: {check} did not pass\n"
            f"  last error: {last_error}"
        )
        log_tail = tail(logs)
        message += "\n  last log lines:\n" + _indent(log_tail) if log_tail else "\n  (no log output)"
        super().__init__(message)


class PortConflict(DockerImgError):
    """A fixed host port is already taken."""

    def __init__(self, port: str, detail: str) -> None:
        self.port = port
        self.detail = detail
        super().__init__(
            f"host port {port} is already in use: {detail}\n"
            f'  use a random host port instead (e.g. "80" or {{80: None}}) or free the port'
        )


class RegistryError(DockerImgError):
    """A registry could not be started or reached, or the engine reported a failed push or pull."""
