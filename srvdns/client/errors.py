"""The exceptions of the client library; every one is an ``SrvdnsError``."""

from __future__ import annotations

from srvdns.errors import SrvdnsError


class ClientError(SrvdnsError):
    """The srvdns client library could not do what it was asked."""


class DiscoveryError(ClientError):
    """srvdns could not be asked (no answer, SERVFAIL, REFUSED) and no stale answer was left."""


class NoInstancesError(ClientError):
    """The service has no instance to use: none in DNS, or every one's circuit is open."""


class CallError(ClientError):
    """Every instance a call tried failed without an HTTP response (connection refused, timeout).

    ``attempts`` lists ``(url, exception)`` for each try, in order.
    """

    def __init__(self, message: str, attempts: list[tuple[str, Exception]]) -> None:
        super().__init__(message)
        self.attempts = attempts


class RegistrationError(ClientError):
    """srvdns refused the registration (a 4xx answer: a bad field, a missing or wrong token).

    ``status`` is the HTTP status.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
