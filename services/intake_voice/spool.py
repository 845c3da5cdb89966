"""A disk spool for events NATS did not acknowledge in time: one JSON file per message, written atomically."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

log = logging.getLogger(__name__)

# NATS refuses messages over its max_payload (1 MiB by default). Half of that, plus the JSON envelope,
# keeps every spooled event publishable; intake_voice's 64 KiB body cap keeps real events far below.
MAX_EVENT_BYTES = 512 * 1024
_ENVELOPE = 4096  # subject, msg id and JSON punctuation around the payload


class Spooled(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    msg_id: str
    payload: msgspec.Raw


class Unpublishable(ValueError):
    """An event NATS could never take (over MAX_EVENT_BYTES, a bad subject): neither sent nor spooled."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Spooled)


class Spool:
    def __init__(
        self,
        folder: str | Path,
        *,
        max_bytes: int = MAX_EVENT_BYTES,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.rejected_folder = self.folder / "rejected"
        self.max_bytes = max_bytes
        self.on_reject = on_reject  # counts rejections by reason (a metric); set by the service
        self.rejected = 0

    def path(self, msg_id: str) -> Path:
        # Named by msg id (hashed: ids may hold ':' or '/'); a second spool of one id overwrites itself.
        return self.folder / f"{hashlib.sha256(msg_id.encode()).hexdigest()[:32]}.json"

    def put(self, subject: str, msg_id: str, payload: bytes) -> Path:
        if len(payload) > self.max_bytes:
            raise Unpublishable(f"{subject}: {len(payload)} bytes, at most {self.max_bytes} are spooled")
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(msg_id)
        # Our own temporary name per process and thread: a retried webhook may spool its id twice at once.
        tmp = final.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        data = _encoder.encode(Spooled(subject=subject, msg_id=msg_id, payload=msgspec.Raw(payload)))
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # Readers never see a half-written file: rename is atomic within one folder.
        os.replace(tmp, final)
        return final

    def count(self) -> int:
        """Files waiting, without reading them (for readiness details)."""
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0

    def pending(self) -> list[Path]:
        """Waiting files, oldest first. One that can never be published is moved aside, not skipped
        forever or retried forever: it must not hold up the files behind it, and ops must see it."""
        if not self.folder.is_dir():
            return []
        dated: list[tuple[float, Path]] = []
        for path in self.folder.glob("*.json"):
            try:
                stat = path.stat()
            except OSError:
                continue  # flushed or moved meanwhile
            if stat.st_size > self.max_bytes + _ENVELOPE:
                # Checked before reading: a huge file must not be loaded to find out it is useless.
                self.reject(path, "too_large")
                continue
            dated.append((stat.st_mtime, path))
        return [path for _, path in sorted(dated)]

    @contextlib.contextmanager
    def claim(self, path: Path) -> Iterator[Spooled | None]:
        """The file's event while this process alone holds it, else None (another worker has it, or
        it was published and removed meanwhile).

        Workers share the folder: an exclusive lock on the open file decides who publishes it, and
        the holder removes it before letting go, so no file is published twice by two workers. A
        worker that dies mid-publish drops its lock with it, so no file is stranded either.
        """
        try:
            handle = open(path, "rb")  # noqa: SIM115 (held open across the yield: the lock lives on it)
        except OSError:
            yield None  # flushed or moved meanwhile
            return
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None  # another worker is publishing it right now
                return
            # The lock may come just after the holder removed (or a retry replaced) the file: only the
            # file still at `path` counts.
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(handle.fileno()).st_ino:
                yield None
                return
            try:
                entry = _decoder.decode(handle.read())
            except msgspec.DecodeError:
                self.reject(path, "undecodable")
                yield None
                return
            if not entry.subject or not entry.msg_id.isprintable() or not entry.msg_id:
                self.reject(path, "undecodable")
                yield None
                return
            yield entry

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def reject(self, path: Path, reason: str) -> None:
        """Move a file that cannot be published to rejected/ (kept for an operator), log and count it."""
        self.rejected_folder.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, self.rejected_folder / path.name)
        except FileNotFoundError:
            return  # another flush got there first
        self.rejected += 1
        log.error(
            "spooled event can never be published; moved aside",
            extra={"file": str(self.rejected_folder / path.name), "reason": reason},
        )
        if self.on_reject is not None:
            self.on_reject(reason)
