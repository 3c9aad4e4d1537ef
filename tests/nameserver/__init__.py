"""Tests of srvdns.nameserver."""
