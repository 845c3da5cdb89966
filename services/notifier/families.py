"""The notifier's own contact-state families (services.state.contacts has the shared ones)."""

from __future__ import annotations

from services.contracts import subjects as s
from services.notifier.compose import Folded
from services.notifier.replies import HelpCounter
from services.notifier.suppression import RateWindow
from services.state.records import Family

FOLD = Family("fold", s.KV_CONTACTS, Folded)  # by ticket: what the client added while it was queued
RATE = Family("rate", s.KV_WINDOWS, RateWindow)  # by recipient (lower case): recent system messages
HELP = Family("help", s.KV_WINDOWS, HelpCounter)  # by phone: help replies in a row
