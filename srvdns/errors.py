"""The one exception hierarchy of srvdns: every error it raises derives from SrvdnsError."""


class SrvdnsError(Exception):
    """Something srvdns could not do."""


class ConfigError(SrvdnsError):
    """The configuration file is missing, unreadable or invalid.

    The message names the file, the key and what is wrong with it.
    """


class RegistryError(SrvdnsError):
    """The registry store could not complete an operation."""


class NotFoundError(RegistryError):
    """The service or instance does not exist in the registry."""


class ConflictError(RegistryError):
    """The write conflicts with what the registry holds (for example a static instance)."""


class StoreUnavailableError(RegistryError):
    """The database could not be reached or refused the transaction; nothing was stored."""


class ApiClientError(SrvdnsError):
    """The srvdns HTTP API refused a request or could not be reached."""


class SocketActivationError(SrvdnsError):
    """The sockets systemd passed (socket activation) cannot be used."""
