"""TLS for the API listener: ``[server] api_tls_cert`` / ``api_tls_key``.

The context is checked when the config is loaded, so that a missing file, a key that
does not match its certificate or a bad password fails start-up (and a reload) with a
message naming the key, instead of failing the first handshake.
"""

from __future__ import annotations

import ssl

from srvdns.config import Config
from srvdns.errors import ConfigError


def server_context(config: Config) -> ssl.SSLContext | None:
    """A server-side TLS context with the configured certificate chain, or None when
    the API speaks plain HTTP."""
    settings = config.server
    if settings.api_tls_cert is None or settings.api_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_chain(context, config)
    return context


def load_chain(context: ssl.SSLContext, config: Config) -> None:
    """Load (or load again, after a reload) the certificate and key into ``context``;
    connections accepted later use them."""
    settings = config.server
    assert settings.api_tls_cert is not None
    assert settings.api_tls_key is not None
    cert, key = config.relative(settings.api_tls_cert), config.relative(settings.api_tls_key)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{config.path}: server.api_tls_cert/api_tls_key: cannot read {exc.filename}"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{config.path}: server.api_tls_cert/api_tls_key: cannot use {cert} with {key}: "
            f"{getattr(exc, 'reason', None) or exc}"
        ) from None
