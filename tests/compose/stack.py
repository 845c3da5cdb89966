"""A compose project under test: a copy of the checkout, `docker compose` with bounded waits, and clients."""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, TypeVar

from tests.compose.engine import ROOT, DockerEngine

T = TypeVar("T")
IMAGE = "frontdesk:0.1.0"
TIMELINE = ("python", "-m", "services.timeline")
# Run by the ops tool container: every ticket in KV as {number: subject}. One listing, not a loop.
TICKETS = """
import asyncio, json
from services.common.bus import Bus
from services.common.config import load_bus
from services.contracts import subjects as s

async def main():
    bus = await Bus.connect(load_bus(), "compose-test")
    try:
        kv = await bus.js.key_value(s.KV_TICKETS)
        found = {}
        for key in await kv.keys():
            entry = await kv.get(key)
            if entry.value:
                ticket = json.loads(entry.value)
                found[ticket["number"]] = ticket["subject"]
        print(json.dumps(found))
    finally:
        await bus.close()

asyncio.run(main())
"""
# What the image build reads (see .dockerignore) plus the compose files: the copy keeps the developer's
# own deploy/.env and secrets untouched, and deploy/.env is made as the README says, from .env.example.
COPIED = ("pyproject.toml", "constraints.txt", "README.md", ".dockerignore", "services", "deploy")
# Let Docker pick free loopback host ports, so a `make run` or another stack on this machine never collides.
EPHEMERAL_PORTS = {
    "FRONTDESK_SMTP_PUBLISH": "127.0.0.1:",
    "FRONTDESK_VOICE_PUBLISH": "127.0.0.1:",
    "FRONTDESK_SANDBOX_PUBLISH": "127.0.0.1:",
    "FRONTDESK_CONSOLE_PUBLISH": "127.0.0.1:",
}


class ComposeError(RuntimeError):
    pass


def until(check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.5) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


@dataclass
class ComposeStack:
    engine: DockerEngine
    workdir: Path
    project: str
    files: tuple[str, ...]
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def copy_checkout(
        cls, engine: DockerEngine, workdir: Path, project: str, files: tuple[str, ...], **extra_env: str
    ) -> ComposeStack:
        # Never the developer's own deploy/.env or deploy/secrets/: the suite makes its own.
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".env", "secrets")
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, workdir / name, ignore=skip)
            else:
                shutil.copy2(source, workdir / name)
        shutil.copy2(workdir / "deploy" / ".env.example", workdir / "deploy" / ".env")
        return cls(engine, workdir, project, files, {**EPHEMERAL_PORTS, **extra_env})

    # -- docker compose ---------------------------------------------------------------------------
    def compose(self, *args: str, timeout: float = 300.0) -> str:
        command = ["docker", "compose", "-p", self.project]
        for name in self.files:
            command += ["-f", name]
        return self.run([*command, *args], timeout=timeout)

    def run(self, command: list[str], *, timeout: float = 60.0, stdin: str | None = None) -> str:
        env = {**self.engine.env, **self.extra_env}
        try:
            done = subprocess.run(
                command,
                input=stdin,
                cwd=self.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(f"{' '.join(command[:6])} ...: still running after {timeout:.0f} s") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
            raise ComposeError(f"{' '.join(command)} exited {done.returncode}:\n{tail}")
        return done.stdout

    def up(self, *extra: str, timeout: float = 600.0) -> None:
        try:
            self.compose("up", "-d", "--wait", *extra, timeout=timeout)
        except ComposeError as exc:
            # Whoever reads the CI log needs the services' own words, not only "unhealthy".
            logs = self.compose("logs", "--no-color", "--tail", "15", timeout=60)
            raise ComposeError(f"{exc}\n--- last log lines ---\n{logs}") from None

    def down(self, *extra: str) -> None:
        self.compose("down", "--timeout", "10", *extra, timeout=180)

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def address(self, service: str, port: int, index: int = 1) -> tuple[str, int]:
        found = self.compose("port", "--index", str(index), service, str(port)).strip()
        host, _, published = found.rpartition(":")
        return host, int(published)

    def inspect(self, container: str, template: str) -> str:
        return self.run(["docker", "inspect", "-f", template, container]).strip()

    def crash(self, container: str) -> int:
        """SIGKILL the container's main process from the host, as a crash would (unlike `docker kill`,
        which counts as a manual stop and so turns the restart policy off). Returns the restart count."""
        restarts = int(self.inspect(container, "{{.RestartCount}}"))
        os.kill(int(self.inspect(container, "{{.State.Pid}}")), signal.SIGKILL)
        return restarts

    def healthy(self, container: str) -> bool:
        return self.inspect(container, "{{.State.Status}} {{.State.Health.Status}}") == "running healthy"

    def timeline(self, client_id: str) -> list[dict[str, Any]]:
        """The client's history, read by the `ops` tool container as an operator would."""
        out = self.compose("run", "--rm", "-T", "ops", *TIMELINE, client_id, "--json")
        entries: list[dict[str, Any]] = json.loads(out)
        return entries

    def tickets(self) -> dict[str, str]:
        """Every ticket in KV `fd_tickets` (number -> subject), read by the `ops` tool container."""
        found: dict[str, str] = json.loads(self.compose("run", "--rm", "-T", "ops", "python", "-c", TICKETS))
        return found

    def leftovers(self) -> dict[str, int]:
        """Containers, networks and volumes still labelled with this project."""
        label = f"label=com.docker.compose.project={self.project}"
        counts = {}
        for kind, listing in (
            ("containers", ["docker", "ps", "-aq"]),
            ("networks", ["docker", "network", "ls", "-q"]),
            ("volumes", ["docker", "volume", "ls", "-q"]),
        ):
            counts[kind] = len(self.run([*listing, "--filter", label]).split())
        return counts

    def image_megabytes(self, image: str = IMAGE) -> float:
        return int(self.run(["docker", "image", "inspect", "-f", "{{.Size}}", image])) / 1e6


class Sandbox:
    """The sandbox's inspection API over its published loopback port."""

    def __init__(self, host: str, port: int) -> None:
        self.base = f"http://{host}:{port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as rsp:
            return json.load(rsp)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as rsp:
            return json.load(rsp)

    def messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get("/api/messages")
        return found

    def emails(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get("/api/emails")
        return found


def email(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A client's mail as the dev overlay's trusted relay (authserv-id frontdesk.test) would pass it on."""
    message = EmailMessage()
    domain = sender.rsplit("@", 1)[-1]
    message["Authentication-Results"] = f"frontdesk.test; dmarc=pass header.from={domain}"
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = make_msgid(domain="compose-test.example")
    message.set_content(body)
    return message


def send(address: tuple[str, int], message: EmailMessage) -> None:
    """Deliver over SMTP; a refusal (4xx/5xx) raises smtplib's error carrying the code."""
    with smtplib.SMTP(*address, timeout=30) as client:
        client.send_message(message)
