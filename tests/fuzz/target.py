"""The fuzzed property: any bytes an SMTP client sends become a publishable ServiceRequest, never an error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
from aiosmtpd.smtp import Envelope
from nats.aio.client import Client as NatsClient

from services.common.bus import Bus
from services.common.clock import ManualClock
from services.contracts.requests import Attachment, SenderAuth
from services.contracts.threading import message_id, subject_token
from services.intake_email.app import Intake
from services.intake_email.config import SmtpConfig
from services.intake_email.mail import parse
from tests.conftest import CORPORA
from tests.intake_email.mail.samples import ENCODED

SECRET = b"fuzz-secret"
# Bus.publish encodes with msgspec JSON, which refuses lone surrogates: a parser that leaks one into a
# string field makes every delivery attempt answer 451, so the mail is retried until the sender gives up.
_ENCODER = msgspec.json.Encoder()


def _intake() -> Intake:
    # Only Intake.build is used: the Bus is real but never connected, because nothing is published.
    cfg = SmtpConfig()
    return Intake(cfg, Bus(NatsClient(), cfg.bus), ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC)))


_INTAKE = _intake()


def publishable(raw: bytes) -> bytes:
    """Parse raw bytes as intake_email does on DATA and return the JSON it would publish."""
    parsed = parse(raw, secret=SECRET)
    envelope = Envelope()
    envelope.mail_from = "sender@example.com"
    envelope.rcpt_tos = ["support@frontdesk.test"]
    # Object names stand in for the object-store upload that app.accept does before build.
    attachments = tuple(
        Attachment(
            filename=a.filename,
            content_type=a.content_type,
            size=len(a.data),
            object_name=f"att-{i}",
            content_id=a.content_id,
            inline=a.inline,
        )
        for i, a in enumerate(parsed.attachments)
    )
    request = _INTAKE.build(parsed, envelope, "raw-fuzz", attachments, auth=SenderAuth())
    return _ENCODER.encode(request)


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def seeds() -> dict[str, bytes]:
    """Small messages that reach each branch of the mail parser, plus zammad's broken mails when present."""
    ours = message_id("SR-1042", "abc123", "frontdesk.test", SECRET)
    found = {
        "plain": _crlf(
            "From: Ann <ann@example.com>\nSubject: printer down\nMessage-ID: <p1@example.com>\n"
            "Date: Mon, 5 Jan 2026 09:00:00 +0100\n\nIt broke again.\n\nSent from my iPhone\n"
        ),
        "reply": _crlf(
            f"From: a@b.c\nSubject: Re: {subject_token('SR-1042', SECRET)} still broken\n"
            f"In-Reply-To: {ours}\nReferences: <x@y> {ours}\n\nYes.\n\n"
            "On Mon, 5 Jan 2026, Bob <b@x> wrote:\n> earlier\n> text\n"
        ),
        "outlook": _crlf(
            "From: a@b.c\nSubject: AW: Frage\n\nJa.\n\n-----Original Message-----\n"
            "From: Bob\nSent: Monday\nTo: Alice\nSubject: Q\n\nold\n"
        ),
        "encoded": ENCODED,
        "html": (
            b"From: a@b.c\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=B\n\n"
            b"--B\nContent-Type: text/html; charset=windows-1252\n"
            b"Content-Transfer-Encoding: quoted-printable\n\n"
            b'<style>p{}</style><p>Price =80 5&nbsp;now</p><img src=3D"cid:i1">\n'
            b'--B\nContent-Type: image/png; name="=?utf-8?b?YmlsZC5wbmc=?="\nContent-ID: <i1>\n'
            b"Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--B--\n"
        ),
        "charset": b"From: a@b.c\nSubject: x\nContent-Type: text/plain; charset=ks_c_5601-1987\n\n"
        + "안녕".encode("cp949")
        + b"\n",
        "bounce": (
            f"From: MAILER-DAEMON@mx.example.com\nReturn-Path: <>\nSubject: Undelivered Mail\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=R\n\n"
            f"--R\nContent-Type: text/plain\n\nSorry.\n--R\nContent-Type: message/delivery-status\n\n"
            f"Final-Recipient: rfc822; x@y\nStatus: 5.1.1\n--R\nContent-Type: message/rfc822\n\n"
            f"From: support@frontdesk.test\nMessage-ID: {ours}\nSubject: SR-1042\n\nbody\n"
            f"--R\nContent-Type: text/rfc822-headers\n\nMessage-ID: {ours}\n--R--\n"
        ).encode(),
        "ooo": _crlf(
            "From: a@b.c\nSubject: Automatic reply: vacation\nAuto-Submitted: auto-replied\n"
            "Precedence: bulk\nX-Autoreply: yes\n\nI am away.\n"
        ),
        "broken": b'From: "Bro, ken <bad@@x>\nSender: s@example.com\nSubject: =?x-unknown?B?////?=\n'
        b"Date: not a date\n\n\x00\xff garbage\n",
    }
    zammad = CORPORA / "zammad" / "test" / "data" / "mail"
    if zammad.is_dir():  # third-party test data is read in place, never copied into the repository
        found.update({f"zammad-{p.stem}": p.read_bytes() for p in sorted(zammad.glob("*.box"))})
    return found


def write_seeds(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    items = seeds()
    for name, data in items.items():
        (folder / name).write_bytes(data)
    return len(items)
