"""The console in a real browser (headless Chromium): the whole stack, an email, a reassignment.

Screenshots of every page go to .data/screenshots/ (look at them: they are how the pages look).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from services.common.bus import Bus
from services.common.config import BusConfig
from services.console.app import main
from tests.console.conftest import USERS, config
from tests.e2e import stack as e2e
from tests.e2e.stack import (
    BOB,
    CAROL,
    MON_2100,
    TUE_0800,
    Stack,
    emails_for,
    sms_for,
)
from tests.support import serving, until

SHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
JANE_EMAIL = "jane@acme.example"
RAJ_EMAIL = "raj@acme.example"

stack = e2e.stack  # the whole stack in-process (nats-server, sandbox, intakes, router, notifier)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"
)


async def story(stack: Stack) -> None:
    """The seeded story: premium emergency at 9 pm, bob paged, escalation to carol, DELAY, DONE."""
    stack.clock.set(MON_2100)
    await stack.mail(
        JANE_EMAIL, "Server down at the plant", "The MES server is offline; the line is stopped."
    )
    await sms_for(stack, BOB)
    await stack.settled()
    stack.clock.advance(timedelta(minutes=10, seconds=1))
    await sms_for(stack, CAROL)
    await stack.settled()
    stack.clock.advance(timedelta(minutes=5))
    await stack.text(CAROL, "DELAY 30 waiting for VPN access")
    await emails_for(stack, JANE_EMAIL, 2)
    await stack.settled()
    stack.clock.advance(timedelta(minutes=40))
    await stack.text(CAROL, "DONE")
    await emails_for(stack, JANE_EMAIL, 3)
    await stack.settled()


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def console_url(stack: Stack, bus_config: BusConfig, tmp_path: Path) -> AsyncIterator[str]:
    cfg = config(tmp_path, bus_config)
    started = asyncio.Event()
    async with serving(main, cfg, clock=stack.clock, started=started):
        await asyncio.wait_for(started.wait(), 15)
        yield f"http://127.0.0.1:{cfg.port}"


async def test_sign_in_see_an_email_arrive_and_reassign_it(
    stack: Stack,
    console_url: str,
    bus: Bus,
) -> None:
    await story(stack)
    stack.clock.set(TUE_0800 + timedelta(minutes=30))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(f"{console_url}/")
            await expect(page.get_by_role("heading", name="Sign in to the desk")).to_be_visible()
            await shot(page, "01-login")
            await page.get_by_label("User name").fill("dina")
            await page.get_by_label("Password").fill(USERS["dina"][1])
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Now")).to_be_visible()
            await expect(page.locator("#live")).to_contain_text("Nothing open")

            # An email arrives over SMTP; the open page shows it without a reload.
            loop = asyncio.get_running_loop()
            await stack.mail(RAJ_EMAIL, "Printer on line 2 jams", "The label printer jams every few labels.")
            sent_at = loop.time()
            row = page.locator('tr[data-ticket="SR-1002"]')
            await expect(row).to_be_visible(timeout=2000)
            print(f"\nnew email on the Now page after {loop.time() - sent_at:.2f} s")
            await expect(row).to_contain_text("Alice Nguyen")
            await shot(page, "02-now")
            await page.set_viewport_size({"width": 390, "height": 844})
            await shot(page, "02-now-phone")
            await page.set_viewport_size({"width": 1280, "height": 800})

            await row.get_by_role("link", name="SR-1002").click()
            await expect(page.get_by_role("heading", name="SR-1002")).to_be_visible()
            await page.get_by_label("Reassign to").select_option("carol")
            await page.get_by_role("button", name="Reassign and text").click()
            await expect(page.get_by_role("status")).to_contain_text("Sent: reassign")

            # Carol gets the dispatch SMS from the notifier, through the sandbox.
            async def dispatched() -> list[str]:
                return [m["body"] for m in await stack.sms_to(CAROL) if m["body"].startswith("SR-1002")]

            [dispatch] = await until(dispatched, what="the dispatch SMS of SR-1002 to carol")
            assert dispatch.startswith("SR-1002 Acme Manufacturing (premium)")

            async def on_timeline() -> bool:
                await page.reload()
                return "Reassigned to Carol Diaz by dina" in await page.locator(".timeline").inner_text()

            await until(on_timeline, what="the reassignment on the ticket's timeline")
            await shot(page, "03-ticket")

            await page.get_by_role("link", name="Acme Manufacturing").first.click()
            await expect(page.get_by_role("heading", name="Covered now")).to_be_visible()
            await shot(page, "04-client")
            await page.get_by_role("link", name="On call").click()
            await expect(page.get_by_role("heading", name="Schedule, coming weeks")).to_be_visible()
            await shot(page, "05-oncall")
            await page.goto(f"{console_url}/report?from=2026-11-23&to=2026-11-24")
            await expect(page.get_by_role("heading", name="Service report")).to_be_visible()
            await expect(page.locator("#vol-h")).to_contain_text("2 tickets")
            await shot(page, "06-report")
        finally:
            await browser.close()
