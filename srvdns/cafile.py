"""Trusting the srvdns API's certificate: the system's CAs, or a CA file
(``ca=`` / ``--ca`` / ``$SRVDNS_CA``) for a private CA or a self-signed certificate."""

from __future__ import annotations

import os
import ssl

from srvdns.errors import ConfigError

CA_ENV = "SRVDNS_CA"


def verify(ca_file: str | None = None) -> ssl.SSLContext | bool:
    """What httpx's ``verify`` takes: only ``ca_file``'s certificates (else
    ``$SRVDNS_CA``'s), or True for the system's trust store.  Host names are checked.

    Raises ConfigError for a CA file that cannot be read or holds no certificate.
    """
    path = ca_file or os.environ.get(CA_ENV) or None
    if path is None:
        return True
    try:
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{path}: cannot use as a CA file: {exc}") from None
