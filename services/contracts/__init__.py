"""Wire contracts: everything that crosses a NATS subject, plus subject and stream names.

This package imports only the standard library and msgspec, so every service can depend on it.
"""

from services.contracts.commands import (
    AcknowledgeClient,
    Command,
    DispatchTicket,
    RelayClientMessage,
    SendEmail,
    SendSms,
)
from services.contracts.events import (
    DeliveryFailed,
    OptOutChanged,
    RequestAmended,
    SmsStatusReported,
    TechReplied,
    TimelineEntry,
)
from services.contracts.requests import Attachment, Sender, ServiceRequest, ThreadKeys
from services.contracts.tickets import Decision, Ticket

__all__ = [
    "AcknowledgeClient",
    "Attachment",
    "Command",
    "Decision",
    "DeliveryFailed",
    "DispatchTicket",
    "OptOutChanged",
    "RelayClientMessage",
    "RequestAmended",
    "SendEmail",
    "SendSms",
    "Sender",
    "ServiceRequest",
    "SmsStatusReported",
    "TechReplied",
    "ThreadKeys",
    "Ticket",
    "TimelineEntry",
]
