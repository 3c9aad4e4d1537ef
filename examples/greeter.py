"""greeter: a tiny HTTP service that registers itself with srvdns and heartbeats until stopped.

    python examples/greeter.py --id greeter-1              # a free port, API from $SRVDNS_API
    python examples/greeter.py --id greeter-2 --port 8082 --api http://127.0.0.1:8054

GET /hello?name=Ada answers "Hello, Ada! (greeter-1)".  SIGTERM or Ctrl-C deregisters it
and stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from urllib.parse import parse_qs, urlsplit

from srvdns.client import Registration


def handler(instance_id: str) -> type[BaseHTTPRequestHandler]:
    """The request handler of the instance called ``instance_id``."""

    class Greeter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/hello":
                self.send_error(404)
                return
            name = parse_qs(url.query).get("name", ["world"])[0]
            body = f"Hello, {name}! ({instance_id})\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet

    return Greeter


def stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the process like Ctrl-C does: through the ``with`` blocks below."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", default="greeter-1", help="instance id (default greeter-1)")
    parser.add_argument("--address", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api", help="srvdns API (default $SRVDNS_API or 127.0.0.1:8054)")
    parser.add_argument("--ttl", default="10s", help="heartbeat lease (default 10s)")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, stop)
    server = ThreadingHTTPServer((args.address, args.port), handler(args.id))
    port = server.server_address[1]
    # Registered while in the block, with a heartbeat every third of the ttl; deregistered
    # on the way out, and - deregister_on_signal - as soon as SIGTERM or SIGINT arrives,
    # before the handler above runs.
    registration = Registration(
        "greeter",
        args.id,
        address=args.address,
        port=port,
        ttl=args.ttl,
        api=args.api,
        deregister_on_signal=True,
    )
    with server, registration, contextlib.suppress(KeyboardInterrupt):
        print(f"{args.id} serving on http://{args.address}:{port}", flush=True)
        server.serve_forever()
    print(f"{args.id} deregistered and stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
