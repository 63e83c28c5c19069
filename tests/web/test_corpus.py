"""Every real payload of the shared corpus is accepted: stored or quarantined with a reason."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import Client
from tests.fixtures.payloads import corpus_dir, corpus_files

from caliper_store.storage import Store
from caliper_store.storage.search import QuarantineFilter

CORPUS = corpus_dir()
pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS} (set CALIPER_STORE_CORPUS)"
)


def post_all(client: Client, files: list[Path]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for path in files:
        response = client.post(path.read_bytes(), params={"receipt": "1"})
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        receipt = response.json()
        assert (
            len(receipt["items"])
            == receipt["stored"] + receipt["duplicates"] + receipt["quarantined"]
        )
        for item in receipt["items"]:
            totals[f"{item['kind']}:{item['verdict']}"] += 1
            if item["verdict"] == "quarantined":
                assert item["reasons"], f"{path}: quarantined without a reason"
    return totals


def test_every_corpus_file_is_stored_or_quarantined_and_counts_add_up(
    client: Client, store: Store
) -> None:
    files = list(corpus_files(CORPUS))
    assert len(files) >= 200
    totals = post_all(client, files)
    stats = store.stats()
    assert stats["events"] == totals["event:stored"]
    assert stats["entities"] == totals["entity:stored"]
    assert stats["quarantined"] == totals["event:quarantined"] + totals["invalid:quarantined"]
    assert stats["receipts"] == len(files)
    reasons = Counter(
        row["reason"] for row in stats["quarantine_by_reason"] for _ in range(row["items"])
    )
    # The corpus reuses event ids across fixtures with other content: those are conflicts.
    assert set(reasons) <= {"id_conflict", "invalid_object"}
    assert reasons["invalid_object"] == 1  # Open edX sends one object without an id.
    # Sending the whole corpus again stores nothing new.
    again = post_all(client, files)
    assert store.stats()["events"] == stats["events"]
    assert again["event:stored"] == 0
    assert again["event:duplicate"] == totals["event:stored"] + totals["event:duplicate"]


@pytest.mark.parametrize("version", ["v1p0", "v1p1", "v1p2"])
def test_ims_fixtures_of_one_version_are_all_stored_in_their_own_store(
    client: Client, store: Store, version: str
) -> None:
    totals = post_all(client, list(corpus_files(CORPUS / "ims" / version)))
    # Every IMS fixture is valid Caliper of its version: nothing fails validation.
    assert totals["invalid:quarantined"] == 0
    assert store.stats()["events"] == totals["event:stored"] > 0


def test_canvas_reuse_of_one_id_for_different_events_is_quarantined_as_conflict(
    client: Client, store: Store
) -> None:
    files = list(corpus_files(CORPUS / "canvas"))
    post_all(client, files)
    stats = store.stats()
    # Canvas's docs reuse 3 ids across 8 different events: 3 stored, 5 held as conflicts.
    assert stats["quarantine_by_reason"] == [{"reason": "id_conflict", "items": 5}]
    assert stats["events"] == len(files) - 5
    held = {
        item.event_id
        for item in store.quarantine.page(QuarantineFilter(), before_id=None, limit=10)
    }
    assert held == {
        "urn:uuid:3f672715-6aa8-4293-b62a-3b3319ff5701",
        "urn:uuid:0a2a8c4d-0ebc-4200-ab6f-095b3b16852d",
        "urn:uuid:79d0955f-d697-4293-b361-6f420c8f254b",
    }
