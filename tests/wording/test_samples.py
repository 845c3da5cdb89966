"""The sample tickets are data (samples.toml): read whole, and a bad entry refused naming its field."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from services.wording.samples import LONG_NAME, SCENARIOS, read_scenarios

ENTRY = """
[[sample]]
number = "SR-1"
client = { id = "acme", name = "Acme", tier = "premium" }
contact = { phone = "+13125550150" }
channel = "voice"
subject = "Emergency call"
priority = "emergency"
disposition = "page_oncall"
due_in = "PT1H"
zone = "America/Chicago"
hours = "around the clock"
"""


def test_the_shipped_scenarios_read_whole() -> None:
    scenarios = read_scenarios(SCENARIOS)
    assert [s.number for s in scenarios] == ["SR-1003", "SR-1004", "SR-1005", "SR-10042", "SR-1006"]
    assert {s.fee for s in scenarios} == {None, "$250"}
    # The abroad client's contact sits exactly at the name bound (samples.LONG_NAME follows NAME_MAX).
    assert [s.contact.name for s in scenarios if s.number == "SR-10042"] == [LONG_NAME]


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        pytest.param('due_in = "PT1H"', 'due_in = "an hour"', "$.sample[0].due_in", id="not a duration"),
        pytest.param(
            'disposition = "page_oncall"',
            'disposition = "later"',
            "$.sample[0].disposition",
            id="not a disposition",
        ),
        pytest.param('tier = "premium"', "tier = 3", "$.sample[0].client.tier", id="a nested field"),
        pytest.param(
            'hours = "around the clock"', 'hour = "around the clock"', "$.sample[0]", id="misspelt key"
        ),
    ],
)
def test_a_bad_entry_names_its_field(tmp_path: Path, old: str, new: str, named: str) -> None:
    path = tmp_path / "samples.toml"
    path.write_text(ENTRY.replace(old, new))
    with pytest.raises(msgspec.ValidationError) as refused:
        read_scenarios(path)
    assert str(refused.value).endswith(f"- at `{named}`")
