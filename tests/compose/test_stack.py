"""`make compose-test`: the dev stack built and run under a real Docker engine, driven over its published
loopback ports with real SMTP and HTTP clients, exactly as deploy/README.md's first deployment."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.compose.engine import DockerEngine
from tests.compose.stack import IMAGE, ComposeError, ComposeStack, Sandbox, email, send, until

pytestmark = pytest.mark.compose

# The dev overlay runs the sandbox instead of Twilio; the last file points the NATS secrets back at
# deploy/secrets/, generated below exactly as deploy/README.md step 3 says (not the checked-in dev ones).
FILES = ("deploy/compose.yaml", "deploy/compose.dev.yaml", "deploy/compose.secrets.yaml")
APP_SERVICES = ("router", "notifier", "intake_email", "intake_voice", "console")
JANE, JANE_EMAIL = "+13125550150", "jane@acme.example"  # Acme: premium (deploy/policy.example.yaml)
SUPPORT = "support@example.com"  # FRONTDESK_SMTP_SUPPORT_ADDRESSES in deploy/.env.example
SPOOL = "/var/lib/frontdesk/voice-spool"
TICKET = re.compile(r"^SR-\d+")
# Seconds: an email to SMS takes about one here; a restart or `up --wait` about thirty on two busy cores.
FLOW_TIMEOUT = 60.0
# Run inside the network: a client without credentials must be refused by nats-server.
ANONYMOUS = """
import asyncio, nats
async def main():
    try:
        client = await nats.connect("nats://nats:4222", allow_reconnect=False, connect_timeout=5)
    except Exception as exc:
        print("refused:", exc)
    else:
        print("connected anonymously")
        await client.close()
asyncio.run(main())
"""
NATSAUTH_SECRETS = ("python", "-m", "services.common.natsauth", "secrets", "/secrets")
CONSOLE_ADDUSER = ("python", "-m", "services.console", "adduser", "/secrets/console_users")
CONSOLE_PASSWORD = "ops"  # the user generate_secrets adds: a dispatcher, as README step 3 shows
CONNECTIONS = "http://127.0.0.1:8222/connz?auth=true"
tally: dict[str, Any] = {}


@pytest.fixture(scope="module")
def stack(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    workdir = tmp_path_factory.mktemp("compose")
    project = f"fdtest{os.getpid()}"
    stack = ComposeStack.copy_checkout(engine, workdir, project, FILES)
    production = yaml.safe_load((workdir / "deploy" / "compose.yaml").read_text())["secrets"]
    (workdir / "deploy" / "compose.secrets.yaml").write_text(json.dumps({"secrets": production}))
    try:
        stack.compose("build", timeout=1800)
        tally["image"] = f"{IMAGE} {stack.image_megabytes():.0f} MB"
        generate_secrets(stack, workdir / "deploy" / "secrets")
        # README step 4: the policy check exits non-zero on a bad file, so this fails the fixture.
        stack.compose("run", "--rm", "--no-deps", "-T", "ops", timeout=120)
        stack.up()
        yield stack
    finally:
        try:
            stack.down("-v", "--remove-orphans")
        except ComposeError as exc:
            print(f"compose-test cleanup: {exc}")
        print("\ncompose-test: " + "; ".join(f"{key} {value}" for key, value in tally.items()), flush=True)


@pytest.fixture(scope="module")
def sandbox(stack: ComposeStack) -> Sandbox:
    return Sandbox(*stack.address("sandbox", 8025))


def generate_secrets(stack: ComposeStack, folder: Path) -> None:
    """deploy/README.md step 3, command for command."""
    stack.run(["install", "-d", "-m", "0700", "-o", "10001", "-g", "10001", str(folder)])
    docker_run = ["docker", "run", "--rm", "--network", "none", "--user", "10001:10001"]
    stack.run([*docker_run, "-v", f"{folder}:/secrets", IMAGE, *NATSAUTH_SECRETS])
    adduser = [*CONSOLE_ADDUSER, "ops", "dispatcher", "--password-stdin"]
    stack.run([*docker_run, "-i", "-v", f"{folder}:/secrets", IMAGE, *adduser], stdin=CONSOLE_PASSWORD + "\n")


def email_becomes_sms(stack: ComposeStack, sandbox: Sandbox, what: str) -> tuple[str, dict[str, Any]]:
    """Jane (premium) emails an emergency; returns the ticket number and the tech's SMS."""
    tag = uuid.uuid4().hex[:8]
    send(
        stack.address("intake_email", 2525),
        email(JANE_EMAIL, SUPPORT, f"{what} is down {tag}", f"{what} stopped working ({tag})."),
    )

    def dispatched() -> dict[str, Any] | None:
        return next((m for m in sandbox.messages() if m["to"] != JANE and tag in m["body"]), None)

    sms = until(dispatched, timeout=FLOW_TIMEOUT, what=f"tech SMS for email {tag}")
    ticket = TICKET.match(sms["body"])
    assert ticket, sms["body"]
    tally["email->SMS"] = tally.get("email->SMS", 0) + 1
    return ticket.group(), sms


def routed_tickets(entries: list[dict[str, Any]], request_id: str | None = None) -> set[str]:
    return {
        e["ticket_number"]
        for e in entries
        if e["kind"] == "routed" and e["ticket_number"] and request_id in (None, e["request_id"])
    }


def test_image_is_built_once_small_and_runs_as_non_root(stack: ComposeStack) -> None:
    config = json.loads(stack.compose("config", "--format", "json"))
    builders = [name for name, svc in config["services"].items() if "build" in svc]
    assert builders == ["router"]
    assert {svc["image"] for name, svc in config["services"].items() if name != "nats"} == {IMAGE}
    assert stack.image_megabytes() < 200
    tally["image"] = f"{IMAGE} {stack.image_megabytes():.0f} MB, built once (router's build:)"
    [container] = stack.containers("intake_voice")
    assert stack.inspect(container, "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}") == "10001:10001 true"
    published = stack.compose("ps", "--format", "{{.Ports}}")
    assert "0.0.0.0" not in published and ":::" not in published, published


def test_bus_refuses_anonymous_clients_and_its_monitor_is_not_published(stack: ComposeStack) -> None:
    [nats] = stack.containers("nats")
    assert stack.inspect(nats, "{{json .HostConfig.PortBindings}}") in ("{}", "null")
    probe = stack.compose("run", "--rm", "--no-deps", "-T", "ops", "python", "-c", ANONYMOUS)
    assert "Authorization Violation" in probe, probe
    users = json.loads(stack.compose("exec", "-T", "nats", "wget", "-q", "-O-", CONNECTIONS))
    # One user per service; intake_voice runs a worker per core, each with its own connection.
    connected = sorted({c["authorized_user"] for c in users["connections"]})
    assert connected == sorted(APP_SERVICES), connected
    tally["NATS"] = f"anonymous refused, monitor unpublished, users {','.join(connected)}"


def test_console_signs_in_from_its_users_file_secret(stack: ComposeStack) -> None:
    host, port = stack.address("console", 8090)
    base = f"http://{host}:{port}"
    with httpx.Client(base_url=base, timeout=10) as http:
        page = http.get("/login")
        assert page.status_code == 200 and "Sign in" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        signed_in = http.post(
            "/login", data={"username": "ops", "password": CONSOLE_PASSWORD, "csrf": csrf.group(1)}
        )
        assert signed_in.status_code in (200, 303), signed_in.text[:300]
        assert http.get("/api/tickets", params={"state": "open"}).status_code == 200
    tally["console"] = "signed in as ops from the users-file secret"


def test_premium_email_becomes_tech_sms_and_acknowledgment(stack: ComposeStack, sandbox: Sandbox) -> None:
    ticket, sms = email_becomes_sms(stack, sandbox, "The MES server")
    assert sms["body"].startswith(f"{ticket} EMERGENCY Acme Manufacturing (premium)")

    def acknowledged() -> dict[str, Any] | None:
        return next((e for e in sandbox.emails() if f"[{ticket}-" in e["subject"]), None)

    ack = until(acknowledged, timeout=FLOW_TIMEOUT, what=f"acknowledgment email for {ticket}")
    assert ack["to"] == [JANE_EMAIL]
    assert f"as ticket {ticket}." in ack["body"]
    tally["ack emails"] = 1


def test_sms_while_nats_is_stopped_is_spooled_then_one_ticket(stack: ComposeStack, sandbox: Sandbox) -> None:
    stack.compose("stop", "nats", timeout=60)
    try:
        tag = uuid.uuid4().hex[:8]
        answer = sandbox.post("/api/inbound/sms", {"from": JANE, "body": f"Printer down on floor 2 ({tag})"})
        assert answer["status"] == 200, answer
        spooled = stack.compose("exec", "-T", "intake_voice", "ls", SPOOL).split()
        assert len(spooled) == 1, spooled
    finally:
        stack.compose("start", "nats", timeout=60)
    stack.up()
    until(
        lambda: not stack.compose("exec", "-T", "intake_voice", "ls", SPOOL).split(),
        timeout=FLOW_TIMEOUT,
        what="spool emptied after NATS returned",
    )
    until(
        lambda: [m for m in sandbox.messages() if m["to"] != JANE and tag in m["body"]],
        timeout=FLOW_TIMEOUT,
        what="tech SMS for the spooled text",
    )
    request_id = answer["params"]["MessageSid"]
    tickets = routed_tickets(stack.timeline("acme"), request_id)
    assert len(tickets) == 1, tickets
    tally["SMS while NATS stopped"] = (
        f"HTTP {answer['status']}, spooled {len(spooled)} -> tickets {len(tickets)}"
    )


def test_killed_service_restarts_and_email_still_becomes_sms(stack: ComposeStack, sandbox: Sandbox) -> None:
    restarted = 0
    for service in APP_SERVICES:
        [container] = stack.containers(service)
        before = stack.crash(container)

        def back(container: str = container, before: int = before) -> bool:
            return int(stack.inspect(container, "{{.RestartCount}}")) > before and stack.healthy(container)

        until(
            back,
            timeout=FLOW_TIMEOUT * 2,
            what=f"{service} restarted by its restart policy and healthy",
        )
        restarted += 1
    email_becomes_sms(stack, sandbox, "The file server")
    tally["SIGKILL"] = f"{len(APP_SERVICES)} services -> restarted {restarted}"


def test_down_and_up_keep_tickets_and_timelines(stack: ComposeStack) -> None:
    before = stack.timeline("acme")
    tickets = routed_tickets(before)
    stored = stack.tickets()
    assert set(stored) == tickets
    stack.down()
    stack.up()
    after = stack.timeline("acme")
    assert [e["id"] for e in after[: len(before)]] == [e["id"] for e in before]
    assert routed_tickets(after) == tickets
    assert stack.tickets() == stored
    # The ticket counter lives in KV too: numbering goes on instead of starting over at SR-1001.
    ticket, _ = email_becomes_sms(stack, Sandbox(*stack.address("sandbox", 8025)), "The VPN")
    assert ticket not in tickets
    kept = f"{len(routed_tickets(after))}/{len(tickets)} tickets, {len(after[: len(before)])}/{len(before)}"
    tally["down/up kept"] = f"{kept} timeline entries"


def test_down_v_leaves_nothing_behind(stack: ComposeStack) -> None:
    stack.down("-v", "--remove-orphans")
    left = stack.leftovers()
    assert left == {"containers": 0, "networks": 0, "volumes": 0}
    tally["down -v left"] = ", ".join(f"{n} {kind}" for kind, n in left.items())
