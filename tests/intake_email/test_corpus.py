"""parse.py against third-party corpora: reply trimming, bounce detection, zammad's parsed headers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.intake_email.parse import parse, trim_reply
from tests.conftest import corpus

pytestmark = pytest.mark.corpus

# Scores measured when this suite was written; a drop below them is a regression.
TRIMMER_FLOOR = 61  # of 64
BOUNCE_FLOOR = 566  # of 589 bounce samples classified "bounce"
AUTOMATED_FLOOR = 575  # of 589 classified anything but "request"


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


def test_zammad_from_subject_and_attachment_names() -> None:
    root = corpus("zammad") / "test" / "data" / "mail"
    counts: Counter[str] = Counter()
    for box in sorted(root.glob("*.box")):
        expected = _expected(box.with_suffix(".yml")) if box.with_suffix(".yml").exists() else None
        if expected is None:
            continue
        counts["total"] += 1
        parsed = parse(box.read_bytes(), secret=b"s")
        if parsed.sender_email == ((expected.get("from_email") or "").lower() or None):
            counts["from_email"] += 1
        if parsed.subject == (expected.get("subject") or ""):
            counts["subject"] += 1
        # Zammad stores an HTML body as an attachment named message.html; we keep it as text.
        names = sorted(
            a.get("filename", "")
            for a in expected.get("attachments") or []
            if isinstance(a, dict) and a.get("filename") != "message.html"
        )
        if sorted(a.filename for a in parsed.attachments) == names:
            counts["attachments"] += 1
    print(f"zammad: {dict(counts)}")
    assert counts["total"] >= 30
    assert counts["from_email"] >= 31 and counts["subject"] >= 33 and counts["attachments"] >= 32
