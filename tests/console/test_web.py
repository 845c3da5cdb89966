"""Every route and role over real HTTP: sign-in, pages, JSON, the feed, and desk actions on the bus."""

from __future__ import annotations

import msgspec
import pytest
from nats.js.errors import NotFoundError

from services.console.schedule import feed_token
from services.contracts import subjects as s
from services.contracts.commands import ReassignTicket, ResolveTicket, SendClientUpdate
from tests.console.conftest import (
    NOW,
    Console,
    csrf_of,
    entry,
    make_ticket,
    put_ticket,
    record,
    sign_in,
    until_listed,
)

PAGES = ["/", "/now/rows", "/tickets/SR-1001", "/clients/acme", "/oncall", "/report", "/report.csv"]
APIS = ["/api/tickets?state=open", "/api/tickets/SR-1001", "/api/oncall", "/api/report"]
ACTION = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def seeded(console: Console) -> Console:
    await put_ticket(console.bus, make_ticket())
    await record(console.bus, entry("request_received", "SR-1001", NOW, "email from jane@acme.example"))
    await until_listed(console, "SR-1001")
    return console


async def last_desk_command(console: Console, action: str) -> bytes | None:
    try:
        msg = await console.bus.js.get_last_msg(s.STREAM_NOTIFY, s.desk_subject(action))
    except NotFoundError:
        return None
    return msg.data


async def desk_commands(console: Console) -> int:
    info = await console.bus.js.stream_info(s.STREAM_NOTIFY, subjects_filter=s.DESK_ALL)
    return sum((info.state.subjects or {}).values())


async def test_without_a_session_pages_redirect_and_apis_refuse(seeded: Console) -> None:
    async with seeded.client() as client:
        for path in PAGES:
            answer = await client.get(path)
            if path == "/now/rows":
                assert answer.status_code == 401
            else:
                assert answer.status_code == 303, path
                assert answer.headers["location"] == f"/login?next={path}"
                assert answer.headers["cache-control"] == "no-store"
            assert "SR-1001" not in answer.text
        for path in APIS:
            answer = await client.get(path)
            assert (answer.status_code, answer.json()) == (401, {"error": "sign in first"}), path
        client.cookies.set("fd_console", "eyJ1IjoiZGluYSJ9.forged.signature")
        assert (await client.get("/api/oncall")).status_code == 401


@pytest.mark.parametrize("user", ["vera", "dina"])
async def test_every_page_and_api_answers_a_signed_in_user(seeded: Console, user: str) -> None:
    async with seeded.client() as client:
        signed = await sign_in(client, user)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        for path in PAGES + APIS:
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["x-frame-options"] == "DENY"
            assert "default-src 'self'" in answer.headers["content-security-policy"]
        now = await client.get("/")
        assert "SR-1001" in now.text and "Bob Okafor" in now.text  # bob is on call that week
        ticket = (await client.get("/tickets/SR-1001")).text
        assert "email from jane@acme.example" in ticket
        assert ("Reassign and text" in ticket) == (user == "dina")
        client_page = (await client.get("/clients/acme")).text
        assert "Plant floor runs two shifts" in client_page and "Jane Roe" in client_page
        oncall = (await client.get("/api/oncall")).json()
        assert oncall["now"] == "bob" and oncall["next"]["tech"] == "carol"
        assert oncall["load"] == {"alice": 1, "bob": 0, "carol": 0}


async def test_sign_in_refuses_bad_passwords_bad_csrf_and_throttles(console: Console) -> None:
    async with console.client() as client:
        assert (await sign_in(client, "dina", "wrong")).status_code == 401
        assert (await sign_in(client, "nobody", "wrong")).status_code == 401
        form = await client.get("/login")
        forged = await client.post("/login", data={"username": "dina", "password": "x", "csrf": "forged"})
        assert forged.status_code == 403 and "csrf" in forged.text
        assert csrf_of(form.text)
        assert (await sign_in(client, "dina", "wrong")).status_code == 401
        # Three failures for dina: even the right password waits now.
        refused = await sign_in(client, "dina")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert (await client.get("/api/oncall")).status_code == 401


async def test_sign_in_never_redirects_off_site(console: Console) -> None:
    async with console.client() as client:
        form = await client.get("/login?next=//evil.example/x")
        answer = await client.post(
            "/login",
            data={
                "username": "vera",
                "password": "vera-password",
                "csrf": csrf_of(form.text),
                "next": "//evil.example/x",
            },
        )
        assert (answer.status_code, answer.headers["location"]) == (303, "/")


async def test_a_viewer_cannot_act(seeded: Console) -> None:
    async with seeded.client() as client:
        await sign_in(client, "vera")
        token = csrf_of((await client.get("/tickets/SR-1001")).text)
        for action in ("reassign", "resolve", "update"):
            answer = await client.post(
                f"/tickets/SR-1001/{action}",
                data={"csrf": token, "action_id": ACTION, "tech": "carol", "text": "hello"},
            )
            assert answer.status_code == 403 and "role: viewer may not act" in answer.text
    assert await desk_commands(seeded) == 0


async def test_a_dispatcher_reassigns_once_with_a_valid_csrf_token(seeded: Console) -> None:
    async with seeded.client() as client:
        await sign_in(client, "dina")
        token = csrf_of((await client.get("/tickets/SR-1001")).text)
        bad = await client.post(
            "/tickets/SR-1001/reassign", data={"csrf": "nope", "action_id": ACTION, "tech": "carol"}
        )
        assert bad.status_code == 403 and "csrf" in bad.text
        assert await desk_commands(seeded) == 0
        form = {"csrf": token, "action_id": ACTION, "tech": "carol"}
        for _ in range(2):  # a double submit of one form
            answer = await client.post("/tickets/SR-1001/reassign", data=form)
            assert (answer.status_code, answer.headers["location"]) == (303, "/tickets/SR-1001?sent=reassign")
    assert await desk_commands(seeded) == 1
    raw = await last_desk_command(seeded, "reassign")
    command = msgspec.json.decode(raw or b"", type=ReassignTicket)
    assert (command.id, command.ticket_number, command.tech, command.user) == (
        ACTION,
        "SR-1001",
        "carol",
        "dina",
    )
    assert command.requested_at == NOW


async def test_actions_name_the_bad_field(seeded: Console) -> None:
    async with seeded.client() as client:
        await sign_in(client, "dina")
        token = csrf_of((await client.get("/tickets/SR-1001")).text)
        cases = [
            ("/tickets/SR-1001/reassign", {"tech": "zed"}, 422, "tech: no tech"),
            ("/tickets/SR-1001/update", {"text": "   "}, 422, "text: 1 to 600 characters"),
            ("/tickets/SR-1001/update", {"text": "x" * 601}, 422, "text: 1 to 600 characters"),
            ("/tickets/SR-9999/resolve", {}, 404, "number: no ticket SR-9999"),
            ("/tickets/SR-1001/resolve", {"action_id": "short"}, 422, "action_id"),
        ]
        for path, fields, status, message in cases:
            answer = await client.post(path, data={"csrf": token, "action_id": ACTION, **fields})
            assert (answer.status_code, message in answer.text) == (status, True), path
        huge = await client.post("/tickets/SR-1001/update", data={"csrf": token, "text": "x" * 9000})
        assert huge.status_code == 413
    assert await desk_commands(seeded) == 0


async def test_resolve_and_update_publish_their_commands(seeded: Console) -> None:
    async with seeded.client() as client:
        await sign_in(client, "dina")
        token = csrf_of((await client.get("/tickets/SR-1001")).text)
        await client.post(
            "/tickets/SR-1001/update", data={"csrf": token, "action_id": "1" * 32, "text": "On my way"}
        )
        await client.post("/tickets/SR-1001/resolve", data={"csrf": token, "action_id": "2" * 32})
    update = msgspec.json.decode(await last_desk_command(seeded, "update") or b"", type=SendClientUpdate)
    assert (update.text, update.user) == ("On my way", "dina")
    resolve = msgspec.json.decode(await last_desk_command(seeded, "resolve") or b"", type=ResolveTicket)
    assert (resolve.ticket_number, resolve.user) == ("SR-1001", "dina")


async def test_apis_validate_their_parameters(seeded: Console) -> None:
    async with seeded.client() as client:
        await sign_in(client, "vera")
        listed = (await client.get("/api/tickets?state=open")).json()
        assert [(t["ticket"]["number"], t["clock"]["state"]) for t in listed] == [("SR-1001", "due")]
        assert (await client.get("/api/tickets?state=bogus")).status_code == 422
        assert (await client.get("/api/tickets/SR-9999")).status_code == 404
        bad = await client.get("/api/report?from=yesterday")
        assert bad.status_code == 422 and bad.json()["error"].startswith("from:")
        backwards = await client.get("/api/report?from=2026-11-20&to=2026-11-01")
        assert backwards.status_code == 422 and backwards.json()["error"].startswith("to:")
        report = (await client.get("/api/report?from=2026-11-23&to=2026-11-23")).json()
        assert report["requests"] == 1 and report["by_client"] == {"Acme Manufacturing": 1}
        csv = await client.get("/report.csv?from=2026-11-23&to=2026-11-23")
        assert csv.headers["content-type"].startswith("text/csv")
        assert "requests_by_client,Acme Manufacturing,1" in csv.text


async def test_oncall_feed_needs_the_techs_secret_url(console: Console) -> None:
    async with console.client() as client:
        assert (await client.get("/oncall/bob.ics?token=guess")).status_code == 404
        assert (await client.get("/oncall/zed.ics?token=guess")).status_code == 404
        token = feed_token(console.cfg.feed_secret.reveal(), "bob")
        feed = await client.get(f"/oncall/bob.ics?token={token}")
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
        assert "BEGIN:VEVENT" in feed.text and "SUMMARY:On call for Northwind IT Services" in feed.text
        # bob's shift this week began Mon 23 Nov 08:00 Chicago (14:00 UTC).
        assert "DTSTART:20261123T140000Z" in feed.text
        assert token not in (await client.get(f"/oncall/alice.ics?token={token}")).text


async def test_sign_out_ends_the_session(seeded: Console) -> None:
    async with seeded.client() as client:
        await sign_in(client, "vera")
        token = csrf_of((await client.get("/")).text)
        answer = await client.post("/logout", data={"csrf": token})
        assert answer.status_code == 303
        assert (await client.get("/api/oncall")).status_code == 401
