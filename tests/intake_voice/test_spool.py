"""The spool and outbox: unpublishable files are moved aside and counted, the rest still flush in order."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from services.common.bus import Bus
from services.common.natsserver import NatsServer
from services.contracts import subjects as s
from services.intake_voice.outbox import Outbox
from services.intake_voice.spool import Spool, Unpublishable
from tests.intake_voice.harness import Harness, stored
from tests.support import until


def _spool_files(spool: Spool, count: int, subject: str = s.TECH_REPLIED) -> list[Path]:
    """`count` small valid files, one second apart so their order is unambiguous."""
    paths = []
    for i in range(count):
        path = spool.put(subject, f"SM{i}", msgspec.json.encode({"n": i}))
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
        paths.append(path)
    return paths


def _older_than(path: Path, others: list[Path]) -> None:
    stamp = min(p.stat().st_mtime for p in others) - 1
    os.utime(path, (stamp, stamp))


async def test_unpublishable_files_are_moved_aside_and_the_rest_flush(bus: Bus, tmp_path: Path) -> None:
    reasons: list[str] = []
    # The spool itself would take 4 MiB; NATS (1 MiB max_payload) never will.
    spool = Spool(tmp_path / "spool", max_bytes=4 * 1024 * 1024, on_reject=reasons.append)
    good = _spool_files(spool, 3)
    too_big = spool.put(s.TECH_REPLIED, "SM-big", b'"' + b"x" * (2 * 1024 * 1024) + b'"')
    bad_subject = spool.put("fd.replies.tech with spaces", "SM-subject", b"{}")
    garbage = spool.folder / ("0" * 32 + ".json")
    garbage.write_bytes(b"\xff not json")
    for first in (too_big, bad_subject, garbage):
        _older_than(first, good)  # ahead of the good ones: each used to block every file behind it
    outbox = Outbox(spool, 2.0, bus)
    assert await outbox.flush() == 3
    assert spool.pending() == [] and spool.count() == 0
    found = await stored(bus, s.STREAM_REPLIES)
    assert [headers["Nats-Msg-Id"] for _, headers, _ in found] == ["SM0", "SM1", "SM2"]
    rejected = sorted(p.name for p in spool.rejected_folder.iterdir())
    assert rejected == sorted(p.name for p in (too_big, bad_subject, garbage))
    assert sorted(reasons) == ["bad_subject", "too_large", "undecodable"] and spool.rejected == 3


def test_oversized_file_is_rejected_without_being_read(tmp_path: Path) -> None:
    reasons: list[str] = []
    spool = Spool(tmp_path, max_bytes=1024, on_reject=reasons.append)
    huge = tmp_path / ("1" * 32 + ".json")
    with open(huge, "wb") as handle:
        handle.truncate(512 * 1024 * 1024)  # sparse: reading it would cost half a gigabyte
    (ok,) = _spool_files(spool, 1)
    assert spool.pending() == [ok]
    assert reasons == ["too_large"] and (spool.rejected_folder / huge.name).exists()


def test_spool_refuses_what_could_never_be_published(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    with pytest.raises(Unpublishable):
        spool.put(s.TECH_REPLIED, "SM1", b"x" * 101)
    assert spool.count() == 0


async def test_outbox_refuses_oversized_events_even_while_nats_is_away(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    spool = Spool(tmp_path, max_bytes=64)
    outbox = Outbox(spool, 0.5)  # no bus yet: normally everything is spooled
    small = msgspec.defstruct("Small", [("text", str)])
    assert await outbox.send(s.TECH_REPLIED, small(text="ok"), msg_id="SM1") is False
    with pytest.raises(Unpublishable):
        await outbox.send(s.TECH_REPLIED, small(text="x" * 100), msg_id="SM2")
    assert spool.count() == 1 and outbox.spooled == 1


async def test_one_event_spooled_many_times_at_once_leaves_one_whole_file(tmp_path: Path) -> None:
    # Spool writes run in threads; a webhook Twilio retried may spool its id again while the first
    # write is still under way. Each write must finish whole, and one file stays.
    spool = Spool(tmp_path)
    outbox = Outbox(spool, 0.5)  # no bus: everything is spooled
    note = msgspec.defstruct("Note", [("n", int), ("text", str)])
    copies = [note(n=i, text=str(i) * 100_000) for i in range(8)]
    sent = await asyncio.gather(*(outbox.send(s.TECH_REPLIED, c, msg_id="SM1") for c in copies))
    assert sent == [False] * 8 and outbox.spooled == 8
    assert os.listdir(tmp_path) == [spool.path("SM1").name]  # no temporary file left behind
    with spool.claim(spool.path("SM1")) as entry:
        assert entry is not None and entry.msg_id == "SM1"
        kept = msgspec.json.decode(entry.payload, type=note)
        assert kept in copies


async def test_webhook_spool_rejections_show_in_metrics_and_readiness(harness: Harness) -> None:
    _spool_files(harness.spool, 1)
    (harness.spool.folder / ("2" * 32 + ".json")).write_bytes(b"{truncated")  # a crash mid-write
    stop = asyncio.Event()
    flusher = asyncio.create_task(harness.voice.outbox.run(stop, 0.05))  # the service's flush loop
    try:
        await until(lambda: harness.spool.count() == 0, 5, "the spool flushed")
    finally:
        stop.set()
        await flusher
    assert harness.voice.outbox.republished == 1
    metrics = (await harness.internal.get("/metrics")).text
    assert 'frontdesk_voice_spool_rejected_total{reason="undecodable"} 1.0' in metrics
    ready = (await harness.internal.get("/readyz")).json()
    assert (ready["spooled"], ready["spool_rejected"]) == (0, 1)


async def test_workers_sharing_a_spool_publish_each_file_exactly_once(bus: Bus, tmp_path: Path) -> None:
    # Two workers' outboxes on one folder flush at once. JetStream would hide a second publish of a
    # msg id, so the publishes themselves are counted: together exactly one per file.
    folder = tmp_path / "spool"
    files = _spool_files(Spool(folder), 40)
    first, second = Outbox(Spool(folder), 2.0, bus), Outbox(Spool(folder), 2.0, bus)
    counts = await asyncio.gather(first.flush(), second.flush(), first.flush(), second.flush())
    assert sum(counts) == len(files) and Spool(folder).count() == 0
    found = await stored(bus, s.STREAM_REPLIES)
    assert sorted(headers["Nats-Msg-Id"] for _, headers, _ in found) == sorted(f"SM{i}" for i in range(40))


def test_a_claimed_file_is_skipped_by_other_workers_and_gone_after_removal(tmp_path: Path) -> None:
    mine, theirs = Spool(tmp_path), Spool(tmp_path)
    (path,) = _spool_files(mine, 1)
    with mine.claim(path) as entry:
        assert entry is not None and entry.msg_id == "SM0"
        with theirs.claim(path) as other:
            assert other is None  # locked by the first worker
        mine.remove(path)
    with theirs.claim(path) as late:
        assert late is None  # published and removed: never a second time


def test_a_claim_on_a_replaced_file_is_refused(tmp_path: Path) -> None:
    # A worker that opened the file before another published, removed and (on a retry) spooled the
    # same id again must not publish the stale copy it holds open.
    spool = Spool(tmp_path)
    (path,) = _spool_files(spool, 1)
    with open(path, "rb") as stale:
        spool.remove(path)
        spool.put(s.TECH_REPLIED, "SM0", b"{}")
        assert os.fstat(stale.fileno()).st_ino != path.stat().st_ino
    with spool.claim(path) as entry:
        assert entry is not None  # the new file is claimable


def test_a_dead_workers_claim_is_released(tmp_path: Path) -> None:
    # The lock lives on the open file: a worker killed mid-publish strands nothing.
    spool = Spool(tmp_path)
    (path,) = _spool_files(spool, 1)
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stdout.readline().strip() == b"locked"
    with spool.claim(path) as entry:
        assert entry is None
    child.kill()
    child.wait()
    with spool.claim(path) as entry:
        assert entry is not None and entry.msg_id == "SM0"


_HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "rb")
fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""
