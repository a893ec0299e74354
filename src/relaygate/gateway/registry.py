"""The function registry of one gateway node, keyed by (service, request_type, version).

Remote services are replaced as a whole (a new ``config_version`` drops every function the
service no longer declares); local functions are registered in Python. The disabled set is
kept apart so an admin's disable applies to both and survives re-registration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from relaygate.gateway.config import FunctionConfig
from relaygate.gateway.response import GatewayError
from relaygate.gateway.versions import resolve_version
from relaygate.protocol.gateway import codes
from relaygate.protocol.gateway.functions import FunctionKey, FunctionSpec


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    config_version: str
    functions: dict[FunctionKey, FunctionConfig]


class Registry:
    def __init__(self) -> None:
        self._services: dict[str, ServiceEntry] = {}
        self._local: dict[FunctionKey, FunctionConfig] = {}
        self._disabled: set[FunctionKey] = set()
        self._index: dict[tuple[str, str], dict[str | None, FunctionConfig]] = {}
        self._resolved: dict[tuple[str, str, str | None], FunctionConfig] = {}
        """Successful resolutions (bounded by the registered versions), cleared on every change."""
        self.on_change: Callable[[str], None] | None = None

    # -- writes ----------------------------------------------------------------------------
    def register_local(self, config: FunctionConfig) -> None:
        if config.spec.nodes != "local":
            raise ValueError("only local functions are registered in Python")
        self._local[config.spec.key] = config
        self._changed("register")

    def push_service(
        self, service: str, config_version: str, specs: Iterable[FunctionSpec], *, force: bool = False
    ) -> bool:
        """Replace ``service``'s whole function set; an identical ``config_version`` is skipped."""
        current = self._services.get(service)
        if current is not None and current.config_version == config_version and not force:
            return False
        functions = {}
        for spec in specs:
            if spec.service != service:
                raise ValueError(f"function {spec.request_type} belongs to {spec.service}, not {service}")
            functions[spec.key] = FunctionConfig(spec)
        self._services[service] = ServiceEntry(config_version, functions)
        self._changed("push")
        return True

    def remove_service(self, service: str) -> None:
        if self._services.pop(service, None) is not None:
            self._changed("push")

    def service_names(self) -> set[str]:
        return set(self._services)

    def config_version(self, service: str) -> str | None:
        entry = self._services.get(service)
        return entry.config_version if entry else None

    def set_disabled(self, keys: Iterable[FunctionKey]) -> None:
        """Replace the whole disabled set (cluster sync)."""
        keys = set(keys)
        if keys != self._disabled:
            self._disabled = keys
            self._changed("disable")

    def disable(self, key: FunctionKey) -> None:
        self._require(key)
        self._disabled.add(key)
        self._changed("disable")

    def enable(self, key: FunctionKey) -> None:
        self._require(key)
        self._disabled.discard(key)
        self._changed("enable")

    def delete(self, key: FunctionKey) -> None:
        """Remove one function until its service pushes a new ``config_version`` (or is forced)."""
        self._require(key)
        self._local.pop(key, None)
        entry = self._services.get(key[0])
        if entry is not None:
            entry.functions.pop(key, None)
        self._disabled.discard(key)
        self._changed("delete")

    # -- reads -----------------------------------------------------------------------------
    def get(self, key: FunctionKey) -> FunctionConfig | None:
        return self._index.get((key[0], key[1]), {}).get(key[2])

    def is_enabled(self, key: FunctionKey) -> bool:
        return key not in self._disabled and self.get(key) is not None

    def resolved(self, service: str, request_type: str, version: str | None) -> FunctionConfig | None:
        """What :meth:`resolve` answered last for these names, if it answered since the last change."""
        return self._resolved.get((service, request_type, version))

    def resolve(self, service: str, request_type: str, version: str | None) -> FunctionConfig:
        """The function a request gets (see :func:`resolve_version`); ``not_found`` / ``disabled``."""
        cached = self._resolved.get((service, request_type, version))
        if cached is not None:
            return cached
        versions = self._index.get((service, request_type))
        if not versions:
            what = "service" if not any(s == service for s, _ in self._index) else "request_type"
            raise GatewayError(codes.NOT_FOUND, f"no such {what}")
        chosen = resolve_version(
            {v: (service, request_type, v) not in self._disabled for v in versions}, version
        )
        config = self._resolved[(service, request_type, version)] = versions[chosen]
        return config

    def listing(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """``{service: {request_type: [{version, enabled, response_type, nodes}]}}`` for admins."""
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for (service, request_type), versions in sorted(self._index.items()):
            rows = out.setdefault(service, {}).setdefault(request_type, [])
            for version, config in versions.items():
                nodes = config.spec.nodes
                rows.append(
                    {
                        "version": version,
                        "enabled": (service, request_type, version) not in self._disabled,
                        "response_type": config.spec.response_type,
                        "nodes": nodes if isinstance(nodes, str) else list(nodes),
                    }
                )
        return out

    # -- internals -------------------------------------------------------------------------
    def _require(self, key: FunctionKey) -> None:
        if self.get(key) is None:
            raise GatewayError(codes.NOT_FOUND, "no such function")

    def _changed(self, kind: str) -> None:
        index: dict[tuple[str, str], dict[str | None, FunctionConfig]] = {}
        for entry in self._services.values():
            for key, config in entry.functions.items():
                index.setdefault((key[0], key[1]), {})[key[2]] = config
        for key, config in self._local.items():  # a local function wins over a remote one
            index.setdefault((key[0], key[1]), {})[key[2]] = config
        self._index = index
        self._resolved = {}
        if self.on_change is not None:
            self.on_change(kind)
