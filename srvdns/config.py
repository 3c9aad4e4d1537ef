"""The TOML configuration file: ``load(path)`` returns frozen, fully validated objects.

Every key is checked at load time.  An unknown key, a wrong type or a bad value is a
ConfigError whose message names the file, the key and the problem, so the process can
exit before it binds a single socket.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic import field_validator as _field_validator

from srvdns import tomlparse
from srvdns.config_errors import KeyedValueError, describe, describe_toml
from srvdns.durations import parse_duration
from srvdns.errors import ConfigError
from srvdns.health.definitions import MIN_INTERVAL, CheckRequest, check_ids
from srvdns.model import Status
from srvdns.transferconfig import (
    NotifyTarget,
    TransferPeer,
    TsigKeyConfig,
    parse_peers,
    parse_targets,
)
from srvdns.validation import (
    check_instance_id,
    check_meta,
    normalize_address,
    normalize_domain,
    normalize_label,
)

if TYPE_CHECKING:
    from srvdns.tokens import Tokens


def _seconds(value: object) -> float:
    return parse_duration(value)


def _whole_seconds(value: object) -> int:
    seconds = parse_duration(value)
    if seconds != int(seconds):
        raise ValueError(f"{value!r} is not a whole number of seconds (DNS TTLs are seconds)")
    if seconds > 2**31 - 1:
        raise ValueError(f"{value!r} is longer than the largest DNS TTL")
    return int(seconds)


Duration = Annotated[float, BeforeValidator(_seconds)]
"""Seconds, written as "500ms", "10s", "5m" or a number."""

Ttl = Annotated[int, BeforeValidator(_whole_seconds)]
"""A DNS TTL: whole seconds, written as "30s", "5m" or a number."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class ListenAddress(_Strict):
    """A host and port to listen on; port 0 asks the OS for a free port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, what: str) -> ListenAddress:
        """Parse "127.0.0.1:8053", "[::1]:8053" or ":53" (every address)."""
        value = text.strip()
        if value.startswith("["):
            host, sep, port = value[1:].partition("]:")
            if not sep:
                raise ValueError(f"{what} {text!r} must look like '[::1]:8053'")
        else:
            host, sep, port = value.rpartition(":")
            if not sep:
                raise ValueError(f"{what} {text!r} must be HOST:PORT, e.g. '127.0.0.1:8053'")
            if ":" in host:
                raise ValueError(f"{what} {text!r}: write IPv6 addresses in brackets, '[::1]:8053'")
        if host in ("", "*"):
            host = ""
        else:
            try:
                host = str(ipaddress.ip_address(host))
            except ValueError:
                if host != "localhost":
                    raise ValueError(f"{what} {text!r}: {host!r} is not an IP address") from None
                host = "127.0.0.1"
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{what} {text!r}: port must be 0-65535")
        return cls(host=host, port=int(port))

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can connect."""
        return bool(self.host) and ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        if not self.host:
            return f":{self.port}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses or CIDR networks, normalised (``10.1.2.3/8`` is ``10.0.0.0/8``)."""
    out = []
    for cidr in value:
        try:
            out.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            raise ValueError(f"{cidr!r} is not an address or CIDR network") from None
    return tuple(out)


class RrlConfig(_Strict):
    """``[server.rrl]``: DNS response rate limiting over UDP, per client prefix (/24 for
    IPv4, /56 for IPv6), so that the server cannot be used to flood a spoofed address."""

    enabled: bool | Literal["auto"] = "auto"
    """"auto": on for listeners other than loopback; true: on everywhere; false: off."""
    responses_per_second: float = Field(default=100.0, gt=0, le=1_000_000)
    window: Duration = Field(default=1.0, gt=0, le=3600)
    """Seconds of unused responses a prefix may bank for a burst."""
    slip: int = Field(default=2, ge=0, le=100)
    """Every ``slip``-th limited response is sent truncated (TC=1, no answers), so that a
    real client retries over TCP; the others are dropped.  0 drops them all."""
    exempt: tuple[str, ...] = ()
    """Client addresses or networks never limited."""

    @_field_validator("enabled", mode="before")
    @classmethod
    def _enabled(cls, value: object) -> object:
        if value is True or value is False or value == "auto":
            return value
        raise ValueError('must be "auto", true or false')

    @_field_validator("exempt")
    @classmethod
    def _exempt(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value)

    def applies_to(self, host: str) -> bool:
        """True when a listener bound to ``host`` limits its UDP responses."""
        if self.enabled != "auto":
            return self.enabled
        return not (bool(host) and ipaddress.ip_address(host).is_loopback)


class ServerConfig(_Strict):
    """``[server]``: where srvdns listens and where it keeps the registry."""

    dns_listen: tuple[ListenAddress, ...] = (ListenAddress(host="127.0.0.1", port=8053),)
    api_listen: ListenAddress = ListenAddress(host="127.0.0.1", port=8054)
    database: str = "sqlite:///srvdns.db"
    api_token_file: Path | None = None
    api_tokens_file: Path | None = None
    api_tls_cert: Path | None = None
    api_tls_key: Path | None = None
    rrl: RrlConfig = RrlConfig()
    edns_udp_size: int = Field(default=1232, ge=512, le=65535)
    udp_answer_limit: int | None = Field(default=None, ge=1, le=1000)
    tcp_idle_timeout: Duration = Field(default=10.0, gt=0)
    tcp_max_connections: int = Field(default=1000, ge=1, le=100_000)
    version: str | bool = True
    identity: str | bool = False
    query_log: bool = False
    heartbeat_flush_interval: Duration = Field(default=1.0, ge=0, le=60)
    """How long a heartbeat that only renews a running lease may be held in memory before
    it is written; a crash loses at most this much of a lease.  0: write every heartbeat
    before acknowledging it."""
    workers: int = Field(default=1, ge=1, le=128)
    follow_interval: Duration = Field(default=0.15, gt=0, le=60)
    node_name: str | None = Field(default=None, min_length=1, max_length=255)
    """This node's name among the nodes sharing a PostgreSQL registry (default: host name
    and process id)."""
    check_lease: Duration = Field(default=10.0, ge=0.5, le=3600)
    """Shared registry: how long a node holds its health checks without renewing; the
    checks of a node that died move to the others within about this long."""
    durability: Literal["process", "power"] = "process"
    """What an acknowledged write survives on SQLite: a crash of the process
    (``synchronous = NORMAL``) or also a power loss or OS crash (``FULL``)."""

    @_field_validator("version", "identity")
    @classmethod
    def _chaos_text(cls, value: str | bool) -> str | bool:
        if isinstance(value, str) and not 0 < len(value.encode()) <= 255:
            raise ValueError("must be 1-255 bytes, true or false")
        return value

    def chaos_version(self) -> str | None:
        """The answer to CH TXT version.bind / version.server, or None to refuse."""
        from srvdns import __version__

        if self.version is True:
            return f"srvdns {__version__}"
        return self.version or None

    def chaos_identity(self) -> str | None:
        """The answer to CH TXT id.server / hostname.bind, or None to refuse."""
        import socket

        if self.identity is True:
            return socket.gethostname()
        return self.identity or None

    @_field_validator("dns_listen", mode="before")
    @classmethod
    def _dns_listen(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("must be a non-empty list such as ['127.0.0.1:8053']")
        return tuple(ListenAddress.parse(v, "address") if isinstance(v, str) else v for v in value)

    @_field_validator("api_listen", mode="before")
    @classmethod
    def _api_listen(cls, value: object) -> object:
        return ListenAddress.parse(value, "address") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.api_tls_cert is None) != (self.api_tls_key is None):
            raise ValueError("api_tls_cert and api_tls_key are set together or not at all")
        return self


class SoaConfig(_Strict):
    """``[zone.soa]``: the SOA fields; omitted ones get conventional defaults."""

    mname: str | None = None
    rname: str | None = None
    ttl: Ttl | None = None
    refresh: Ttl = 3600
    retry: Ttl = 600
    expire: Ttl = 86400

    @_field_validator("mname", "rname")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return None if value is None else normalize_domain(value)


class NameServerConfig(_Strict):
    """One ``[[zone.ns]]`` entry: an NS host name and, when inside the zone, its addresses."""

    name: str
    address: tuple[str, ...] = ()

    @_field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize_domain(value, "name server")

    @_field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ValueError("must be an address or a list of addresses")
        return tuple(normalize_address(str(v)) for v in value)


class WeightsConfig(_Strict):
    """An instance's SRV weight while passing and while warning."""

    passing: int | None = Field(default=None, ge=0, le=65535)
    warning: int | None = Field(default=None, ge=0, le=65535)


class StaticInstanceConfig(_Strict):
    """One instance of a static service."""

    id: str | None = None
    address: str
    port: int = Field(ge=1, le=65535)
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = Field(default_factory=dict)
    weight: int = Field(default=1, ge=0, le=65535)
    priority: int = Field(default=0, ge=0, le=65535)
    weights: WeightsConfig | None = None
    checks: tuple[CheckRequest, ...] = ()

    @_field_validator("checks")
    @classmethod
    def _checks(cls, value: tuple[CheckRequest, ...]) -> tuple[CheckRequest, ...]:
        check_ids(value)
        for check in value:
            if check.deregister_critical_after is not None:
                raise KeyedValueError(
                    f"[{value.index(check)}].deregister_critical_after",
                    "static instances are never deregistered",
                )
        return value

    @model_validator(mode="after")
    def _weights(self) -> StaticInstanceConfig:
        if self.weights is not None and self.weights.passing is not None:
            if "weight" in self.model_fields_set and self.weight != self.weights.passing:
                raise KeyedValueError(
                    "weights.passing", "weight and weights.passing disagree; set one of them"
                )
            object.__setattr__(self, "weight", self.weights.passing)
        return self

    @property
    def warning_weight(self) -> int:
        """The SRV weight while a check says warning."""
        if self.weights is None or self.weights.warning is None:
            return 1
        return self.weights.warning

    @_field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return None if value is None else check_instance_id(value)

    @_field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return normalize_address(value)

    @_field_validator("meta")
    @classmethod
    def _meta(cls, value: dict[str, str]) -> dict[str, str]:
        return check_meta(value)

    @_field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalize_label(t, "tag") for t in value))


class StaticServiceConfig(_Strict):
    """``[[zone.service]]``: a service declared in the config file, always registered."""

    name: str
    instances: tuple[StaticInstanceConfig, ...] = Field(min_length=1)

    @_field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize_label(value, "service name")

    @model_validator(mode="after")
    def _unique_ids(self) -> StaticServiceConfig:
        ids = self.instance_ids()
        seen: set[str] = set()
        for n, instance_id in enumerate(ids):
            if instance_id.lower() in seen:
                raise KeyedValueError(
                    f"instances[{n}].id",
                    f"service {self.name!r} declares the instance id {instance_id!r} twice",
                )
            seen.add(instance_id.lower())
        return self

    def instance_ids(self) -> list[str]:
        """Each instance's id; unnamed instances are ``<service>-<n>`` counting from 1."""
        return [inst.id or f"{self.name}-{n}" for n, inst in enumerate(self.instances, 1)]


class ZoneConfig(_Strict):
    """``[[zone]]``: one zone the catalog is published under, with its SOA and NS."""

    name: str
    ttl: Ttl = 5
    negative_ttl: Ttl | None = None
    service_ttl: dict[str, Ttl] = Field(default_factory=dict)
    soa: SoaConfig = SoaConfig()
    ns: tuple[NameServerConfig, ...] = ()
    service: tuple[StaticServiceConfig, ...] = ()
    only_passing: bool = False
    panic_threshold: float | None = Field(default=None, gt=0, lt=1)
    panic_min_instances: int = Field(default=3, ge=1)
    transfer_to: tuple[TransferPeer, ...] = ()
    notify: tuple[NotifyTarget, ...] = ()

    @_field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize_domain(value, "zone name")

    @_field_validator("transfer_to", mode="before")
    @classmethod
    def _transfer_to(cls, value: object) -> object:
        return parse_peers(value)

    @_field_validator("notify", mode="before")
    @classmethod
    def _notify(cls, value: object) -> object:
        return parse_targets(value)

    @_field_validator("service_ttl")
    @classmethod
    def _service_ttl(cls, value: dict[str, int]) -> dict[str, int]:
        return {normalize_label(k, "service name"): v for k, v in value.items()}

    @model_validator(mode="after")
    def _defaults(self) -> ZoneConfig:
        ns = self.ns or (NameServerConfig(name=f"ns.{self.name}", address=("127.0.0.1",)),)
        for n, server in enumerate(ns):
            inside = server.name.endswith("." + self.name)
            if inside and not server.address:
                raise KeyedValueError(
                    f"ns[{n}].address",
                    f"name server {server.name!r} is inside the zone and needs an address",
                )
            if inside and server.name.count(".") - self.name.count(".") != 1:
                raise KeyedValueError(
                    f"ns[{n}].name",
                    f"name server {server.name!r} must be directly below the zone "
                    f"(e.g. 'ns.{self.name}')",
                )
        object.__setattr__(self, "ns", ns)
        soa = self.soa
        if soa.mname is None or soa.rname is None or soa.ttl is None:
            soa = soa.model_copy(
                update={
                    "mname": soa.mname or ns[0].name,
                    "rname": soa.rname or f"hostmaster.{self.name}",
                    "ttl": self.ttl if soa.ttl is None else soa.ttl,
                }
            )
            object.__setattr__(self, "soa", soa)
        if self.negative_ttl is None:
            object.__setattr__(self, "negative_ttl", self.ttl)
        return self

    @property
    def reserved_labels(self) -> frozenset[str]:
        """Labels directly below the zone used by in-zone NS hosts; no service may take them."""
        suffix = "." + self.name
        return frozenset(ns.name[: -len(suffix)] for ns in self.ns if ns.name.endswith(suffix))

    def ttl_for(self, service: str) -> int:
        """The TTL of a service's RRsets in this zone: its override, else the zone default."""
        return self.service_ttl.get(service, self.ttl)


class HealthConfig(_Strict):
    """``[health]``: how the health loop runs, and the defaults of every check."""

    interval: Duration = Field(default=10.0, ge=MIN_INTERVAL, le=86400)
    timeout: Duration = Field(default=3.0, gt=0, le=86400)
    concurrency: int = Field(default=500, ge=1, le=100_000)
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    initial_status: Status = Status.CRITICAL
    success_before_passing: int = Field(default=2, ge=1, le=100)
    failures_before_critical: int = Field(default=1, ge=1, le=100)
    deregister_critical_after: Duration | None = Field(default=None, gt=0)


class UpstreamAddress(_Strict):
    """An upstream resolver: an IP address and a port (53 unless given)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> UpstreamAddress:
        """Parse "10.0.0.2", "10.0.0.2:5353", "::1" or "[::1]:5353"."""
        value = text.strip()
        if value.startswith("["):
            host, sep, port = value[1:].partition("]")
            port = port.removeprefix(":") if sep else ""
            if not sep or (port == "" and value.endswith(":")):
                raise ValueError(f"upstream {text!r} must look like '[::1]:53'")
        elif value.count(":") == 1:
            host, _, port = value.partition(":")
        else:
            host, port = value, ""
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(f"upstream {text!r}: {host!r} is not an IP address") from None
        if port == "":
            port = "53"
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"upstream {text!r}: port must be 1-65535")
        return cls(host=host, port=int(port))


DEFAULT_ALLOW_FROM = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)


class ForwardConfig(_Strict):
    """``[forward]``: resolve names outside every zone through upstream resolvers, for
    clients in ``allow_from``."""

    upstreams: tuple[UpstreamAddress, ...] = Field(min_length=1)
    timeout: Duration = Field(default=2.0, gt=0, le=60)
    strategy: Literal["sequential", "random"] = "sequential"
    cache_size: int = Field(default=10_000, ge=0, le=10_000_000)
    allow_from: tuple[str, ...] = DEFAULT_ALLOW_FROM

    @_field_validator("upstreams", mode="before")
    @classmethod
    def _upstreams(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("must be a non-empty list such as ['10.0.0.2', '127.0.0.1:5353']")
        return tuple(UpstreamAddress.parse(v) if isinstance(v, str) else v for v in value)

    @_field_validator("allow_from")
    @classmethod
    def _allow_from(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value)


class Config(_Strict):
    """The whole configuration file."""

    server: ServerConfig = ServerConfig()
    zone: tuple[ZoneConfig, ...] = Field(min_length=1)
    health: HealthConfig = HealthConfig()
    forward: ForwardConfig | None = None
    tsig_key: tuple[TsigKeyConfig, ...] = ()
    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        names = [z.name for z in self.zone]
        for n, name in enumerate(names):
            if name in names[:n]:
                raise KeyedValueError(f"zone[{n}].name", "the same zone is declared twice")
        seen: dict[str, str] = {}
        for z, zone in enumerate(self.zone):
            for n, service in enumerate(zone.service):
                key = f"zone[{z}].service[{n}].name"
                if service.name in zone.reserved_labels:
                    raise KeyedValueError(
                        key, f"service {service.name!r} has the name of the zone's name server"
                    )
                if service.name in seen:
                    raise KeyedValueError(
                        key,
                        f"static service {service.name!r} is declared twice "
                        f"(zones {seen[service.name]!r} and {zone.name!r})",
                    )
                seen[service.name] = zone.name
        keys = [key.name for key in self.tsig_key]
        if len(set(keys)) != len(keys):
            raise ValueError("the same tsig_key name is declared twice")
        for zone in self.zone:
            entries: list[TransferPeer | NotifyTarget] = [*zone.transfer_to, *zone.notify]
            for entry in entries:
                if entry.key is not None and entry.key not in keys:
                    raise ValueError(
                        f"zone {zone.name!r} names tsig_key {entry.key!r}, not declared"
                    )
        return self

    @property
    def reserved_labels(self) -> frozenset[str]:
        """Service names no registration may use (in-zone name server hosts)."""
        out: frozenset[str] = frozenset()
        for zone in self.zone:
            out |= zone.reserved_labels
        return out

    def static_services(self) -> list[StaticServiceConfig]:
        """Every ``[[zone.service]]`` block of every zone."""
        return [service for zone in self.zone for service in zone.service]

    def tsig_secrets(self) -> dict[str, tuple[str, bytes]]:
        """Key name -> (algorithm, secret), with ``secret_file`` secrets read now.

        Raises ConfigError naming the key when a secret file cannot be read or decoded.
        """
        base = None if self.path is None else self.path.parent
        out: dict[str, tuple[str, bytes]] = {}
        for index, key in enumerate(self.tsig_key):
            try:
                out[key.name] = (key.algorithm, key.secret_bytes(base))
            except ValueError as exc:
                raise ConfigError(f"{self.path}: tsig_key[{index}].secret_file: {exc}") from None
        return out

    def database_url(self) -> str:
        """The SQLAlchemy URL, with a relative SQLite path made relative to this file."""
        url = self.server.database
        prefix = "sqlite:///"
        if url.startswith(prefix) and self.path is not None:
            file = url[len(prefix) :]
            if file and file != ":memory:" and not file.startswith("/"):
                return prefix + str((self.path.parent / file).resolve())
        return url

    def api_token(self) -> str | None:
        """The API write token read from ``api_token_file``, or None when writes are open."""
        file = self.server.api_token_file
        if file is None:
            return None
        if not file.is_absolute() and self.path is not None:
            file = self.path.parent / file
        try:
            token = file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: server.api_token_file: cannot read {file}: {exc.strerror}"
            ) from None
        if not token:
            raise ConfigError(f"{self.path}: server.api_token_file: {file} is empty")
        return token

    def relative(self, file: Path) -> Path:
        """``file`` with a relative path made relative to this config file."""
        if not file.is_absolute() and self.path is not None:
            return self.path.parent / file
        return file

    def api_tokens(self) -> Tokens | None:
        """Every accepted API token with what it may write: those of ``api_tokens_file``
        plus the admin token of ``api_token_file``; None when writes are open."""
        from srvdns.tokens import Tokens, load

        tokens: Tokens | None = None
        if self.server.api_tokens_file is not None:
            tokens = load(self.relative(self.server.api_tokens_file))
        legacy = self.api_token()
        if legacy is not None:
            single = Tokens.single(legacy)
            tokens = single if tokens is None else tokens + single
        return tokens


def parse(data: dict[str, Any], *, source: str = "<config>", path: Path | None = None) -> Config:
    """Validate an already-parsed TOML document."""
    try:
        config = Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise ConfigError(describe(exc, data, source)) from None
    return config


def load(path: str | Path) -> Config:
    """Read, parse and validate a config file; raise ConfigError naming file, key and problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{file}: not UTF-8 text (octet 0x{exc.object[exc.start]:02x} on line {line})"
        ) from None
    try:
        data = tomlparse.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(describe_toml(exc, text, str(file))) from None
    if "path" in data:
        raise ConfigError(f"{file}: path: unknown key")
    return parse(data, source=str(file), path=file.resolve())
