"""The sandbox page in headless Chromium (Debian's `chromium --headless --dump-dom`): a newcomer sees the
conversation per ticket and per phone, with names, newest first, and can text in, call in and reset."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.e2e.stack import (
    ALICE,
    JANE,
    MON_1000,
    Stack,
    sms_for,
)
from tests.support import until

CHROMIUM = shutil.which("chromium")


async def dom(url: str, profile: Path) -> str:
    """The page as Chromium built it (scripts run), not as the server sent it."""
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={profile}", "--virtual-time-budget=1000", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0
    return out.decode()


class Sections(HTMLParser):
    """The conversations on the page: data-ticket / data-party key -> their text, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        keys = dict(attrs)
        if tag == "section" and "conversation" in (keys.get("class") or ""):
            key = keys.get("data-ticket") or keys.get("data-party") or ""
            self.found.append((key, ""))
            self.depth = 1
        elif self.depth and tag == "section":
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "section":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and self.found:
            key, text = self.found[-1]
            self.found[-1] = (key, text + data)


def sections(page: str) -> dict[str, str]:
    parser = Sections()
    parser.feed(page)
    return dict(parser.found)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
async def test_the_page_shows_the_conversation_in_chromium(stack: Stack, tmp_path: Path) -> None:
    stack.clock.set(MON_1000)
    await stack.text(JANE, "The printer on floor 2 jams on every page")
    await sms_for(stack, ALICE)
    await sms_for(stack, JANE)
    stack.clock.advance(timedelta(minutes=5))
    await stack.call(JANE, ["2"])
    await stack.settled()

    page = await dom(stack.sandbox.url + "/", tmp_path / "profile")
    found = sections(page)
    ticket = found["SR-1001"]
    assert (
        "Alice Nguyen (tech) +13125550101" in ticket and "Jane Roe, Acme Manufacturing +13125550150" in ticket
    )
    jane = found[JANE]
    # Newest first: the call (with what Jane heard; it opened SR-1002), the first ack, her first text.
    call, first_ack = jane.index("Call from"), jane.index("request as ticket SR-1001")
    assert jane.index("request as ticket SR-1002") < call < first_ack < jane.index("jams on every page")
    assert "heard: Hello Jane Roe, thank you for calling Northwind IT Services." in jane
    assert "pressed 2" in jane
    assert "heard: Please describe your request." in found["SR-1002"]  # the call joins its ticket
    assert 'id="text-in"' in page and 'id="call-in"' in page and 'id="reset"' in page

    # The forms: Alice accepts SR-1001 by text as herself (she has two open tickets); then a reset.
    answer = await stack.http.post(
        stack.sandbox.url + "/ui/sms", data={"from": ALICE, "body": "SR-1001 A"}, follow_redirects=False
    )
    assert answer.status_code == 303

    async def confirmed() -> bool:
        return any("SR-1001 accepted" in m["body"] for m in await stack.sms_to(ALICE))

    await until(confirmed, what="Alice's confirmation")
    await stack.settled()
    assert (
        "SR-1001 accepted; Jane Roe was told."
        in sections(await dom(stack.sandbox.url + "/", tmp_path / "p2"))[ALICE]
    )
    reset = await stack.http.post(stack.sandbox.url + "/ui/reset", follow_redirects=False)
    assert reset.status_code == 303
    assert sections(await dom(stack.sandbox.url + "/", tmp_path / "p3")) == {}
