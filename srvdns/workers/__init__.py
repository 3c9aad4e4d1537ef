"""``srvdns serve --workers N``: several processes answering DNS on the same addresses."""
