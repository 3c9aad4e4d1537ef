"""``srvdns export-zone``: the registry's current snapshot as an RFC 1035 master file."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from srvdns import __version__, zonefile
from srvdns.catalog import Catalog
from srvdns.config import Config, ZoneConfig, load
from srvdns.errors import ConfigError, SrvdnsError, StoreUnavailableError
from srvdns.nameserver.authority import serial
from srvdns.nameserver.zonecontent import zone_rrsets


def read_catalog(config: Config) -> Catalog:
    """The snapshot a server would answer from, read from the registry database itself.

    Works whether a server is running or not; the schema is checked, never changed.
    Raises StoreUnavailableError when there is no registry to read.
    """
    from sqlalchemy.engine import make_url

    from srvdns.registry.engine import is_memory_sqlite, is_sqlite
    from srvdns.registry.registry import Registry

    url = config.database_url()
    if is_sqlite(url) and not is_memory_sqlite(url):
        file = make_url(url).database or ""
        if not Path(file).exists():  # opening it would create an empty database
            raise StoreUnavailableError(
                f"no registry database at {file}: `srvdns serve` creates it, "
                "or run `srvdns db upgrade`"
            )
    registry = Registry.open(url, upgrade=False)
    try:
        return registry.holder.current
    finally:
        registry.close()


def export_text(config: Config, zone: ZoneConfig, catalog: Catalog, now: float) -> str:
    """The master file of ``zone``: what DNS answers at ``now``, with those TTLs."""
    rrsets = zone_rrsets(zone, catalog, now, other_zones=config.zone)
    moment = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    comments = [
        f"zone {zone.name}, serial {serial(catalog)}, exported by srvdns {__version__}",
        f"at {moment}: the healthy instances of that moment, with the TTLs DNS gave then",
    ]
    return zonefile.render(zone.name, rrsets, default_ttl=zone.ttl, comments=comments)


def _pick_zone(config: Config, name: str | None) -> ZoneConfig:
    if name is None:
        return config.zone[0]
    wanted = name.strip().rstrip(".").lower()
    for zone in config.zone:
        if zone.name == wanted:
            return zone
    known = ", ".join(z.name for z in config.zone)
    raise ConfigError(f"{config.path}: no zone {name!r} (the zones are: {known})")


def _write(path: str | None, text: str) -> None:
    """To stdout, or to ``path`` replaced atomically: a reader never sees half a file."""
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def export_zone_command(args: argparse.Namespace) -> int:
    """``srvdns export-zone -c FILE [-o OUT] [--zone NAME]``; exit 2 for a config problem,
    1 when the registry cannot be read or the file written."""
    try:
        config = load(args.config)
        zone = _pick_zone(config, args.zone)
    except ConfigError as exc:
        print(f"srvdns: {exc}", file=sys.stderr)
        return 2
    try:
        catalog = read_catalog(config)
        _write(args.output, export_text(config, zone, catalog, time.time()))
    except SrvdnsError as exc:
        print(f"srvdns: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"srvdns: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
