"""The fuzz property replayed without atheris: every seed and every saved crash must parse and publish."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from services.contracts.requests import ServiceRequest
from tests.fuzz.target import publishable, seeds, write_seeds

CRASHES = Path(__file__).parent / "crashes"


def _round_trip(raw: bytes) -> ServiceRequest:
    return msgspec.json.decode(publishable(raw), type=ServiceRequest)


def test_seeds_become_publishable_requests(tmp_path: Path) -> None:
    items = seeds()
    assert write_seeds(tmp_path) == len(items)
    for name, raw in items.items():
        assert (tmp_path / name).read_bytes() == raw
        request = _round_trip(raw)
        assert request.channel == "email" and request.id.startswith("em-"), name
    # The seeds reach the threading and classification branches the fuzzer mutates from.
    natures = {_round_trip(raw).nature for raw in items.values()}
    assert {"request", "bounce", "out_of_office"} <= natures
    assert _round_trip(items["reply"]).thread.ticket_token == "SR-1042"


# Inputs the fuzzer found (minimized by hand) that made parse() raise or produced a request the bus
# could not encode; either way intake answered 451 to every retry. Each must now be accepted.
@pytest.mark.parametrize("path", sorted(CRASHES.iterdir()), ids=lambda p: p.name)
def test_fuzzer_crash_becomes_a_publishable_request(path: Path) -> None:
    request = _round_trip(path.read_bytes())
    assert request.channel == "email" and request.id.startswith("em-")
