"""``./syntrack``: manage.py with the project's virtualenv, from any directory (issue 6)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from quotas.tests.helpers import PROJECT, base_env

WRAPPER = PROJECT / "syntrack"


@pytest.mark.slow
@pytest.mark.skipif(not (PROJECT / ".venv" / "bin" / "python").exists(), reason="no .venv in the project")
def test_it_runs_manage_py_with_the_venv_from_another_directory(tmp_path: Path) -> None:
    env = base_env(SYNTRACK_DB_PATH=str(tmp_path / "syntrack.db"))

    result = subprocess.run([str(WRAPPER), "check"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_without_a_venv_it_says_to_run_make_run_first(tmp_path: Path) -> None:
    copy = tmp_path / "syntrack"
    shutil.copy2(WRAPPER, copy)

    result = subprocess.run([str(copy), "check"], capture_output=True, text=True, timeout=10)

    assert result.returncode == 2
    assert result.stderr.strip() == f"syntrack: no virtualenv in {tmp_path}/.venv yet: run `make run` first"
