"""A disk spool for events NATS did not acknowledge in time: one JSON file per message, written atomically."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import msgspec


class Spooled(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    msg_id: str
    payload: msgspec.Raw


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Spooled)


class Spool:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, msg_id: str) -> Path:
        # Named by msg id (hashed: ids may hold ':' or '/'); a second spool of one id overwrites itself.
        return self.folder / f"{hashlib.sha256(msg_id.encode()).hexdigest()[:32]}.json"

    def put(self, subject: str, msg_id: str, payload: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(msg_id)
        tmp = final.with_suffix(f".{os.getpid()}.tmp")
        data = _encoder.encode(Spooled(subject=subject, msg_id=msg_id, payload=msgspec.Raw(payload)))
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # Readers never see a half-written file: rename is atomic within one folder.
        os.replace(tmp, final)
        return final

    def pending(self) -> list[tuple[Path, Spooled]]:
        if not self.folder.is_dir():
            return []
        entries: list[tuple[Path, Spooled]] = []
        for path in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                entries.append((path, _decoder.decode(path.read_bytes())))
            except (OSError, msgspec.DecodeError):
                continue  # vanished or foreign file: leave it for an operator
        return entries

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
