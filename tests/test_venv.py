"""tools/venv.sh: clones share the pinned dependencies, and each clone's commands run its own code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = "The pipeline itself runs with Snakemake from the repository root"


def shared_venv() -> Path:
    """The complete pinned venv this test runs in (directly, or under a checkout's .venv layer)."""
    prefix = Path(sys.prefix)
    shared = Path((prefix / ".shared").read_text().strip()) if (prefix / ".shared").is_file() else prefix
    if not (shared / ".complete").is_file():
        pytest.skip(f"not run from a venv made by tools/venv.sh ({sys.prefix})")
    return shared


def clone(src: Path, dst: Path) -> Path:
    """A copy of the checkout's files that tools/venv.sh and the signpipe command read."""
    dst.mkdir()
    for name in ("tools", "signpipe"):
        shutil.copytree(src / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.lock", "README.md"):
        shutil.copy(src / name, dst / name)
    return dst


def venv_sh(checkout: Path, shared: Path) -> Path:
    """Run tools/venv.sh in ``checkout``; the venv path it prints."""
    proc = subprocess.run(["tools/venv.sh"], cwd=checkout, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SIGNPIPE_VENV": str(shared)})
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def help_text(venv: Path, cwd: Path) -> str:
    """`signpipe --help` in a shell that sourced ``venv``'s bin/activate."""
    proc = subprocess.run(["bash", "-c", f'source "{venv}/bin/activate" && signpipe --help'], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_two_clones_run_their_own_code(tmp_path):
    """Both clones run tools/venv.sh (in either order), then each one's `signpipe --help` shows its own text."""
    shared = shared_venv()
    first, second = clone(REPO, tmp_path / "first"), clone(REPO, tmp_path / "second")
    cli = second / "signpipe" / "cli.py"
    cli.write_text(cli.read_text().replace(MARKER, "SECOND CLONE"))
    for order in ([first, second], [second, first]):
        venvs = {checkout: venv_sh(checkout, shared) for checkout in order}
        texts = {checkout: help_text(venv, tmp_path) for checkout, venv in venvs.items()}
        assert MARKER in texts[first] and "SECOND CLONE" not in texts[first]
        assert "SECOND CLONE" in texts[second] and MARKER not in texts[second]
        assert venvs[first] != venvs[second]
    assert (first / ".venv" / "bin" / "snakemake").is_file() and (second / ".venv" / "bin" / "pytest").is_file()
