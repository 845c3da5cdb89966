"""The mail parser: raw RFC 5322 bytes to a ParsedEmail, in modules by concern."""

from services.intake_email.mail.message import DEFAULT_EMERGENCY, ParsedEmail, parse
from services.intake_email.mail.mime import ParsedAttachment
from services.intake_email.mail.quotes import trim_reply

__all__ = ["DEFAULT_EMERGENCY", "ParsedAttachment", "ParsedEmail", "parse", "trim_reply"]
