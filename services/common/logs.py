"""JSON-lines logging with service, ticket and request ids; phone numbers masked at info level."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_CONTEXT_FIELDS = (
    "ticket", "request", "client", "subject", "durable", "phone", "error", "count", "url",
    "key", "port", "id", "disposition",
)  # fmt: skip
_PHONE = re.compile(r"\+\d{6,15}")


def mask_phone(value: str) -> str:
    """+15551234567 -> +1555***4567: enough to tell numbers apart, not enough to dial."""
    return _PHONE.sub(lambda m: m.group()[:5] + "***" + m.group()[-4:], value)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        line = json.dumps(entry, default=str, ensure_ascii=False)
        # Full phone numbers only at debug level.
        return line if record.levelno <= logging.DEBUG else mask_phone(line)


def setup(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The twilio SDK logs each request and response at INFO (about 11 lines per SMS), httpx one per request.
    for noisy in ("nats", "uvicorn.access", "mail.log", "asyncio", "twilio", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
