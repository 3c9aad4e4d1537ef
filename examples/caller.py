"""caller: finds greeter through DNS (SRV) and calls it, printing each reply.

    python examples/caller.py --name Ada --count 4
    python examples/caller.py --dns 127.0.0.1:8053 --asyncio

Each call goes to an instance chosen per RFC 2782 and moves on to another one if it
refuses the connection or answers 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from srvdns.client import AsyncClient, AsyncResolver, Client, ClientError, Resolver


def call(servers: list[str], zone: str, name: str, count: int) -> list[str]:
    with Client(Resolver(servers, zone=zone)) as client:
        return [
            client.call("greeter", "/hello", params={"name": name}).text.strip()
            for _ in range(count)
        ]


async def acall(servers: list[str], zone: str, name: str, count: int) -> list[str]:
    async with AsyncClient(AsyncResolver(servers, zone=zone)) as client:
        return [
            (await client.call("greeter", "/hello", params={"name": name})).text.strip()
            for _ in range(count)
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dns",
        default=os.environ.get("SRVDNS_DNS", "127.0.0.1:8053"),
        help="srvdns's DNS address(es), comma-separated (default $SRVDNS_DNS or 127.0.0.1:8053)",
    )
    parser.add_argument("--zone", default="service.local")
    parser.add_argument("--name", default="world", help="whom to greet")
    parser.add_argument("--count", type=int, default=1, help="how many calls")
    parser.add_argument("--asyncio", action="store_true", help="use the asyncio client")
    args = parser.parse_args(argv)

    servers = [s.strip() for s in args.dns.split(",") if s.strip()]
    try:
        if args.asyncio:
            replies = asyncio.run(acall(servers, args.zone, args.name, args.count))
        else:
            replies = call(servers, args.zone, args.name, args.count)
    except ClientError as exc:
        print(f"caller: {exc}", file=sys.stderr)
        return 1
    for reply in replies:
        print(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
