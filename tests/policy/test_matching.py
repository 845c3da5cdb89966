"""The shared matchers: emergency keywords as whole words, contacts by exact email or phone."""

from __future__ import annotations

from services.policy.matching import emergency_hits, first_emergency, matching_contact
from services.policy.model import Contact

KEYWORDS = ("down", "not working", "urgent")


def test_keywords_match_whole_words_in_any_case() -> None:
    assert emergency_hits("Server DOWN and it is Urgent!", KEYWORDS) == ("down", "urgent")
    assert emergency_hits("the printer is not working", KEYWORDS) == ("not working",)
    assert emergency_hits("download the update, urgently", KEYWORDS) == ()
    assert first_emergency("urgent: server down", KEYWORDS) == "down"  # keyword order, not text order
    assert first_emergency("all fine", KEYWORDS) is None


def test_keywords_are_literal_text_not_patterns() -> None:
    assert emergency_hits("a.b", ("a.b",)) == ("a.b",)
    assert emergency_hits("axb", ("a.b",)) == ()


JANE = Contact(name="Jane", email="Jane@Acme.example", phone="+15550100")
BOB = Contact(name="Bob", phone="+15550199")


def test_contacts_match_by_exact_email_or_phone() -> None:
    assert matching_contact([BOB, JANE], email=" jane@acme.EXAMPLE", phone=None) is JANE
    assert matching_contact([JANE, BOB], email=None, phone="+15550199") is BOB
    assert matching_contact([JANE, BOB], email="someone@acme.example", phone="+1555") is None
    assert matching_contact([BOB], email="", phone=None) is None  # no address matches no contact
