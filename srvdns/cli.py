"""The ``srvdns`` command line: argument parsing and dispatch only, no logic."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from srvdns import __version__


def _add_config(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-c",
        "--config",
        required=required,
        metavar="FILE",
        help="the TOML configuration file",
    )


def _add_api(parser: argparse.ArgumentParser) -> None:
    _add_config(parser, required=False)
    parser.add_argument(
        "--api",
        metavar="URL",
        help="API base URL (default: api_listen of --config, else $SRVDNS_API, "
        "else http://127.0.0.1:8054); the token comes from the config's api_token_file "
        "or $SRVDNS_TOKEN",
    )
    parser.add_argument(
        "--ca",
        metavar="FILE",
        help="trust only this CA file (PEM) for an https API (default: $SRVDNS_CA, else the "
        "system's CAs); e.g. the API's own self-signed certificate",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 128:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to 128")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="srvdns", description="Authoritative DNS server for service discovery."
    )
    parser.add_argument("--version", action="version", version=f"srvdns {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the DNS server, the API and the health loop")
    _add_config(serve, required=True)
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (default: info)",
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="log lines for people (text, the default) or one JSON object per line (json)",
    )
    serve.add_argument(
        "--query-log",
        action="store_true",
        help="log every DNS query (as [server] query_log = true does)",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="processes answering DNS on the same addresses (default: [server] workers, 1)",
    )
    serve.add_argument("--worker-role", help=argparse.SUPPRESS)  # set by the supervisor

    check = commands.add_parser("check-config", help="validate a config file and exit")
    _add_config(check, required=True)

    export = commands.add_parser(
        "export-zone",
        help="write the registry's current snapshot as an RFC 1035 zone file",
        description="Write what DNS answers now, with the TTLs it gives now, as a master "
        "file (for backups, diffs, or loading into BIND, NSD or Knot).  Reads the "
        "registry database directly, whether or not a server is running.",
    )
    _add_config(export, required=True)
    export.add_argument(
        "-o", "--output", metavar="OUT", help="file to write (replaced atomically; default stdout)"
    )
    export.add_argument(
        "--zone", metavar="NAME", help="which [[zone]] of the config (default: the first)"
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="apply schema migrations")
    _add_config(upgrade, required=False)
    upgrade.add_argument("--database", metavar="URL", help="SQLAlchemy URL (overrides --config)")

    register = commands.add_parser("register", help="register or replace an instance")
    _add_api(register)
    register.add_argument("service")
    register.add_argument("id")
    register.add_argument("--address", required=True)
    register.add_argument("--port", required=True, type=int)
    register.add_argument("--tag", action="append", default=[], dest="tags", metavar="TAG")
    register.add_argument(
        "--meta", action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    register.add_argument("--weight", type=int)
    register.add_argument("--priority", type=int)
    register.add_argument("--ttl", metavar="DURATION", help="heartbeat lease, e.g. 30s")

    deregister = commands.add_parser("deregister", help="remove an instance")
    _add_api(deregister)
    deregister.add_argument("service")
    deregister.add_argument("id")

    heartbeat = commands.add_parser("heartbeat", help="renew an instance's TTL lease")
    _add_api(heartbeat)
    heartbeat.add_argument("service")
    heartbeat.add_argument("id")

    ls = commands.add_parser("ls", help="list services, or one service's instances")
    _add_api(ls)
    ls.add_argument("service", nargs="?")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``srvdns`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from srvdns.runtime import serve_command

        return serve_command(args)
    if args.command == "check-config":
        from srvdns.runtime import check_config_command

        return check_config_command(args)
    if args.command == "export-zone":
        from srvdns.export import export_zone_command

        return export_zone_command(args)
    if args.command == "db":
        from srvdns.runtime import db_upgrade_command

        return db_upgrade_command(args)
    from srvdns.api.commands import deregister, heartbeat, ls, register

    client_commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "register": register,
        "deregister": deregister,
        "heartbeat": heartbeat,
        "ls": ls,
    }
    return client_commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
