"""Policy loading: the example is valid, and every invalid policy names the field at fault."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.policy.load import PolicyError, load_policy, parse_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"


def test_example_policy_loads() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.desk.name == "Northwind IT Services"
    assert [c.id for c in policy.clients] == ["acme", "globex", "initech"]
    assert policy.tiers["premium"].targets.emergency.respond_within == timedelta(hours=1)
    assert policy.oncall.ack_timeout == timedelta(minutes=10)
    assert policy.delay_updates.min_interval == timedelta(minutes=30)
    assert policy.tiers["complimentary"].billable_after_hours is not None
    assert policy.oncall.overrides[0].tech == "carol"


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return apply


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set(["clients", 1, "tier"], "gold"), "clients[1].tier: unknown tier 'gold'"),
        (_set(["techs", 0, "phone"], "312-555-0101"), "techs[0].phone:"),
        (_set(["desk", "timezone"], "America/Chicag"), "desk.timezone: unknown IANA time zone"),
        (_set(["desk", "hours"], "support"), "desk.hours: unknown calendar 'support'"),
        (_set(["unknown_sender_tier"], "gold"), "unknown_sender_tier: unknown tier 'gold'"),
        (_set(["oncall", "rotation", 2], "dave"), "oncall.rotation[2]: unknown tech 'dave'"),
        (_set(["oncall", "ack_timeout"], "ten minutes"), "oncall.ack_timeout: expected a duration"),
        (_set(["oncall", "overrides", 0, "tech"], "zed"), "oncall.overrides[0].tech: unknown tech 'zed'"),
        (_set(["clients", 0, "primary_tech"], "zed"), "clients[0].primary_tech: unknown tech 'zed'"),
        (_set(["clients", 2, "timezone"], "Mars/Base"), "clients[2].timezone: unknown IANA time zone"),
        (_set(["clients", 0, "contacts", 0, "preferred"], "fax"), "clients[0].contacts[0].preferred:"),
        (_set(["clients", 1, "skills_needed"], ["cobol"]), "clients[1].skills_needed: no tech"),
        (_set(["calendars", "business", "week", "mon"], ["17:00-08:00"]), "calendars.business:"),
        (_set(["calendars", "business", "week", "funday"], []), "calendars.business.week.funday:"),
        (_set(["calendars", "business", "holidays", "country"], "XX"), "calendars.business.holidays:"),
        (_set(["techs", 1, "id"], "alice"), "techs[1].id: duplicate tech id 'alice'"),
        (_set(["delay_updates", "surprise"], 1), "delay_updates: Object contains unknown field `surprise`"),
        (_set(["oncall", "handoff", "weekday"], "monday"), "oncall.handoff.weekday:"),
        (
            _set(["tiers", "premium", "targets", "emergency", "clock"], "always"),
            "tiers.premium.targets.emergency.clock: Invalid enum value 'always'",
        ),
        (_set(["calendars", "business", "dates"], ["someday"]), "calendars.business.dates[0]:"),
    ],
)
def test_invalid_policy_names_the_path(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    mutate(doc)
    with pytest.raises(PolicyError) as caught:
        parse_policy(yaml.safe_dump(doc))
    assert str(caught.value).startswith(message), str(caught.value)


def test_missing_and_malformed_files() -> None:
    with pytest.raises(PolicyError, match="desk: Object missing required field `name`"):
        parse_policy(EXAMPLE.read_text().replace("  name: Northwind IT Services\n", ""))
    with pytest.raises(PolicyError, match=r"^\$: not valid YAML"):
        parse_policy("desk: [unclosed")
    with pytest.raises(PolicyError, match=r"^\$: cannot read policy file"):
        load_policy("/nonexistent/policy.yaml")
