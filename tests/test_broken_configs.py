"""The broken-config corpus: every file in ``tests/configs/broken`` is refused, and the
error names the file and the key with one line per mistake.

Each file holds one mistake people make (a typo in a key, a wrong type, a bad TTL, an
address that is a host name, a public API without a token, invalid TOML, bytes that are
not UTF-8, ...) and starts with ``# expect: <text the error must contain>``.  The files
go through ``srvdns check-config`` (exit status 2, the message on stderr) and ``srvdns
serve`` refuses them the same way before binding anything.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from e2e.harness import srvdns_command

from srvdns.cli import main

CORPUS = Path(__file__).parent / "configs" / "broken"
FILES = sorted(CORPUS.glob("*.toml"))


def expected(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: "), f"{path.name} has no '# expect:' line"
    return first.removeprefix("# expect: ")


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 25


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_check_config_refuses_it_naming_file_and_key(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "-c", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, "one mistake, one line"
    assert lines[0].startswith("srvdns: ")
    assert path.name in lines[0]
    assert expected(path) in lines[0]


@pytest.mark.parametrize("name", ["typo_in_zone_key", "api_public_without_token", "not_utf8"])
def test_serve_refuses_it_before_binding(name: str) -> None:
    path = CORPUS / f"{name}.toml"
    result = subprocess.run(
        [*srvdns_command(), "serve", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert expected(path) in result.stderr
    assert "listening" not in result.stderr
