"""``srvdns register / deregister / heartbeat / ls``: API clients with tables and ``--json``.

Each returns the exit status: 0 done, 1 the API refused or could not be reached
(message on stderr), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from srvdns import config
from srvdns.api.client import ApiClient
from srvdns.durations import format_duration
from srvdns.errors import ApiClientError, ConfigError

DEFAULT_API = "http://127.0.0.1:8054"
EXIT_OK, EXIT_API, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command-line value that cannot be used; exit status 2."""


def register(args: argparse.Namespace) -> int:
    """Register or replace an instance and print it."""

    def call(client: ApiClient) -> int:
        stored = client.register(
            args.service,
            args.id,
            address=args.address,
            port=args.port,
            tags=args.tags,
            meta=parse_meta(args.meta),
            weight=args.weight,
            priority=args.priority,
            ttl=args.ttl,
        )
        if args.json:
            _print_json(stored)
        else:
            print(f"registered {_name(stored)} at {_endpoint(stored)}{_lease_note(stored)}")
        return EXIT_OK

    return _run(args, call)


def deregister(args: argparse.Namespace) -> int:
    """Remove an instance."""

    def call(client: ApiClient) -> int:
        client.deregister(args.service, args.id)
        if args.json:
            _print_json({"service": args.service.lower(), "id": args.id, "deregistered": True})
        else:
            print(f"deregistered {args.service.lower()}/{args.id}")
        return EXIT_OK

    return _run(args, call)


def heartbeat(args: argparse.Namespace) -> int:
    """Renew an instance's TTL lease."""

    def call(client: ApiClient) -> int:
        renewed = client.heartbeat(args.service, args.id)
        if args.json:
            _print_json(renewed)
        else:
            print(f"renewed {_name(renewed)}{_lease_note(renewed)}")
        return EXIT_OK

    return _run(args, call)


def ls(args: argparse.Namespace) -> int:
    """List the services, or one service's instances."""

    def call(client: ApiClient) -> int:
        if args.service is None:
            services = client.list_services()
            if args.json:
                _print_json(services)
            else:
                print(services_table(services), end="")
        else:
            service = client.get_service(args.service)
            if args.json:
                _print_json(service)
            else:
                print(instances_table(service.get("instances", [])), end="")
        return EXIT_OK

    return _run(args, call)


def api_url(args: argparse.Namespace) -> str:
    """``--api``, else the ``api_listen`` of ``--config``, else $SRVDNS_API, else the default.

    A config whose ``api_listen`` port is 0 names no reachable port, so $SRVDNS_API must.
    """
    env = os.environ.get("SRVDNS_API")
    if args.api:
        url: str = args.api
    elif args.config and (listen := (loaded := config.load(args.config)).server.api_listen).port:
        url = listen_url(listen)
        if loaded.server.api_tls_cert is not None:
            url = "https" + url.removeprefix("http")
    elif args.config and not env:
        raise UsageError(
            f"{args.config}: server.api_listen has port 0 (the port is picked at start-up); "
            "pass --api URL or set $SRVDNS_API"
        )
    else:
        url = env or DEFAULT_API
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"API URL {url!r} must start with http:// or https://")
    return url


def listen_url(listen: config.ListenAddress) -> str:
    """The URL to reach an API listening on ``listen``; any-address means this machine."""
    host = listen.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{listen.port}"


def api_token(args: argparse.Namespace) -> str | None:
    """$SRVDNS_TOKEN, else the ``api_token_file`` of ``--config``, else None."""
    token = os.environ.get("SRVDNS_TOKEN", "").strip()
    if token:
        return token
    if args.config:
        return config.load(args.config).api_token()
    return None


def parse_meta(items: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; raises UsageError for an item without '='."""
    meta: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta {item!r} must be KEY=VALUE")
        meta[key] = value
    return meta


def services_table(services: Sequence[dict[str, Any]]) -> str:
    """NAME INSTANCES HEALTHY, one row per service."""
    rows = [[s["name"], str(s["instances"]), str(s["healthy"])] for s in services]
    return table(["NAME", "INSTANCES", "HEALTHY"], rows, numeric={1, 2})


def instances_table(instances: Sequence[dict[str, Any]]) -> str:
    """ID ADDRESS PORT STATUS TAGS WEIGHT PRIORITY LEASE, one row per instance."""
    rows = [
        [
            i["id"],
            i["address"],
            str(i["port"]),
            i["status"],
            ",".join(i.get("tags") or []) or "-",
            str(i["weight"]),
            str(i["priority"]),
            lease_text(i),
        ]
        for i in instances
    ]
    header = ["ID", "ADDRESS", "PORT", "STATUS", "TAGS", "WEIGHT", "PRIORITY", "LEASE"]
    return table(header, rows, numeric={2, 5, 6})


def lease_text(instance: dict[str, Any]) -> str:
    """What is left of the lease ("25s", "1m", "expired"), or "-" without one."""
    remaining = instance.get("lease_remaining")
    if remaining is None:
        return "-"
    if remaining <= 0:
        return "expired"
    if remaining < 1:
        return format_duration(math.ceil(remaining * 1000) / 1000)
    seconds = math.ceil(remaining)
    if seconds >= 60 and seconds % 60:
        return f"{seconds // 60}m{seconds % 60}s"
    return format_duration(seconds)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    """Columns aligned on two spaces; ``numeric`` columns are right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if n in numeric else cell.ljust(width)
            for n, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip() + "\n")
    return "".join(lines)


def _run(args: argparse.Namespace, call: Callable[[ApiClient], int]) -> int:
    try:
        url = api_url(args)
        token = api_token(args)
        with ApiClient(url, token, ca=getattr(args, "ca", None)) as client:
            return call(client)
    except (UsageError, ConfigError) as exc:
        print(f"srvdns {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiClientError as exc:
        print(f"srvdns {args.command}: {exc}", file=sys.stderr)
        return EXIT_API


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def _name(instance: dict[str, Any]) -> str:
    return f"{instance['service']}/{instance['id']}"


def _endpoint(instance: dict[str, Any]) -> str:
    address = str(instance["address"])
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{instance['port']}"


def _lease_note(instance: dict[str, Any]) -> str:
    expires = instance.get("lease_expires")
    return f", lease until {expires}" if expires else ""
