"""Allows ``python -m srvdns``."""

from srvdns.cli import main

raise SystemExit(main())
