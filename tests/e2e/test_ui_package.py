"""The status page's files ship in the wheel: a non-editable install serves them.

The wheel is built as ``pip install .`` builds it (isolated build environment), from a
copy of the sources (so the work tree gets no ``build/``), installed with pip into a
directory of its own, and ``srvdns serve`` runs from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
from e2e.harness import start, write_config

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "srvdns" / "ui" / "static"
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q"]


def _build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    for part in ("srvdns", "migrations"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = out.glob("srvdns-*.whl")
    return wheel


def test_a_wheel_install_serves_the_page(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    shipped = {Path(n).name for n in zipfile.ZipFile(wheel).namelist() if "/ui/static/" in n}
    assert shipped == {p.name for p in STATIC.iterdir()}

    target = tmp_path / "installed"
    subprocess.run(
        [*PIP_INSTALL, "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {"PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import srvdns.ui; print(srvdns.ui.__file__)"],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(target)

    config = write_config(tmp_path)
    server = start(config, env=env)
    try:
        with httpx.Client(base_url=server.api, timeout=5) as http:
            page = http.get("/ui/")
            assert page.status_code == 200
            assert page.content == (STATIC / "index.html").read_bytes()
            for name in ("ui.js", "metrics.js", "ui.css"):
                reply = http.get(f"/ui/static/{name}")
                assert reply.status_code == 200
                assert reply.content == (STATIC / name).read_bytes()
    finally:
        server.stop()
