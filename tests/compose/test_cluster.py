"""`make compose-cluster-test` (on demand): compose.cluster.yaml with the dev overlay, a stream of emails
at both SMTP replicas, the FD_REQUESTS leader's NATS container SIGKILLed mid-stream; every email counted."""

from __future__ import annotations

import json
import os
import smtplib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

import pytest

from tests.compose.engine import DockerEngine
from tests.compose.stack import ComposeStack, Sandbox, email, send, until

pytestmark = pytest.mark.compose

EMAILS = 120
SENDERS = 4
KILL_AFTER = EMAILS // 3
RESEND_FOR = 120.0  # seconds a refused email keeps being offered again, as a sending MTA would
JANE, JANE_EMAIL, SUPPORT = "+13125550150", "jane@acme.example", "support@example.com"
# Published loopback ports for the test only: the cluster file itself publishes none.
PORTS = {"services": {"intake_email": {"ports": ["127.0.0.1::2525"]}}}


@pytest.fixture(scope="module")
def cluster(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    workdir = tmp_path_factory.mktemp("cluster")
    files = ("deploy/compose.cluster.yaml", "deploy/compose.dev.yaml", "deploy/compose.ports.yaml")
    stack = ComposeStack.copy_checkout(engine, workdir, f"fdcluster{os.getpid()}", files)
    (workdir / "deploy" / "compose.ports.yaml").write_text(json.dumps(PORTS))
    try:
        stack.compose("build", timeout=1800)
        stack.up(timeout=900)
        yield stack
    finally:
        stack.down("-v", "--remove-orphans")


def stream_leader(stack: ComposeStack, stream: str) -> str:
    """The server name (= compose service) leading `stream`, from a NATS node's monitor endpoint."""
    out = stack.compose("exec", "-T", "nats-1", "wget", "-q", "-O-", "http://127.0.0.1:8222/jsz?streams=true")
    for account in json.loads(out).get("account_details", []):
        for detail in account.get("stream_detail", []):
            if detail["name"] == stream:
                leader: str = detail["cluster"]["leader"]
                return leader
    raise AssertionError(f"{stream} not found on nats-1")


class Mailer:
    """Sends each email until accepted, as an MTA would, counting every refusal that is resent."""

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        self.addresses = addresses
        self.accepted = 0
        self.refused = 0
        self.lock = threading.Lock()
        self.accepted_enough = threading.Event()

    def deliver(self, index: int, message: EmailMessage) -> None:
        deadline = time.monotonic() + RESEND_FOR
        attempt = 0
        while True:
            address = self.addresses[(index + attempt) % len(self.addresses)]
            attempt += 1
            try:
                send(address, message)
            except (smtplib.SMTPException, OSError) as exc:
                code = getattr(exc, "smtp_code", 0)
                # 4xx or a dropped connection: try again later; 5xx is a permanent refusal and a failure.
                assert not 500 <= code < 600, f"{message['Subject']}: {exc}"
                assert time.monotonic() < deadline, f"{message['Subject']} still refused: {exc}"
                with self.lock:
                    self.refused += 1
                time.sleep(1.0)
                continue
            with self.lock:
                self.accepted += 1
                if self.accepted >= KILL_AFTER:
                    self.accepted_enough.set()
            return


def test_stream_leader_killed_mid_stream_loses_and_doubles_nothing(cluster: ComposeStack) -> None:
    sandbox = Sandbox(*cluster.address("sandbox", 8025))
    addresses = [cluster.address("intake_email", 2525, index) for index in (1, 2)]
    run = uuid.uuid4().hex[:6]
    tags = [f"{run}-{n:04d}" for n in range(EMAILS)]
    mailer = Mailer(addresses)
    with ThreadPoolExecutor(SENDERS) as pool:
        futures = [
            pool.submit(mailer.deliver, n, email(JANE_EMAIL, SUPPORT, f"Server down {tag}", f"Down ({tag})."))
            for n, tag in enumerate(tags)
        ]
        assert mailer.accepted_enough.wait(300), "the first third of the stream was never accepted"
        leader = stream_leader(cluster, "FD_REQUESTS")
        [container] = cluster.containers(leader)
        restarts = cluster.crash(container)
        for future in futures:
            future.result(timeout=RESEND_FOR + 60)
    until(
        lambda: int(cluster.inspect(container, "{{.RestartCount}}")) > restarts,
        timeout=60,
        what=f"{leader} restarted",
    )

    def dispatches() -> Counter[str]:
        bodies = [m["body"] for m in sandbox.messages() if m["to"] != JANE]
        return Counter(tag for tag in tags for body in bodies if f"({tag})" in body)

    until(lambda: len(dispatches()) == EMAILS or None, timeout=300, what="a tech SMS for every email")
    time.sleep(5)  # a late duplicate would show up here
    sms = dispatches()
    tickets = cluster.tickets()
    per_email = Counter(tag for subject in tickets.values() for tag in tags if subject.endswith(tag))
    lost = [tag for tag in tags if per_email[tag] == 0]
    doubled = [tag for tag, n in per_email.items() if n > 1] + [tag for tag, n in sms.items() if n > 1]
    routed = {e["ticket_number"] for e in cluster.timeline("acme") if e["kind"] == "routed"}
    print(
        f"\ncompose-cluster-test: sent {mailer.accepted + mailer.refused} = accepted {mailer.accepted}"
        f" + refused-and-resent {mailer.refused}; tickets {len(tickets)} (accepted {mailer.accepted});"
        f" lost {len(lost)}, doubled {len(doubled)}; tech SMS {sum(sms.values())};"
        f" timeline 'routed' entries {len(routed)}; {leader} (FD_REQUESTS leader) SIGKILLed after"
        f" {KILL_AFTER} accepted, restarted",
        flush=True,
    )
    assert mailer.accepted == EMAILS
    assert len(tickets) == mailer.accepted
    assert lost == []
    assert doubled == []
    assert set(tickets) == routed, f"timeline misses {sorted(set(tickets) - routed)}"
