"""The mail parser against third-party corpora: reply trimming, bounce detection, zammad's parsed headers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.bus import Bus
from services.common.config import BusConfig
from services.intake_email.mail import parse, trim_reply
from tests.conftest import corpus
from tests.intake_email.stack import config, running, send, stored

pytestmark = pytest.mark.corpus

# Scores measured when this suite was written; a drop below them is a regression.
TRIMMER_FLOOR = 61  # of 64
BOUNCE_FLOOR = 575  # of 589 bounce samples classified "bounce"
AUTOMATED_FLOOR = 587  # of 589 classified anything but "request"


def test_reply_trimmer_corpus() -> None:
    root = corpus("email_reply_trimmer") / "test"
    emails = sorted((root / "emails").glob("*.txt"))
    passed = [
        f.name
        for f in emails
        if trim_reply(f.read_text()).strip() == (root / "trimmed" / f.name).read_text().strip()
    ]
    print(f"reply trimmer: {len(passed)}/{len(emails)}")
    assert len(emails) == 64
    assert len(passed) >= TRIMMER_FLOOR


def test_sisimai_bounces_and_negatives() -> None:
    root = corpus("sisimai") / "set-of-emails" / "maildir"
    bounces = Counter(
        parse(f.read_bytes(), secret=b"s").nature for f in sorted((root / "bsd").iterdir()) if f.is_file()
    )
    negatives = Counter(
        parse(f.read_bytes(), secret=b"s").nature for f in sorted((root / "not").iterdir()) if f.is_file()
    )
    total = sum(bounces.values())
    print(f"sisimai bounces: {dict(bounces)} of {total}; negatives: {dict(negatives)}")
    assert bounces["bounce"] >= BOUNCE_FLOOR
    assert total - bounces["request"] >= AUTOMATED_FLOOR
    assert negatives["bounce"] == 0


class _RubyLoader(yaml.SafeLoader):
    """Zammad's fixtures carry Ruby type tags; read them as plain mappings, sequences and scalars."""


def _plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_RubyLoader.add_multi_constructor("!ruby/", _plain)
_RubyLoader.add_constructor("!binary", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def _expected(path: Path) -> dict[str, Any] | None:
    try:
        data = yaml.load(path.read_text(errors="replace"), Loader=_RubyLoader)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


Attachments = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Known:
    """A field where Zammad's fixture and our parser differ on purpose: both values pinned, and why."""

    zammad: str | Attachments | None
    ours: str | Attachments | None
    reason: str


# Every entry is checked both ways: the fixture must still say `zammad` and we must still produce `ours`,
# so a fix on either side (or a corpus update) fails the test until the entry is removed or updated.
KNOWN_DIFFERENCES: dict[tuple[str, str], Known] = {
    ("mail071", "sender"): Known(
        "power quadrant system@example.com",
        '"power quadrant system"@example.com',
        "<power quadrant system@example.com> has spaces in its local part; the quoted form is the only "
        "valid spelling of that mailbox (RFC 5322 3.4.1), Zammad's cannot be replied to",
    ),
    ("mail076", "sender"): Known(
        '"millions lottery spain transfer"@example.com>',
        '"millions lottery spain transfer"@example.com',
        'the trailing ">" of `"..."@example.com>` is a stray bracket, not part of the address',
    ),
    ("mail087", "sender"): Known(
        "test test@example.com",
        "test@example.com",
        '"From: Test test@example.com" is a name and an address that lost their brackets; Zammad keeps '
        "the whole value as the address",
    ),
    ("mail077", "subject"): Known(
        " Personaländerung",
        "Personaländerung",
        "the space is inside the encoded word; we trim and unfold every header, and a leading space "
        "means nothing in a ticket title",
    ),
    ("mail089", "subject"): Known(
        "Incident INC678439 -- zugewiesen an EXT-XXXINIS",
        "Incident INC678439: -- zugewiesen an EXT-XXXINIS",
        "the raw Subject has the colon and no parser rule removes it; we keep what was sent",
    ),
    ("mail071", "attachments"): Known(
        (("file", "multipart/mixed"),),
        (),
        "a multipart whose boundary never appears and that holds nothing: there is nothing to attach "
        "(the raw message is stored anyway)",
    ),
    ("mail105", "attachments"): Known(
        (("file", "multipart/mixed"),),
        (),
        "a multipart whose boundary never appears but whose content is plain text: it becomes the body "
        "instead of an opaque multipart/mixed file",
    ),
    ("mail087", "attachments"): Known(
        (("fax_1234.pdf", "application/pdf"), ("file", None)),
        (("fax_1234.pdf", "application/pdf"),),
        "the unnamed text part without Content-Disposition is the message body (the fax notice); Zammad "
        "only takes a body from the first part",
    ),
}


def _pinned(
    expected: dict[str, Any], sender: str | None, subject: str, attachments: Sequence[tuple[str, str | None]]
) -> list[tuple[str, Any, Any]]:
    """(field, Zammad's value, ours) for the fields this fixture pins; Zammad's own spec compares the
    fixture as a subset of the parse, so an absent key (mail050/077 pin only the subject) is no claim."""
    compared: list[tuple[str, Any, Any]] = []
    if "from_email" in expected:
        compared.append(("sender", (expected["from_email"] or "").lower() or None, sender))
    if "subject" in expected:
        compared.append(("subject", expected["subject"] or "", subject))
    if "attachments" in expected:
        # Zammad stores an HTML body as an attachment named message.html; we keep it as text.
        listed = [a for a in expected["attachments"] or [] if isinstance(a, dict)]
        theirs = sorted(
            (str(a.get("filename", "")), (a.get("preferences") or {}).get("Mime-Type"))
            for a in listed
            if a.get("filename") != "message.html"
        )
        compared.append(("attachments", tuple(theirs), tuple(sorted(attachments))))
    return compared


class Tally:
    """Counts matches, documented differences and anything unexplained, per field."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.unexplained: list[str] = []
        self.seen: set[tuple[str, str]] = set()
        self.mails = 0

    def add(self, box: Path, compared: list[tuple[str, Any, Any]]) -> None:
        self.mails += 1
        for name, theirs, ours in compared:
            key = (box.stem.split("-")[0], name)
            self.seen.add(key)
            self.counts[name, "pinned"] += 1
            known = KNOWN_DIFFERENCES.get(key)
            if known is None and theirs == ours:
                self.counts[name, "match"] += 1
            elif known is not None and (known.zammad, known.ours) == (theirs, ours) and theirs != ours:
                self.counts[name, "documented"] += 1
            else:
                documented = f" (documented: {known.zammad!r} vs {known.ours!r})" if known else ""
                self.unexplained.append(f"{box.name} {name}: zammad {theirs!r}, ours {ours!r}{documented}")

    def summary(self) -> str:
        return "; ".join(
            f"{name} {self.counts[name, 'match']}/{self.counts[name, 'pinned']} "
            f"(+{self.counts[name, 'documented']} documented differences)"
            for name in ("sender", "subject", "attachments")
        )

    def check(self, skipped: frozenset[str] = frozenset()) -> None:
        assert self.mails >= 30
        assert not self.unexplained, "\n".join(self.unexplained)
        stale = {key for key in set(KNOWN_DIFFERENCES) - self.seen if key[0] not in skipped}
        assert not stale, "documented differences for mails no longer compared"


def zammad_mails() -> list[tuple[Path, dict[str, Any]]]:
    root = corpus("zammad") / "test" / "data" / "mail"
    found = []
    for box in sorted(root.glob("*.box")):
        expected = _expected(box.with_suffix(".yml")) if box.with_suffix(".yml").exists() else None
        if expected is not None:
            found.append((box, expected))
    return found


def test_zammad_sender_subject_and_attachments() -> None:
    tally = Tally()
    for box, expected in zammad_mails():
        parsed = parse(box.read_bytes(), secret=b"s")
        found = [(a.filename, a.content_type) for a in parsed.attachments]
        tally.add(box, _pinned(expected, parsed.sender_email, parsed.subject, found))
    print(f"zammad: {tally.mails} mails; {tally.summary()}")
    tally.check()


async def test_zammad_over_smtp_is_accepted_or_refused_clearly(bus: Bus, bus_config: BusConfig) -> None:
    """Every mail through the real SMTP socket: a 250 naming the request, whose fields match, or a 5xx."""
    mails = zammad_mails()
    tally = Tally()
    refused: list[str] = []
    first: dict[str, str] = {}  # request id -> the mail that created it
    duplicates: dict[str, str] = {}  # a later mail -> the earlier one it repeats
    cfg = config(bus_config, rate_per_minute=100_000)
    async with running(cfg):
        for box, expected in mails:
            code, reply = (await send(cfg.port, box.read_bytes()))[-1]
            if code >= 500:
                refused.append(f"{box.name}: {code} {reply.decode()}")
                continue
            assert code == 250, f"{box.name}: {code} {reply!r}"
            request_id = reply.decode().rsplit(" ", 1)[-1]
            if request_id in first:
                # Same Message-ID and sender as an earlier mail: by our rule the same message, so
                # it is acknowledged and creates nothing new (the corpus reuses a few Message-IDs).
                duplicates[box.stem.split("-")[0]] = first[request_id]
                continue
            first[request_id] = box.stem.split("-")[0]
            request = next(r for r in await stored(bus) if r.id == request_id)
            found = [(a.filename, a.content_type) for a in request.attachments]
            tally.add(box, _pinned(expected, request.sender.email, request.subject, found))
    print(
        f"zammad over SMTP: {len(mails)} sent, {tally.mails + len(duplicates)} accepted "
        f"({len(duplicates)} as repeats of an earlier mail: {duplicates}), {len(refused)} refused"
    )
    print(f"  {tally.summary()}")
    assert tally.mails + len(duplicates) + len(refused) == len(mails)
    assert len(await stored(bus)) == tally.mails  # one request per distinct message, none per repeat
    tally.check(skipped=frozenset(duplicates))
