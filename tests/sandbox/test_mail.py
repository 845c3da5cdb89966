"""The SMTP sink records mail sent over a real socket."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import httpx

from services.sandbox.app import Sandbox


async def test_sink_records_a_relayed_mail() -> None:
    async with Sandbox.on_free_ports() as sandbox:
        mail = EmailMessage()
        mail["From"] = "support@frontdesk.test"
        mail["To"] = "client@example.com"
        mail["Subject"] = "Ticket FD-1 received"
        mail.set_content("We got your request.\n")
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=sandbox.smtp_port, timeout=5)
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            emails = (await http.get("/api/emails")).json()
            assert len(emails) == 1
            assert emails[0]["from"] == "support@frontdesk.test"
            assert emails[0]["to"] == ["client@example.com"]
            assert emails[0]["subject"] == "Ticket FD-1 received"
            assert emails[0]["body"] == "We got your request.\n"
            assert emails[0]["headers"]["Subject"] == "Ticket FD-1 received"
            page = (await http.get("/")).text
            assert "Ticket FD-1 received" in page and 'http-equiv="refresh"' in page
            assert (await http.delete("/api/emails")).status_code == 204
            assert (await http.get("/api/emails")).json() == []
