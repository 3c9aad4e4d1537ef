"""srvdns as a hidden primary: zone transfers and NOTIFY wired to the registry.

``runtime`` holds one ``HiddenPrimary``; it builds the transfer answerer and the
notifier from the config, tells the notifier of every registry change, and moves the
registry's index (the SOA serial) when a zone's contents change outside the registry:
at start (whatever changed while srvdns was down, e.g. the config, reaches the
secondaries) and at a reload.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from srvdns.config import Config
from srvdns.nameserver.notify import Notifier
from srvdns.nameserver.xfr import Transfers

if TYPE_CHECKING:
    from srvdns.registry.registry import Registry
    from srvdns.registry.repository import Change

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A config's transfer pieces, built but not serving yet (None: no zone is
    transferred or notified)."""

    transfers: Transfers | None
    notifier: Notifier | None


class HiddenPrimary:
    """The transfer answerer the DNS listeners use, and the notifier, for one registry."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self.transfers: Transfers | None = None
        self._notifier: Notifier | None = None
        self._bumping: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        registry.add_listener(self._changed)

    def prepare(self, config: Config) -> Prepared:
        """Build the pieces for ``config``; raises ConfigError (a TSIG secret file)."""
        secrets = config.tsig_secrets()
        if not any(zone.transfer_to or zone.notify for zone in config.zone):
            return Prepared(None, None)
        transfers = Transfers(
            config.zone, self._registry.holder, secrets, on_conflict=self._conflict
        )
        notifier = Notifier(transfers, secrets) if any(z.notify for z in config.zone) else None
        return Prepared(transfers, notifier)

    async def activate(self, prepared: Prepared) -> None:
        """Serve ``prepared`` from now on: a new serial first, so that secondaries fetch
        the contents this config gives; then the notifier announces it."""
        if self._notifier is not None:
            await self._notifier.stop()
            self._notifier = None
        if prepared.transfers is not None:
            await self._registry.bump_index()
        self.transfers = prepared.transfers
        self._notifier = prepared.notifier
        if self._notifier is not None:
            self._notifier.start()

    async def stop(self) -> None:
        """Stop notifying and stop following the registry."""
        self._registry.remove_listener(self._changed)
        if self._notifier is not None:
            await self._notifier.stop()
        if self._bumping is not None:
            await asyncio.gather(self._bumping, return_exceptions=True)

    def _changed(self, change: Change) -> None:
        if self._notifier is not None:
            self._notifier.changed(change)

    def _conflict(self) -> None:
        """The contents moved without the serial: move the serial (once at a time).
        Called on whichever thread found it (a transfer is packed off the loop)."""
        self._loop.call_soon_threadsafe(self._start_bump)

    def _start_bump(self) -> None:
        if self._bumping is not None and not self._bumping.done():
            return
        self._bumping = self._loop.create_task(self._bump())

    async def _bump(self) -> None:
        try:
            await self._registry.bump_index()
        except Exception:
            log.exception("cannot move the zone serial")
