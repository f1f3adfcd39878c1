"""The upstream fixtures in this repository are exact copies of the shared ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = (ROOT / ".." / "shared" / "fixtures" / "upstream").resolve()
LOCAL = ROOT / "quotas" / "tests" / "fixtures" / "upstream"


def shared_files() -> list[Path]:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (../shared is not checked out beside the project); nothing to compare")
    return sorted(p.relative_to(SHARED) for p in SHARED.rglob("*") if p.is_file())


def test_every_shared_fixture_has_an_identical_copy() -> None:
    files = shared_files()
    assert files, f"{SHARED} holds no files"

    missing = [str(p) for p in files if not (LOCAL / p).is_file()]
    different = [
        str(p) for p in files if (LOCAL / p).is_file() and (LOCAL / p).read_bytes() != (SHARED / p).read_bytes()
    ]

    assert not missing, f"copy these from {SHARED} to {LOCAL}: {missing}"
    assert not different, f"these differ from {SHARED}: {different}"


def test_every_generation_the_readme_lists_is_present() -> None:
    readme = (LOCAL / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\|\s*((?:synthetic|zai)/[\w.]+\.json)\s*\|", readme, flags=re.MULTILINE)

    assert len(listed) >= 13
    assert [name for name in listed if not (LOCAL / name).is_file()] == []
