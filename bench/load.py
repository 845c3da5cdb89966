"""Load generators: an aiosmtplib loop for SMTP and an httpx loop for signed Twilio webhooks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib
import httpx
from twilio.request_validator import RequestValidator


def authenticated_email(sender: str, subject: str, message_id: str, text: str) -> EmailMessage:
    """A client's mail as the upstream relay hands it on: DMARC passed for acme.example, to support."""
    msg = EmailMessage()
    msg["Authentication-Results"] = "frontdesk.test; dmarc=pass header.from=acme.example"
    msg["From"] = sender
    msg["To"] = "support@frontdesk.test"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content(text)
    return msg


def message_mix(n: int) -> list[bytes]:
    """A few KB of text each; every fourth carries a small attachment."""
    out = []
    for i in range(n):
        msg = authenticated_email(
            f"Client {i % 7} <user{i % 7}@acme.example>",
            f"Printer on floor {i % 5} jammed again ({i})",
            f"<bench-{i}-{time.time_ns()}@acme.example>",
            ("The printer shows error 50.4 after every third page. " * 40) + f"\nrequest {i}\n",
        )
        if i % 4 == 0:
            msg.add_attachment(bytes(range(256)) * 16, maintype="application", subtype="octet-stream",
                               filename=f"log-{i}.bin")  # fmt: skip
        out.append(msg.as_bytes())
    return out


async def run_pool(
    total: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Run `one(i)` for i < total with `concurrency` workers; returns (seconds, per-call latencies)."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


async def smtp_load(port: int, messages: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """Send every message over a fresh SMTP session; returns (seconds, latencies, failures)."""
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        try:
            await aiosmtplib.send(messages[i], sender=f"user{i % 7}@acme.example",
                                  recipients=["support@frontdesk.test"], hostname="127.0.0.1", port=port,
                                  timeout=30)  # fmt: skip
        except aiosmtplib.SMTPException:
            failures += 1

    seconds, latencies = await run_pool(len(messages), concurrency, one)
    return seconds, latencies, failures


async def webhook_load(
    base: str, token: str, total: int, concurrency: int, sign_base: str | None = None
) -> tuple[float, list[float], int]:
    validator = RequestValidator(token)
    failures = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def one(i: int) -> None:
            nonlocal failures
            params = {
                "MessageSid": f"SMbench{i:026d}{int(time.time())}",
                "AccountSid": "AC00000000000000000000000000000000",
                "From": "+13125550999",
                "To": "+13125550100",
                "Body": f"Printer down on floor {i % 5}",
                "NumMedia": "0",
            }
            url = f"{sign_base or base}/twilio/sms"
            headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
            rsp = await client.post("/twilio/sms", data=params, headers=headers)
            if rsp.status_code != 200:
                failures += 1

        seconds, latencies = await run_pool(total, concurrency, one)
    return seconds, latencies, failures


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
