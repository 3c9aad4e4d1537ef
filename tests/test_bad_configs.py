"""A corpus of broken config files (``tests/data/bad_configs``): each makes
``srvdns check-config`` exit 2 with one line naming the file and the key.

Each file's first line is ``# error: <fragment>``, a part of the expected message.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from srvdns.cli import main

CORPUS = Path(__file__).parent / "data" / "bad_configs"
FILES = sorted(CORPUS.glob("*.toml"))


def expected(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# error: "), f"{path.name}: first line must be '# error: ...'"
    return first.removeprefix("# error: ")


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 60


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_check_config_names_file_and_key_on_one_line(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(CORPUS)
    assert main(["check-config", "-c", path.name]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith("srvdns: ")
    assert path.name in line
    assert expected(path) in line
    assert "Traceback" not in line


def test_the_real_command(srvdns_bin: list[str]) -> None:
    """The installed ``srvdns check-config`` for a few of them: status 2, one line."""
    for name in ("zone_key_typo", "toml_key_twice", "static_service_twice", "not_utf8"):
        path = CORPUS / f"{name}.toml"
        result = subprocess.run(
            [*srvdns_bin, "check-config", "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1
        assert str(path) in result.stderr
        assert expected(path) in result.stderr


@pytest.fixture
def srvdns_bin() -> list[str]:
    from e2e.harness import srvdns_command

    return srvdns_command()
