"""A Consul-compatible subset of the HTTP API, so existing Consul clients work unchanged.

``routes`` has the endpoints, ``definitions`` maps Consul's service and check
definitions onto srvdns instances, ``views`` shows the registry with Consul's field
names, ``keys`` reads Consul's case- and underscore-insensitive JSON keys, ``errors``
gives errors Consul's plain-text shape.
"""
