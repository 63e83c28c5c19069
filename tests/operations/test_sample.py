"""The sample envelope the README sends is stored whole, without a warning, on both backends."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Client

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-envelope.json"


def test_the_readme_sample_is_stored_without_a_warning(client: Client) -> None:
    answer = client.post(SAMPLE.read_bytes(), params={"receipt": "1"})
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert receipt["stored"] == 2
    assert [item["verdict"] for item in receipt["items"]] == ["stored", "stored"]
    assert all("warnings" not in item for item in receipt["items"])
    assert "warnings" not in receipt
