"""How test mail proves its sender: the Authentication-Results header a trusted relay would add."""

from __future__ import annotations

AUTHSERV_ID = "frontdesk.test"  # the dev and test setting of FRONTDESK_SMTP_AUTHSERV_ID


def passed(address: str, authserv_id: str = AUTHSERV_ID) -> str:
    """The header value saying our relay found an aligned DMARC pass for `address`'s domain."""
    domain = address.strip().strip("<>").rsplit("@", 1)[-1].lower()
    return f"{authserv_id}; dmarc=pass header.from={domain}"
