"""Where a service spends its CPU under load: py-spy samples it while the C load generator runs.

`python -m bench.profile smtp|sms|voice|router [SECONDS]` prints the top frames by own time and by
inclusive time (share of samples), the figures the performance notes quote before and after a change.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench import endtoend, replicas, smtp, stack, tools, webhooks
from services.common.natsserver import free_port

TOP = 15


def top_frames(collapsed: Path) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(own, inclusive) shares of samples per frame from py-spy's collapsed-stack output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = 100.0 / max(total, 1)
    return (
        [(frame, n * share) for frame, n in own.most_common(TOP)],
        [(frame, n * share) for frame, n in inclusive.most_common(TOP * 2)],
    )


def record(pid: int, seconds: int, out: Path, *, gil: bool = False) -> subprocess.Popen[bytes]:
    """`gil`: sample only while the process holds the GIL. A service that talks to nats-server over
    loopback is often preempted inside its socket write by the server it just woke (most of its
    switches are involuntary while /proc shows little system time), and without this those waits
    read as a hot `_SelectorSocketTransport.write`."""
    spy = str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200"]
    argv += ["--format", "raw", "--output", str(out), "--nonblocking", *(["--gil"] if gil else [])]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _load(kind: str, port: int, *, pid: int, seconds: int, tmp: Path, out: Path) -> None:
    """Sample `pid` while the C load generator keeps it busy for the whole window."""
    spy = record(pid, seconds, out)
    if kind == "smtp":
        smtp.smtp_source_run(tools.smtp_source(), port, 400 * seconds)
    else:
        base = f"http://127.0.0.1:{port}"
        script = webhooks.Script(tmp, base, "/twilio/sms" if kind == "sms" else "/twilio/voice", 0)
        webhooks.wrk_run(tools.wrk(), base, script)
    spy.wait()


def _feed_router(nats_url: str, *, pid: int, seconds: int, out: Path) -> None:
    """Sample the router while it works through a backlog of requests big enough to outlast the window."""
    spy = record(pid, seconds, out, gil=True)
    asyncio.run(replicas.feed_router(nats_url, replicas.ROUTER_REQUESTS * max(1, seconds // 5)))
    spy.wait()


def main(kind: str, seconds: int) -> None:
    with stack.run() as run:
        out = run.tmp / "profile.txt"
        port = free_port()
        load: Callable[..., None]
        if kind == "router":
            asyncio.run(endtoend.topology(run.nats.url))
            env = stack.service_env(run.nats.url, FRONTDESK_ROUTER_HTTP_PORT=str(port))
            service = stack.service("router", env, run.logs)
            load = functools.partial(_feed_router, run.nats.url, seconds=seconds, out=out)
        elif kind == "smtp":
            env = stack.service_env(run.nats.url, FRONTDESK_SMTP_PORT=str(port), FRONTDESK_SMTP_WORKERS="1")
            service = stack.service("intake_email", env, run.logs)
            load = functools.partial(_load, kind, port, seconds=seconds, tmp=run.tmp, out=out)
        else:
            env = stack.service_env(
                run.nats.url,
                FRONTDESK_VOICE_PORT=str(port),
                FRONTDESK_VOICE_PUBLIC_URL=f"http://127.0.0.1:{port}",
                FRONTDESK_VOICE_SPOOL_DIR=str(run.tmp / "spool"),
                FRONTDESK_VOICE_WORKERS="1",  # py-spy samples one process: let it be the only one
            )
            service = stack.service("intake_voice", env, run.logs)
            load = functools.partial(_load, kind, port, seconds=seconds, tmp=run.tmp, out=out)
        try:  # a failed load run must not leave the service behind
            service.wait_port(port)
            load(pid=service.pid)
        finally:
            service.stop()
        own, inclusive = top_frames(out)
    print(f"## {kind}: own time")
    for frame, pct in own:
        print(f"{pct:5.1f}%  {frame}")
    print(f"\n## {kind}: inclusive time")
    for frame, pct in inclusive:
        print(f"{pct:5.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "smtp", int(sys.argv[2]) if len(sys.argv) > 2 else 8)
