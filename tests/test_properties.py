"""Bad input never crashes: the email parser on arbitrary bytes, the policy on any instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake_email.mail import parse
from services.policy.calendar import BusinessCalendar
from services.policy.decide import decide, oncall_at
from services.policy.load import load_policy

ROOT = Path(__file__).resolve().parents[1]
POLICY = load_policy(ROOT / "deploy" / "policy.example.yaml")
CALENDAR = BusinessCalendar(POLICY.calendars[POLICY.desk.hours])
HEADERS = st.sampled_from(
    [
        b"From: ", b"To: ", b"Subject: =?utf-8?b?", b"Content-Type: multipart/mixed; boundary=",
        b"Content-Type: text/plain; charset=ks_c_5601-1987\r\n", b"Content-Transfer-Encoding: base64\r\n",
        b"Message-ID: <", b"References: ", b"\r\n\r\n", b"--", b"Auto-Submitted: auto-replied\r\n",
        b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC", b"\r\n", b"\xff\xfe\x00",
    ]
)  # fmt: skip
MAILISH = st.lists(st.one_of(HEADERS, st.binary(max_size=40)), max_size=30).map(b"".join)
# Around the 2026 DST changes in Chicago and London, and everything else in a few years.
INSTANTS = st.one_of(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(
        [datetime(2026, 3, 8, 8, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC),
         datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)]
    ).flatmap(lambda t: st.integers(-7200, 7200).map(lambda s: t + timedelta(seconds=s))),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2000), MAILISH))
def test_parser_never_raises(raw: bytes) -> None:
    parsed = parse(raw, secret=b"s", emergency_keywords=("down",))
    assert isinstance(parsed.full_text, str)
    assert parsed.message_id  # synthesized when missing
    names = [a.filename for a in parsed.attachments]
    assert len(names) == len(set(names))  # attachments are stored and listed by name


@settings(max_examples=300, deadline=None)
@given(INSTANTS, st.booleans(), st.sampled_from(["jane@acme.example", "x@unknown.example", "+13125550160"]))
def test_policy_never_raises_and_keeps_its_promises(at: datetime, emergency: bool, sender: str) -> None:
    email = sender if "@" in sender else None
    phone = None if email else sender
    decision, _ = decide(POLICY, email=email, phone=phone, at=at, emergency=emergency)
    assert decision.notify_at >= at
    assert decision.response_due > at
    assert CALENDAR.in_hours(CALENDAR.next_open(at))
    assert oncall_at(POLICY, at) in {t.id for t in POLICY.techs}
    due = CALENDAR.business_add(at, timedelta(hours=1))
    assert CALENDAR.business_subtract(due, timedelta(hours=1)) <= max(at, CALENDAR.next_open(at))
