"""A readable record of every message a story sent, step by step, for the golden transcript."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.policy.model import Policy
from services.sandbox.conversation import directory
from services.wording import times

# Twilio ids are random per run (recording, call and message sids): shown as their prefix only.
_SID = re.compile(r"\b(RE|CA|SM|MM|AC)[0-9a-fA-F]{32}\b")
_SAY = re.compile(r"<Say[^>]*>(.*?)</Say>", re.DOTALL)


class Transcript:
    def __init__(self, policy: Policy) -> None:
        self.names = directory(policy)  # the sandbox page's names beside numbers
        self.zone = ZoneInfo(policy.desk.timezone)
        self.lines: list[str] = []
        self.sms_seen = 0
        self.mail_seen = 0

    def who(self, reach: str) -> str:
        name = self.names.get(reach)
        return f"{name} <{reach}>" if name else reach

    def heading(self, title: str, at: datetime) -> None:
        self.lines += ["", f"## {times.stamp(at, self.zone)}: {title}"]

    def heard(self, caller: str, exchanges: list[dict[str, Any]]) -> None:
        """What the caller heard and did, from the TwiML of each webhook exchange."""
        self.lines.append(f"CALL from {self.who(caller)}")
        for exchange in exchanges:
            pressed = exchange["params"].get("Digits")
            if pressed:
                self.lines.append(f"  caller presses {pressed}")
            for said in _SAY.findall(exchange["twiml"]):
                self.lines.append("  heard: " + _SID.sub(r"\1...", said))
            if "<Record" in exchange["twiml"]:
                self.lines.append("  caller leaves a voicemail")
            if "<Dial" in exchange["twiml"]:
                self.lines.append("  the call rings the on-call technician")

    def sent(self, sms: list[dict[str, Any]], emails: list[dict[str, Any]]) -> None:
        """Append what was sent since the last call; simultaneous sends are sorted by recipient and text."""
        new_sms, self.sms_seen = sms[self.sms_seen :], len(sms)
        new_mail, self.mail_seen = emails[self.mail_seen :], len(emails)
        for message in sorted(new_sms, key=lambda m: (m["to"], m["body"])):
            self.lines.append(f"SMS to {self.who(message['to'])}:")
            self.lines += [f"  | {line}" for line in _SID.sub(r"\1...", message["body"]).splitlines()]
        for mail in sorted(new_mail, key=lambda m: (m["to"], m["subject"])):
            to = ", ".join(self.who(address) for address in mail["to"])
            self.lines.append(f"EMAIL to {to}: {mail['subject']}")
            self.lines += [f"  | {line}".rstrip() for line in mail["body"].strip().splitlines()]
        if not new_sms and not new_mail:
            self.lines.append("(nothing sent)")

    def text(self) -> str:
        return "\n".join(self.lines).strip() + "\n"
