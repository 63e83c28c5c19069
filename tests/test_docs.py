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


# What fits on a terminal's first screen.
FIRST_SCREEN_LINES = 40
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && bash scripts/test"


def test_readme_first_screen_gets_a_newcomer_to_a_stored_event_and_the_tests() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    screen = readme.splitlines()[:FIRST_SCREEN_LINES]
    text = "\n".join(screen)
    assert "git clone" in text
    assert ".venv/bin/caliper-store serve" in text
    assert "--data @examples/sample-envelope.json" in text
    assert (ROOT / "examples" / "sample-envelope.json").is_file()
    assert "../shared" not in text  # the sample ships in the repository
    # zsh reads an unquoted ? as a glob and refuses the command.
    assert "'http://127.0.0.1:8080/caliper?receipt=1'" in text
    assert TEST_COMMAND in screen  # its own line
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test" in ci
