"""The per-query log: one line per answered DNS message, when ``[server] query_log`` is on.

Off, the listeners hold None instead of a ``QueryLog`` and never call it, so no string
is built and nothing is parsed.  On, each line names the client, the question, the
rcode sent, the transport and how long the answer took; with ``--log-format json``
these are fields of the JSON object (see ``logs.JsonFormatter``).
"""

from __future__ import annotations

import logging

from srvdns.nameserver.stats import qtype_name, rcode_name
from srvdns.nameserver.wire import FormError, Question, parse_query

LOGGER = "srvdns.query"

_BADVERS = 16


class QueryLog:
    """Writes query lines to the ``srvdns.query`` logger at INFO.

    The logger's own level is set to INFO so that ``--log-level warning`` quiets the
    server's other messages without silencing a query log that was asked for.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger if logger is not None else logging.getLogger(LOGGER)
        self._log.setLevel(logging.INFO)

    def record(
        self,
        transport: str,
        client: str,
        port: int,
        wire: bytes,
        reply: bytes | None,
        seconds: float,
    ) -> None:
        """Log one query: ``wire`` from ``client``:``port`` got ``reply`` (None: none)."""
        question, version = _question(wire)
        qname = "" if question is None else str(question.qname)
        qtype = "" if question is None else qtype_name(question.qtype, fold=False)
        rcode = "-" if reply is None or len(reply) < 4 else _rcode(reply, version)
        peer = f"[{client}]:{port}" if ":" in client else f"{client}:{port}"
        self._log.info(
            "%s %s %s %s %s %.6fs",
            peer,
            transport,
            qname or "-",
            qtype or "-",
            rcode,
            seconds,
            extra={
                "fields": {
                    "client": client,
                    "client_port": port,
                    "transport": transport,
                    "qname": qname,
                    "qtype": qtype,
                    "rcode": rcode,
                    "duration": round(seconds, 6),
                }
            },
        )


def _question(wire: bytes) -> tuple[Question | None, int]:
    """The question of ``wire`` as far as it reads, and its EDNS version (-1: none)."""
    try:
        query = parse_query(wire)
    except FormError as exc:
        return exc.question, -1 if exc.edns is None else exc.edns.version
    except Exception:  # a runt or garbage: log what we can, never fail the query
        return None, -1
    return query.question, -1 if query.edns is None else query.edns.version


def _rcode(reply: bytes, edns_version: int) -> str:
    rcode = reply[3] & 0x0F
    if rcode == 0 and edns_version > 0:
        return rcode_name(_BADVERS)
    return rcode_name(rcode)
