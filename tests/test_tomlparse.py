"""srvdns.tomlparse: the compiled parser for large files reads exactly what tomllib reads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from srvdns import tomlparse

REPO = Path(__file__).resolve().parents[1]


def big_config(services: int = 600) -> str:
    blocks = ['[server]\ndns_listen = ["127.0.0.1:0"]\n[[zone]]\nname = "service.local"\n']
    for s in range(services):
        blocks.append(f'[[zone.service]]\nname = "svc-{s}"\n')
        for i in range(10):
            blocks.append(
                "[[zone.service.instances]]\n"
                f'id = "svc-{s}-{i}"\naddress = "10.0.{s % 250}.{i + 1}"\nport = {8000 + i}\n'
                'tags = ["a", "b"]\nmeta = { rack = "r1", "x y" = "ü" }\nweight = 1.5e0\n'
            )
    return "".join(blocks)


def test_a_large_file_parses_as_tomllib_parses_it():
    text = big_config()
    assert len(text) >= tomlparse.LARGE
    assert tomlparse.loads(text) == tomllib.loads(text)


def test_small_files_and_the_example_parse_as_tomllib_parses_them():
    text = (REPO / "zones.example.toml").read_text()
    assert tomlparse.loads(text) == tomllib.loads(text)


def test_a_broken_large_file_gets_tomllib_s_error():
    text = big_config() + "\n[[zone.service]\nname = 1\n"
    with pytest.raises(tomllib.TOMLDecodeError) as found:
        tomlparse.loads(text)
    with pytest.raises(tomllib.TOMLDecodeError) as expected:
        tomllib.loads(text)
    assert str(found.value) == str(expected.value)
