"""The transport seam: SMS through the Twilio SDK, email through the SMTP relay, Twilio's message list."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import aiosmtplib
import msgspec
from twilio.rest import Client as TwilioClient

from services.common.clock import Clock
from services.contracts import SendEmail, SendSms, threading
from services.notifier.config import NotifierConfig
from services.wording import sanitize

# How far back to look in Twilio's message list for a send whose outcome we lost; covers clock
# skew between us and Twilio and the time the lost request was in flight.
RECONCILE_WINDOW = timedelta(minutes=2)


class Found(msgspec.Struct, frozen=True):
    sid: str
    status: str
    error_code: int


class Transport:
    """Sends one message and says how to find it; knows nothing of claims, retries or fallbacks."""

    def __init__(self, cfg: NotifierConfig, clock: Clock, twilio: TwilioClient) -> None:
        self.cfg = cfg
        self.clock = clock
        self.twilio = twilio
        self.secret = cfg.thread_secret.reveal().encode()
        self.sent_sms = 0
        self.sent_email = 0

    async def find_sent(self, message: SendSms, since: datetime) -> Found | None:
        """This exact SMS if Twilio already has it (same recipient, sender and body), with its status."""
        tw = self.cfg.twilio
        body = sanitize.sms(message.body)
        after = since - RECONCILE_WINDOW
        # No DateSent filter: a message still queued at Twilio has no sent date yet. Twilio lists
        # newest first; the window is applied to date_created here.
        options: dict[str, Any] = {"to": message.to, "limit": 50}
        if not tw.messaging_service_sid:
            options["from_"] = tw.from_
        for sent in await self.twilio.messages.list_async(**options):
            if sent.date_created is not None and sent.date_created < after:
                break
            same_sender = (
                sent.messaging_service_sid == tw.messaging_service_sid
                if tw.messaging_service_sid
                else sent.from_ == tw.from_
            )
            if same_sender and sent.body == body and sent.direction != "inbound":
                return Found(str(sent.sid), str(sent.status or ""), int(sent.error_code or 0))
        return None

    async def sms(self, message: SendSms) -> str:
        tw = self.cfg.twilio
        options: dict[str, str] = {"to": message.to, "body": sanitize.sms(message.body)}
        if self.cfg.status_callback:
            # Our key rides in the callback URL (Twilio signs it with the URL): the report comes
            # back through intake_voice and finds its delivery record without a sid index.
            glue = "&" if "?" in self.cfg.status_callback else "?"
            options["status_callback"] = f"{self.cfg.status_callback}{glue}key={quote(message.key, safe='')}"
        if tw.messaging_service_sid:
            options["messaging_service_sid"] = tw.messaging_service_sid
        else:
            options["from_"] = tw.from_
        created = await self.twilio.messages.create_async(**options)
        self.sent_sms += 1
        return str(created.sid)

    async def email(self, message: SendEmail) -> str:
        mail = EmailMessage()
        subject = sanitize.header(message.subject, 250)
        if message.ticket_number:
            token = threading.subject_token(message.ticket_number, self.secret)
            if token not in subject:
                subject = f"{subject} {token}"
        # The nonce comes from the key so a retried send carries the same Message-ID.
        nonce = hashlib.sha256(message.key.encode()).hexdigest()[:16]
        number = message.ticket_number or "SR-0"
        msg_id = threading.message_id(number, nonce, self.cfg.mail_domain, self.secret)
        mail["From"] = self.cfg.mail_from
        mail["To"] = sanitize.header(message.to, 320)
        mail["Subject"] = subject
        mail["Message-ID"] = msg_id
        mail["Date"] = format_datetime(self.clock.now())
        # RFC 3834: mark ourselves automatic so well-behaved responders do not answer us.
        mail["Auto-Submitted"] = "auto-replied"
        if message.in_reply_to:
            mail["In-Reply-To"] = sanitize.header(message.in_reply_to, 500)
        refs = [*message.references, *([message.in_reply_to] if message.in_reply_to else [])]
        if refs:
            mail["References"] = sanitize.header(" ".join(dict.fromkeys(refs)), 2000)
        mail.set_content(sanitize.strip_controls(message.body))
        # Our own name for EHLO: left unset, aiosmtplib asks socket.getfqdn in a worker thread for every
        # message (a thread hop and possibly a reverse DNS lookup each time).
        await aiosmtplib.send(
            mail,
            hostname=self.cfg.relay_host,
            port=self.cfg.relay_port,
            timeout=10,
            local_hostname=self.cfg.mail_domain,
        )
        self.sent_email += 1
        return msg_id
