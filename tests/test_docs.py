"""The reference pages are generated from the code: they must match it, setting for setting."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path

import pytest

from caliper_store.config import SETTING_FIELDS

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = runpy.run_path(str(ROOT / "scripts" / "gen_docs.py"))
PAGES: dict[str, Callable[[], str]] = GENERATOR["PAGES"]


@pytest.mark.parametrize("page", sorted(PAGES))
def test_generated_page_is_up_to_date(page: str) -> None:
    committed = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert committed == PAGES[page](), f"docs/{page} is stale: run python scripts/gen_docs.py"


def test_every_setting_is_documented() -> None:
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = [name for name in SETTING_FIELDS if f"`{name}`" not in page]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[:1500]
    assert "caliper-store serve" in head
    assert "scripts/test" in head
