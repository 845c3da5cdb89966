"""Start nats-server, the topology, the sandbox and every service in order; Ctrl-C stops them all.

Order matters: NATS first (JetStream ready), then streams and buckets, then the sandbox (the notifier
sends to it and it drives intake_voice), then the services. A child that dies takes the stack down,
so a broken service is never silently missing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from services.common import natsauth
from services.common.bus import Bus
from services.common.config import BusConfig, Secret
from services.common.natsserver import NatsServer
from services.common.process import ROOT, ChildProcess, stop_all

DEV_DEFAULTS = {
    "FRONTDESK_ENV": "development",
    "FRONTDESK_POLICY": str(ROOT / "deploy" / "policy.example.yaml"),
    "FRONTDESK_THREAD_SECRET": "dev-only-thread-secret",
    "FRONTDESK_TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
    "FRONTDESK_TWILIO_AUTH_TOKEN": "sandbox-auth-token",
    "FRONTDESK_TWILIO_FROM": "+13125550199",
    "FRONTDESK_SANDBOX_PHONE_NUMBER": "+13125550199",
    "FRONTDESK_SMTP_HOST": "127.0.0.1",
    "FRONTDESK_SMTP_PORT": "2525",
    # Local demos: trust the Authentication-Results a relay named frontdesk.test would add (see README).
    "FRONTDESK_SMTP_SENDER_AUTH": "upstream",
    "FRONTDESK_SMTP_AUTHSERV_ID": "frontdesk.test",
    "FRONTDESK_VOICE_HOST": "127.0.0.1",
    "FRONTDESK_VOICE_PORT": "8080",
    "FRONTDESK_VOICE_HTTP_PORT": "9104",
    "FRONTDESK_SANDBOX_PORT": "8025",
    "FRONTDESK_SANDBOX_SMTP_PORT": "2526",
    "FRONTDESK_NOTIFIER_RELAY_HOST": "127.0.0.1",
    "FRONTDESK_CONSOLE_PORT": "8090",
}


@dataclass(frozen=True)
class Child:
    name: str
    listens: tuple[tuple[str, str], ...]  # (what, env var holding the port)

    def present(self) -> bool:
        return (ROOT / "services" / self.name / "__main__.py").exists()


CHILDREN = (
    Child(
        "sandbox",
        (("sandbox http", "FRONTDESK_SANDBOX_PORT"), ("sandbox smtp", "FRONTDESK_SANDBOX_SMTP_PORT")),
    ),
    Child("router", ()),
    Child("notifier", ()),
    Child("intake_email", (("smtp intake", "FRONTDESK_SMTP_PORT"),)),
    Child(
        "intake_voice",
        (("twilio webhooks", "FRONTDESK_VOICE_PORT"), ("voice http", "FRONTDESK_VOICE_HTTP_PORT")),
    ),
    Child("console", (("console http", "FRONTDESK_CONSOLE_PORT"),)),
)


def wired(env: dict[str, str]) -> dict[str, str]:
    """The addresses the parts reach each other by, from the ports chosen (the README's overrides):
    moving the sandbox or the webhook port moves what points at it, unless that is set too."""
    sandbox, voice = env["FRONTDESK_SANDBOX_PORT"], env["FRONTDESK_VOICE_PORT"]
    env.setdefault("FRONTDESK_TWILIO_API_BASE", f"http://127.0.0.1:{sandbox}")
    env.setdefault("FRONTDESK_VOICE_PUBLIC_URL", f"http://127.0.0.1:{voice}")
    env.setdefault("FRONTDESK_SANDBOX_WEBHOOK_BASE", f"http://127.0.0.1:{voice}")
    env.setdefault("FRONTDESK_NOTIFIER_STATUS_CALLBACK", f"http://127.0.0.1:{voice}/twilio/sms/status")
    env.setdefault("FRONTDESK_NOTIFIER_RELAY_PORT", env["FRONTDESK_SANDBOX_SMTP_PORT"])
    return env


def main() -> int:
    env = wired({**DEV_DEFAULTS, **os.environ})
    data = Path(env.get("FRONTDESK_DATA_DIR", str(ROOT / ".data")))
    nats_port = int(env.get("FRONTDESK_NATS_PORT", "4222"))
    env.setdefault("FRONTDESK_NATS_URL", f"nats://127.0.0.1:{nats_port}")
    env["FRONTDESK_VOICE_SPOOL_DIR"] = env.get("FRONTDESK_VOICE_SPOOL_DIR", str(data / "voice-spool"))
    env.setdefault("FRONTDESK_CONSOLE_DATA_DIR", str(data / "console"))
    data.mkdir(parents=True, exist_ok=True)
    # The bus runs with authentication on, as in production: one user per service, passwords generated
    # once into .data/nats-auth (0600) and kept across runs.
    auth = data / "nats-auth"
    passwords = natsauth.ensure_secrets(auth)
    nats = NatsServer(
        store_dir=data / "nats",
        port=nats_port,
        monitor_port=int(env.get("FRONTDESK_NATS_MONITOR_PORT", "8222")),
        log_file=data / "nats.log",
        config_file=natsauth.write_server_config(auth, passwords),
    )
    print(f"starting nats-server (JetStream, store {nats.store_dir}, users in {auth}) ...", flush=True)
    nats.start()
    ops = BusConfig(
        url=tuple(env["FRONTDESK_NATS_URL"].split(",")),
        user=natsauth.OPS,
        password=Secret(passwords[natsauth.OPS]),
    )
    asyncio.run(_ensure_topology(ops))
    procs: list[ChildProcess] = []
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    lines = [f"  nats            {env['FRONTDESK_NATS_URL']}  (monitor http://127.0.0.1:{nats.monitor_port})"]
    try:
        for child in CHILDREN:
            if not child.present():
                lines.append(f"  {child.name:<15} (not built yet)")
                continue
            proc = ChildProcess.service(child.name, _as_user(env, child.name, auth))
            procs.append(proc)
            for what, var in child.listens:
                port = int(env[var])
                try:
                    proc.wait_port(port)
                except (RuntimeError, TimeoutError) as exc:
                    print(f"{child.name} did not come up: {exc}", file=sys.stderr)
                    return 1
                scheme = "http://" if "http" in what or "webhooks" in what else "smtp://"
                lines.append(f"  {what:<15} {scheme}127.0.0.1:{port}")
            if not child.listens:
                lines.append(f"  {child.name:<15} running (pid {proc.pid})")
            if (
                child.name == "console"
                and env["FRONTDESK_ENV"] == "development"
                and not env.get("FRONTDESK_CONSOLE_USERS")
            ):
                lines.append("  console login   ops / ops (development only)")
        print("Frontdesk is up:\n" + "\n".join(lines) + "\nCtrl-C stops everything.", flush=True)
        while not stopping:
            for proc in procs:
                if not proc.running:
                    print(
                        f"{proc.name} exited with {proc.proc.returncode}; stopping the stack", file=sys.stderr
                    )
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        print("stopping ...", flush=True)
        # Reverse order: intakes stop taking work before the router and notifier go.
        for name in stop_all(procs):
            print(f"  {name} did not stop in time; killed it", flush=True)
        nats.stop()
        print("stopped.", flush=True)


def _as_user(env: dict[str, str], name: str, auth: Path) -> dict[str, str]:
    """The child's environment with its own bus user (the sandbox has none: it never touches the bus)."""
    if name not in natsauth.SERVICE_USERS:
        return env
    return {
        **env,
        "FRONTDESK_NATS_USER": name,
        "FRONTDESK_NATS_PASSWORD_FILE": str(auth / f"{name}.password"),
        "FRONTDESK_NATS_PASSWORD": "",
    }


async def _ensure_topology(cfg: BusConfig) -> None:
    bus = await Bus.connect(cfg, "devstack")
    try:
        await bus.ensure_topology()
    finally:
        await bus.close()
