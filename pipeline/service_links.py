"""Recognise the variables Kubernetes injects for Services ("service links").

Why this exists: unless a pod sets `enableServiceLinks: false`, Kubernetes puts variables
for every Service of the namespace into every container, named after the Service. A
Service called `vigil-api` yields `VIGIL_API_SERVICE_HOST`, `VIGIL_API_PORT=tcp://...`
and more: they start with Vigil's settings prefix, and `VIGIL_API_PORT` even names a real
setting (`api_port`) with a value that is no port. The settings loader refuses unknown
`VIGIL_*` variables so that typos are caught, so these would stop every pod.

Vigil's manifests turn service links off and name no Service `vigil-*`; this module is the
last line for clusters where someone else's Service or manifest brings them back. It
matches exactly the shapes Kubernetes writes (kubelet's `envvars.FromServices`), names
*and* values, for a Service whose `<NAME>_SERVICE_HOST` holds an IP address:

    <NAME>_SERVICE_HOST=<ip>                  <NAME>_PORT=<proto>://<ip>:<port>
    <NAME>_SERVICE_PORT=<port>                <NAME>_PORT_<port>_<PROTO>=<proto>://<ip>:<port>
    <NAME>_SERVICE_PORT_<PORTNAME>=<port>     <NAME>_PORT_<port>_<PROTO>_PROTO=<proto>
                                              <NAME>_PORT_<port>_<PROTO>_PORT=<port>
                                              <NAME>_PORT_<port>_<PROTO>_ADDR=<ip>

Anything else, such as `VIGIL_API_PROT=8000` or `VIGIL_API_PORT=9000`, is not a service
link, so it is still read or refused as before.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

_PROTOCOLS = ("tcp", "udp", "sctp")
_PORT_LINK = re.compile(r"PORT_(\d{1,5})_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?")
_PORT_NAME = re.compile(r"SERVICE_PORT_[A-Z0-9_]+")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_port(value: str) -> bool:
    return value.isdigit() and 0 < int(value) < 65536


def _url(protocol: str, host: str, port: str) -> str:
    """Kubernetes' link URL: `net.JoinHostPort` brackets an IPv6 address."""
    address = f"[{host}]" if ":" in host else host
    return f"{protocol}://{address}:{port}"


def _is_link(rest: str, value: str, host: str) -> bool:
    """Does `<NAME>_<rest>=<value>` have a service-link shape for a Service at `host`?"""
    if rest == "SERVICE_HOST":
        return value == host
    if rest == "SERVICE_PORT" or _PORT_NAME.fullmatch(rest):
        return _is_port(value)
    if rest == "PORT":
        protocol = value.partition("://")[0]
        port = value.rpartition(":")[2]
        return protocol in _PROTOCOLS and _is_port(port) and value == _url(protocol, host, port)
    match = _PORT_LINK.fullmatch(rest)
    if match is None:
        return False
    port, protocol, part = match.group(1), match.group(2).lower(), match.group(3)
    expected = {
        None: _url(protocol, host, port),
        "_PROTO": protocol,
        "_PORT": port,
        "_ADDR": host,
    }[part]
    return _is_port(port) and value == expected


def service_link_names(environ: Mapping[str, str], prefix: str) -> set[str]:
    """The variables starting with `prefix` that are Kubernetes service links."""
    hosts = {
        name.removesuffix("_SERVICE_HOST"): value
        for name, value in environ.items()
        if name.startswith(prefix) and name.endswith("_SERVICE_HOST") and _is_ip(value)
    }
    return {
        name
        for name, value in environ.items()
        if name.startswith(prefix)
        for service, host in hosts.items()
        if name.startswith(f"{service}_") and _is_link(name[len(service) + 1 :], value, host)
    }


class WithoutServiceLinks(PydanticBaseSettingsSource):
    """The environment source minus Kubernetes service links (`pipeline.service_links`):
    `VIGIL_API_PORT=tcp://10.0.0.1:80` from a Service named vigil-api is not `api_port`."""

    def __init__(
        self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource, prefix: str
    ) -> None:
        super().__init__(settings_cls)
        self.env = env
        self.prefix = prefix

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.env.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        links = service_link_names(os.environ, self.prefix)
        return {
            name: value
            for name, value in self.env().items()
            if f"{self.prefix}{name.upper()}" not in links
        }
