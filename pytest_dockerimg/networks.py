"""Networks: `Networks.create` does `docker network create` with the plugin's label, recorded in
the session ledger under its scope (removed after the scope's containers), and `Network` is the
handle a test passes to `docker_run(..., network=net, aliases=[...])`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from docker.errors import APIError, NotFound
from docker.models.networks import Network as RawNetwork

from .engine import Engine
from .errors import DockerImgError, InvalidSpec
from .labels import Identity, scope_prefix
from .ledger import Ledger


class Network:
    """A network created by the plugin. `.raw` is the docker-py object."""

    def __init__(self, raw: RawNetwork) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"<Network {self.name} {self.id[:12]}>"

    @property
    def id(self) -> str:
        return str(self.raw.id)

    @property
    def name(self) -> str:
        return str(self.raw.name)

    @property
    def attrs(self) -> dict[str, Any]:
        return self.raw.attrs

    def containers(self) -> list[str]:
        """Names of the containers attached now."""
        self.raw.reload()
        return sorted(str(c.get("Name", "")) for c in (self.attrs.get("Containers") or {}).values())


class Networks:
    """Creates networks for one scope, each recorded in the ledger the moment it exists."""

    def __init__(self, engine: Engine, identity: Identity, ledger: Ledger, *, scope: str) -> None:
        self.engine = engine
        self.identity = identity
        self.ledger = ledger
        self.scope = scope

    def create(self, name: str | None = None, *, internal: bool = False) -> Network:
        """`docker network create [--internal] NAME` (a bridge network; a unique name when none is
        given). Containers join it with `docker_run(..., network=net, aliases=["db"])`, and reach
        each other by container name and alias. Removed after the scope's containers."""
        if name is not None and (not isinstance(name, str) or not re.fullmatch(r"[a-zA-Z0-9][\w.-]*", name)):
            raise InvalidSpec(f"network name {name!r}: use letters, digits, '_', '.' and '-'")
        if name is None:
            name = f"{scope_prefix(self.scope)}-net-{uuid.uuid4().hex[:6]}"
        try:
            raw = self.engine.client.networks.create(
                name,
                driver="bridge",
                internal=internal,
                check_duplicate=True,
                labels=self.identity.labels("network", keep=self.ledger.policy.label_value),
            )
        except APIError as error:
            raise DockerImgError(f"could not create network {name}: {error.explanation or error}") from None
        self.ledger.record("network", str(raw.id), scope=self.scope)
        return Network(raw)


def endpoint_options(
    engine: Engine, network: Network | str | None, aliases: Sequence[str] | None
) -> dict[str, Any]:
    """The docker-py `containers.create` arguments that attach a container to `network` under
    `aliases` (`docker run --network NET --network-alias A`)."""
    if aliases is not None and (isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases)):
        raise InvalidSpec(f'aliases= takes a list of names, e.g. aliases=["db"], got {aliases!r}')
    if network is None:
        if aliases:
            raise InvalidSpec("aliases= needs network=: aliases are names on a user-defined network")
        return {}
    if isinstance(network, Network):
        name = network.name
    elif isinstance(network, str) and network:
        name = network
        try:
            engine.api.inspect_network(name)
        except NotFound:
            raise InvalidSpec(
                f"network {name!r} does not exist; create one with the docker_network fixture"
            ) from None
    else:
        raise InvalidSpec(f"network= takes a Network or a network name, got {network!r}")
    if not aliases:
        return {"network": name}
    return {
        "network": name,
        "networking_config": {name: engine.api.create_endpoint_config(aliases=list(aliases))},
    }
