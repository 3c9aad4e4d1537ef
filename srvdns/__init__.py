"""srvdns: an authoritative DNS server for service discovery."""

__version__ = "0.1.0"
