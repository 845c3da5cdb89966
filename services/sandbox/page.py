"""The sandbox page: conversations a newcomer can demo with, and forms to text or call in."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.policy.load import PolicyError, load_policy
from services.policy.model import Policy
from services.sandbox import conversation
from services.sandbox.caller import Exchange, InboundCall, InboundSms
from services.sandbox.config import SandboxConfig
from services.sandbox.conversation import Conversation, Event
from services.wording import times

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.5em;border-bottom:1px solid #ccc}
section.conversation{border:1px solid #ddd;border-radius:6px;margin:.8em 0;padding:.4em .8em}
section.conversation h3{margin:.3em 0}
ol.events{list-style:none;padding:0;margin:0}
li.event{margin:.4em 0;padding:.3em .6em;border-left:4px solid #999;white-space:pre-wrap}
li.event.in{border-color:#2a7;background:#f3fbf6} li.event.out{border-color:#37c;background:#f3f7fd}
li.event .meta{display:block;color:#555;font-size:12px}
form{display:inline-block;vertical-align:top;margin:0 1.5em 1em 0;padding:.6em;border:1px solid #ddd}
form label{display:block;margin:.3em 0} textarea{width:22em;height:4em}
"""

# Reload every few seconds so new messages appear, except while someone is typing in a form.
_REFRESH = """<script>setInterval(function(){var a=document.activeElement;
if(!a||!/^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)){location.reload();}},4000);</script>
<noscript><meta http-equiv="refresh" content="4"></noscript>"""


def _when(at: str, zone: ZoneInfo) -> str:
    try:
        return times.stamp(datetime.fromisoformat(at), zone)
    except ValueError:
        return at


def _event(event: Event, names: Mapping[str, str], zone: ZoneInfo) -> str:
    party = event.party
    who = ", ".join(
        f"{names[p.strip()]} {p.strip()}" if p.strip() in names else p.strip() for p in party.split(",")
    )
    arrow = f"from {who}" if event.direction == "in" else f"to {who}"
    label = {"sms": "SMS", "email": "Email", "call": "Call"}[event.channel]
    status = f" ({event.status})" if event.status else ""
    subject = f"<b>{html.escape(event.subject)}</b>\n" if event.subject else ""
    return (
        f'<li class="event {event.direction} {event.channel}">'
        f'<span class="meta">{html.escape(_when(event.at, zone))} \u00b7 {label} {html.escape(arrow)}'
        f"{html.escape(status)}</span>{subject}{html.escape(event.text)}</li>"
    )


def _conversation(item: Conversation, kind: str, names: Mapping[str, str], zone: ZoneInfo) -> str:
    rows = "".join(_event(event, names, zone) for event in item.events)
    return (
        f'<section class="conversation" data-{kind}="{html.escape(item.key)}">'
        f'<h3>{html.escape(item.title)}</h3><ol class="events">{rows}</ol></section>'
    )


def _options(people: Mapping[str, str]) -> str:
    return "".join(
        f'<option value="{html.escape(reach)}">{html.escape(name)} {html.escape(reach)}</option>'
        for reach, name in people.items()
    )


def _forms(people: Mapping[str, str]) -> str:
    options = _options(people)
    return f"""
<form method="post" action="/ui/sms" id="text-in"><b>Text the desk</b>
<label>as <select name="from">{options}</select></label>
<label>or number <input name="other" placeholder="+13125559876"></label>
<label><textarea name="body" required
 placeholder="The printer on floor 2 jams / A / ETA 30 / DONE"></textarea></label>
<button type="submit">Send SMS</button></form>
<form method="post" action="/ui/call" id="call-in"><b>Call the desk</b>
<label>as <select name="from">{options}</select></label>
<label>or number <input name="other" placeholder="+13125559876"></label>
<label>keys pressed <input name="digits" value="2" placeholder="1, 2, or 3 1001 (a ticket)"></label>
<label>voicemail <input name="transcript" value="Please call me back about the printer."></label>
<button type="submit">Place call</button></form>
<form method="post" action="/ui/reset" id="reset"><b>Start over</b>
<p>Forget every message, call and email the sandbox has seen.</p><button type="submit">Reset</button></form>
"""


def render(
    per_ticket: list[Conversation],
    per_party: list[Conversation],
    names: Mapping[str, str],
    people: Mapping[str, str],
    zone: ZoneInfo,
) -> str:
    tickets = "".join(_conversation(c, "ticket", names, zone) for c in per_ticket) or "<p>No tickets yet.</p>"
    parties = "".join(_conversation(c, "party", names, zone) for c in per_party) or "<p>Nothing yet.</p>"
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Frontdesk sandbox</title>'
        f"<style>{_STYLE}</style>{_REFRESH}</head><body>"
        "<h1>Frontdesk sandbox</h1><p>Every SMS, email and call, newest first. "
        "Text or call in as a client or a tech below.</p>"
        f"{_forms(people)}"
        f'<h2>By ticket</h2><div id="tickets">{tickets}</div>'
        f'<h2>By phone or address</h2><div id="parties">{parties}</div>'
        "</body></html>"
    )


class Ledger(Protocol):
    """What the page reads and resets (services.sandbox.api.Ledger)."""

    messages: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    webhooks: list[dict[str, Any]]
    callbacks: list[dict[str, Any]]


def _policy(path: str) -> Policy | None:
    """The policy's names are a convenience: without a readable policy the page shows bare numbers."""
    try:
        return load_policy(path)
    except (PolicyError, OSError):
        return None


def mount(
    app: FastAPI,
    cfg: SandboxConfig,
    ledger: Ledger,
    text_in: Callable[[InboundSms], Awaitable[Exchange]],
    call_in: Callable[[InboundCall], Awaitable[list[dict[str, Any]]]],
) -> None:
    """The page at / and its forms: text or call in as anyone, or start over."""
    policy = _policy(cfg.policy)
    names = conversation.directory(policy)
    # Clients first (the usual demo), then techs, then the ops desk.
    phones = [(reach, name) for reach, name in names.items() if reach.startswith("+")]
    people = dict(sorted(phones, key=lambda item: ("(tech)" in item[1], "(ops)" in item[1])))
    zone = ZoneInfo(policy.desk.timezone if policy is not None else "UTC")

    @app.get("/")
    async def page() -> Response:
        found = conversation.events(map(conversation.brief, ledger.messages), ledger.emails, ledger.webhooks)
        per_ticket, per_party = conversation.conversations(found, names)
        return HTMLResponse(render(per_ticket, per_party, names, people, zone))

    @app.post("/ui/sms")
    async def ui_sms(request: Request) -> Response:
        form = await request.form()
        sender = str(form.get("other") or form.get("from") or "").strip()
        body = str(form.get("body") or "")
        if not sender or not body.strip():
            return HTMLResponse("A sender and a message are required.", status_code=422)
        await text_in(InboundSms(from_=sender, body=body))
        return RedirectResponse("/", status_code=303)

    @app.post("/ui/call")
    async def ui_call(request: Request) -> Response:
        form = await request.form()
        caller = str(form.get("other") or form.get("from") or "").strip()
        if not caller:
            return HTMLResponse("A caller number is required.", status_code=422)
        digits = str(form.get("digits") or "").split()
        transcript = str(form.get("transcript") or "") or InboundCall(from_=caller).transcript
        await call_in(InboundCall(from_=caller, digits=digits, transcript=transcript))
        return RedirectResponse("/", status_code=303)

    @app.post("/ui/reset")
    async def ui_reset() -> Response:
        for kept in (ledger.messages, ledger.emails, ledger.calls, ledger.webhooks, ledger.callbacks):
            kept.clear()
        return RedirectResponse("/", status_code=303)
