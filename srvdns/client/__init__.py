"""The Python client library: self-registration with heartbeats, and discovery through DNS.

    from srvdns.client import Client, Registration, Resolver

    with Registration("web", "web-1", address="10.0.0.7", port=8080, ttl="10s"):
        ...  # registered, heartbeating; deregistered on the way out

    with Client(Resolver([("127.0.0.1", 8053)])) as client:
        reply = client.call("greeter", "/hello")

Every flavour - ``Resolver`` / ``AsyncResolver``, ``Client`` / ``AsyncClient``, and
``Registration`` with ``with`` or ``async with`` - runs the same sans-I/O policies
(``discovery``, ``http.CallPolicy``, ``registration.Lease``) through a thin shell.
"""

from srvdns.client.backoff import Backoff
from srvdns.client.breaker import Breakers, State
from srvdns.client.discovery import Instance
from srvdns.client.errors import (
    CallError,
    ClientError,
    DiscoveryError,
    NoInstancesError,
    RegistrationError,
)
from srvdns.client.http import AsyncClient, Client
from srvdns.client.registration import Registration
from srvdns.client.resolver import AsyncResolver, Resolver, discover

__all__ = [
    "AsyncClient",
    "AsyncResolver",
    "Backoff",
    "Breakers",
    "CallError",
    "Client",
    "ClientError",
    "DiscoveryError",
    "Instance",
    "NoInstancesError",
    "Registration",
    "RegistrationError",
    "Resolver",
    "State",
    "discover",
]
