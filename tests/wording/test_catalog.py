"""catalog: the shipped templates render every sample; overrides win file by file; a bad one refuses start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.wording import catalog
from services.wording.catalog import DEFAULTS, Wording, WordingError
from services.wording.samples import CHICAGO, NOW, samples


def test_every_shipped_template_renders_every_sample() -> None:
    words = catalog.load()
    names = words.names()
    assert {"sms/client_ack", "email/client_ack", "voice/greeting", "sms/tech_dispatch"} <= set(names)
    assert words.check(samples()) == sum(len(samples()[name]) for name in names)


def test_override_wins_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "client_eta.txt").write_text("{{ number }}: {{ tech }} arrives {{ eta|by }}. Cheers!")
    words = catalog.load(tmp_path)
    values = samples()["sms/client_eta"][0]
    assert words.render("sms/client_eta", **values).endswith("arrives today by 7:58 AM. Cheers!")
    # Everything not overridden is the shipped default.
    assert words.render("sms/client_reopened", **samples()["sms/client_reopened"][0]).startswith(
        "SR-1003: we"
    )


def test_an_override_with_a_misspelt_value_refuses_the_start_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    bad = tmp_path / "email" / "client_ack.txt"
    bad.write_text("Hello {{ frist_name }}")
    with pytest.raises(WordingError) as caught:
        catalog.load(tmp_path)
    assert str(caught.value).startswith(f"{bad}: ")
    assert "frist_name" in str(caught.value)


def test_a_syntax_error_or_an_unknown_file_refuses_the_start(tmp_path: Path) -> None:
    (tmp_path / "voice").mkdir()
    broken = tmp_path / "voice" / "greeting.txt"
    broken.write_text("{% if name %}Hello")
    with pytest.raises(WordingError, match=re.escape(str(broken))):
        catalog.load(tmp_path)
    broken.unlink()
    stray = tmp_path / "voice" / "greting.txt"
    stray.write_text("Hi")
    with pytest.raises(WordingError, match=re.escape(f"{stray}: no message of this name")):
        catalog.load(tmp_path)
    with pytest.raises(WordingError, match="not a folder"):
        Wording(tmp_path / "missing")


def test_text_is_not_html_escaped_and_python_internals_are_out_of_reach(tmp_path: Path) -> None:
    words = Wording()
    values = {**samples()["sms/tech_follow_up"][0], "text": "<b>R&D</b> 'quoted'"}
    assert "<b>R&D</b> 'quoted'" in words.render("sms/tech_follow_up", **values)
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "tech_follow_up.txt").write_text("{{ number.__class__.__mro__ }}")
    with pytest.raises(WordingError, match=r"tech_follow_up\.txt"):
        Wording(tmp_path).render("sms/tech_follow_up", **samples()["sms/tech_follow_up"][0])


def test_defaults_folder_holds_one_file_per_message() -> None:
    files = sorted(p.relative_to(DEFAULTS).as_posix() for p in DEFAULTS.rglob("*.txt"))
    assert all(f.split("/")[0] in catalog.CHANNELS for f in files)
    assert (
        Wording().render("voice/goodbye", zone=CHICAGO, now=NOW)
        == "Thank you. We have your message. Goodbye."
    )
