"""The normalized ServiceRequest every intake publishes, whatever the channel."""

from __future__ import annotations

import base64
import binascii
import quopri
from datetime import datetime
from typing import Literal

import msgspec

Channel = Literal["email", "voice", "sms"]
Priority = Literal["normal", "emergency"]
# What kind of message this is. Only "request" may open a ticket; the others are recorded
# on the timeline of a ticket they thread to (a bounce, an out-of-office) and never auto-answered.
Nature = Literal["request", "auto_reply", "out_of_office", "bounce"]


class Sender(msgspec.Struct, frozen=True, kw_only=True):
    email: str | None = None
    phone: str | None = None  # E.164
    name: str | None = None


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    content_type: str
    size: int
    # Key in the raw object store: the attachment itself, or the raw original holding it. Empty: the
    # span lies in the request's own `raw` (a small mail travels whole inside its request).
    object_name: str
    content_id: str | None = None
    inline: bool = False
    # Set when object_name is the raw original: the attachment's body as it lies there, still in its
    # Content-Transfer-Encoding, so its bytes are stored once. Read it with attachment_bytes.
    offset: int | None = None
    length: int = 0
    transfer_encoding: str = ""


def decode_transfer(encoding: str, data: bytes) -> bytes:
    """A MIME body in Content-Transfer-Encoding `encoding` as bytes (7bit, 8bit, binary: as is)."""
    kind = encoding.strip().lower()
    if kind == "base64":
        compact = b"".join(data.split())
        try:
            return base64.b64decode(compact + b"=" * (-len(compact) % 4))
        except (binascii.Error, ValueError):
            return binascii.a2b_base64(compact)  # lenient: skips what is not base64
    if kind == "quoted-printable":
        return quopri.decodestring(data)
    return data


def attachment_bytes(attachment: Attachment, stored: bytes) -> bytes:
    """The attachment's bytes, given what holds them: the object named by attachment.object_name, or
    the request's `raw` when object_name is empty (see held_in_request)."""
    if attachment.offset is None:
        return stored
    span = stored[attachment.offset : attachment.offset + attachment.length]
    return decode_transfer(attachment.transfer_encoding, span)


class ThreadKeys(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that can tie a message to an existing ticket; the router decides."""

    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    # Ticket number found in the subject or an SMS/IVR prompt, e.g. "SR-1042".
    ticket_token: str | None = None
    # True only when the token carried a valid HMAC signature we issued.
    token_signed: bool = False
    # True when a reference is one of our own signed Message-IDs.
    references_ours: bool = False


# "authenticated": the sender's domain vouched for the From address (aligned SPF or DKIM, or the
# organisation's own relay said dmarc=pass). "unauthenticated": it did not, so the address is a claim.
# "unchecked": the channel has no sender authentication (a caller id) or checks are off (development).
AuthVerdict = Literal["authenticated", "unauthenticated", "unchecked"]


class SenderAuth(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the sender is who the message says; the router never trusts an unauthenticated one."""

    verdict: AuthVerdict = "unchecked"
    method: str = ""  # "dmarc", "upstream", "off"
    reason: str = ""  # why, in words, e.g. "dmarc=fail (no aligned SPF or DKIM pass)"

    @property
    def trusted(self) -> bool:
        return self.verdict != "unauthenticated"


class ServiceRequest(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    id: str  # stable de-duplication id (also the Nats-Msg-Id)
    channel: Channel
    received_at: datetime  # UTC
    sender: Sender
    recipient: str = ""  # support address or number that was contacted
    subject: str = ""
    body: str = ""  # what the client wrote now: quotes and signatures removed
    full_text: str = ""  # the whole readable text
    attachments: tuple[Attachment, ...] = ()
    thread: ThreadKeys = ThreadKeys()
    priority_hint: Priority = "normal"
    hints: tuple[str, ...] = ()  # why: "keyword:outage", "ivr:1", ...
    billable_accepted: bool = False  # caller accepted the tier's billable after-hours offer
    nature: Nature = "request"
    raw_ref: str | None = None  # object-store name of the raw original, when it is not in `raw`
    language: str | None = None
    sender_auth: SenderAuth = SenderAuth()
    # The whole readable text, when body/full_text above are bounded excerpts of a large message.
    text_ref: str | None = None
    # The raw original itself, when it is small enough to travel inside the request (then raw_ref is
    # None): one publish instead of an object-store round trip per mail. Base64 in JSON.
    raw: bytes | None = None


def held_in_request(request: ServiceRequest, attachment: Attachment) -> bytes | None:
    """The bytes holding `attachment` when the request carries them (its inline `raw`), else None: then
    read the object named by attachment.object_name. Either way, attachment_bytes decodes the span."""
    if not attachment.object_name and attachment.offset is not None:
        return request.raw
    return None
