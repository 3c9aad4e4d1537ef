"""What a worker process learns from its supervisor, and how it tells it that it listens.

The supervisor passes a ``WorkerRole`` as a hidden command-line argument (JSON) and a
pipe; the worker writes one JSON line to the pipe once it serves (``report``), naming
the ports it bound, and closes it.  With ``port = 0`` in the config, the first worker
picks the ports and every later one (a restarted first worker too) binds those.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from srvdns.config import ListenAddress
from srvdns.errors import SrvdnsError

PRIMARY = 1
"""The number of the worker that runs the API, the health loop and every write."""


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """One worker's place in the process tree."""

    number: int
    """1 for the primary, 2..N for the DNS-only followers."""
    count: int
    """How many workers the supervisor runs."""
    dns_ports: tuple[int, ...] | None = None
    """The port of each ``dns_listen`` entry, once the first worker chose them."""
    api_port: int | None = None
    """The API's port, once the first primary chose it."""
    report_fd: int | None = None
    """Where to write the readiness report (an inherited pipe)."""
    dns_fds: tuple[int, ...] = ()
    """DNS sockets systemd passed to the supervisor (socket activation), inherited."""
    api_fd: int | None = None
    """The API socket systemd passed to the supervisor (the primary's only)."""

    def activated(self) -> dict[str, list[socket.socket]]:
        """The inherited systemd sockets by name, as ``systemd.listen_fds`` gives them."""
        found: dict[str, list[socket.socket]] = {}
        if self.dns_fds:
            found["dns"] = [socket.socket(fileno=fd) for fd in self.dns_fds]
        if self.api_fd is not None:
            found["api"] = [socket.socket(fileno=self.api_fd)]
        for sockets in found.values():
            for sock in sockets:
                sock.setblocking(False)
        return found

    @property
    def is_primary(self) -> bool:
        """Whether this worker runs the API, the health loop and the writes."""
        return self.number == PRIMARY

    def dns_listen(self, configured: Sequence[ListenAddress]) -> tuple[ListenAddress, ...]:
        """The configured DNS addresses with the ports already chosen filled in."""
        if self.dns_ports is None:
            return tuple(configured)
        if len(self.dns_ports) != len(configured):
            raise SrvdnsError(
                f"dns_listen has {len(configured)} entries but the running workers listen "
                f"on {len(self.dns_ports)}; restart srvdns to change it"
            )
        return tuple(
            address.model_copy(update={"port": port})
            for address, port in zip(configured, self.dns_ports, strict=True)
        )

    def api_listen(self, configured: ListenAddress) -> ListenAddress:
        """The configured API address with the port already chosen filled in."""
        if self.api_port is None:
            return configured
        return configured.model_copy(update={"port": self.api_port})

    def identity(self, identity: str | None) -> str | None:
        """The CHAOS id.server text of this worker: which process answered."""
        if identity is None or self.count <= 1:
            return identity
        return f"{identity} worker {self.number}"[:255]

    def to_json(self) -> str:
        """The hidden command-line argument that carries this role."""
        return json.dumps(
            {
                "number": self.number,
                "count": self.count,
                "dns_ports": None if self.dns_ports is None else list(self.dns_ports),
                "api_port": self.api_port,
                "report_fd": self.report_fd,
                "dns_fds": list(self.dns_fds),
                "api_fd": self.api_fd,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerRole:
        """Parse ``to_json``'s output; raises SrvdnsError when it is not one."""
        try:
            data = json.loads(text)
            ports = data["dns_ports"]
            return cls(
                number=int(data["number"]),
                count=int(data["count"]),
                dns_ports=None if ports is None else tuple(int(p) for p in ports),
                api_port=None if data["api_port"] is None else int(data["api_port"]),
                report_fd=None if data["report_fd"] is None else int(data["report_fd"]),
                dns_fds=tuple(int(fd) for fd in data.get("dns_fds", ())),
                api_fd=None if data.get("api_fd") is None else int(data["api_fd"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SrvdnsError(f"bad worker role {text!r}: {exc}") from exc

    def report(self, dns_ports: Sequence[int], api_port: int | None = None) -> None:
        """Tell the supervisor this worker serves, and on which ports (once)."""
        if self.report_fd is None:
            return
        line = json.dumps({"dns_ports": list(dns_ports), "api_port": api_port}) + "\n"
        try:
            os.write(self.report_fd, line.encode())
        finally:
            os.close(self.report_fd)


@dataclass(frozen=True, slots=True)
class Report:
    """What a worker reported: the ports it listens on."""

    dns_ports: tuple[int, ...]
    api_port: int | None

    @classmethod
    def parse(cls, line: bytes) -> Report:
        """One report line; raises SrvdnsError when it is not one (a worker that died)."""
        try:
            data = json.loads(line)
            api = data["api_port"]
            return cls(tuple(int(p) for p in data["dns_ports"]), None if api is None else int(api))
        except (ValueError, KeyError, TypeError) as exc:
            raise SrvdnsError("the worker exited before it listened") from exc
