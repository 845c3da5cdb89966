"""One SMTP connection: session caps, refusals counted by code, aiosmtpd's per-connection costs cut."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

from services.intake_email.dataphase import DataPhase

if TYPE_CHECKING:
    from services.intake_email.app import Intake

# aiosmtpd's own wording for size errors, rewritten to the enhanced status codes clients expect.
_REWRITES = {
    "552 Error: Too much mail data": "552 5.3.4 Message too big",
    "552 Error: message size exceeds fixed maximum message size": "552 5.3.4 Message too big",
}


# <local@domain> in dot-atoms only: aiosmtpd's header parser reads exactly these characters back.
_PLAIN_PATH = re.compile(
    r"[ \t]*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
)
# Per class, the names aiosmtpd's SMTP.__init__ looks for in dir(): its commands, AUTH mechanisms, hooks.
_HOOK_NAMES: dict[type, list[str]] = {}


def hook_names(cls: type) -> list[str]:
    names = _HOOK_NAMES.get(cls)
    if names is None:
        names = _HOOK_NAMES[cls] = sorted(n for n in dir(cls) if n.startswith(("smtp_", "auth_", "handle_")))
    return names


# More than the reader can ever hold (it pauses the socket past twice its line limit, and one receive
# adds at most 256 KiB), so each read takes all it has and a pipelined rest can be given back.
_DRAIN = 1 << 24


class BlockData(SMTP):
    """aiosmtpd's SMTP with DATA read in blocks and one idle timer per connection; same replies.

    aiosmtpd reads DATA with a `readuntil` per line and cancels and re-creates its idle timer on every
    command: with the greeting and QUIT, most of a small mail's server time. The limits (data size, line
    length, idle timeout) and every reply stay as they were; the idle timeout now also counts from the
    last DATA bytes received, so a big message on a slow link is not cut while it is still flowing
    (aiosmtpd allowed the whole DATA phase one idle timeout), until the message is refused.
    """

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._deadline = 0.0

    def _reset_timeout(self, duration: float | None = None) -> None:
        # Moving the deadline later is a float store: the one timer re-arms itself when it fires early.
        # Only an earlier deadline (aiosmtpd's shorter PROXY-header timeout) needs the timer moved.
        self._deadline = self.loop.time() + (duration or self._timeout_duration)
        armed = self._timeout_handle
        if armed is None or self._deadline < armed.when():
            if armed is not None:
                armed.cancel()
            self._timeout_handle = self.loop.call_at(self._deadline, self._idle_check)

    def _idle_check(self) -> None:
        if self.loop.time() < self._deadline:
            self._timeout_handle = self.loop.call_at(self._deadline, self._idle_check)
        elif self.transport is not None:
            self.transport.close()  # as aiosmtpd's own timeout does; connection_lost cleans up

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if self._decode_data:
            await super().smtp_DATA(arg)  # a str content is aiosmtpd's own business
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        phase = DataPhase(self.data_size_limit, self.line_length_limit)
        rest = None
        try:
            while rest is None:
                chunk = await self._reader.read(_DRAIN)
                if not chunk:
                    self._writer.close()  # the client is gone: there is nobody to answer
                    return
                if phase.state == "nominal":
                    # Still a message worth waiting for; once it is refused, the idle timeout runs from
                    # the refusal, so a client streaming on past the size limit cannot hold the session.
                    self._reset_timeout()
                rest = phase.feed(chunk)
        except asyncio.CancelledError:
            self._writer.close()  # the connection was reset during DATA
            raise
        if rest and not self._reader.at_eof():
            # Commands the client sent right behind the data: the command loop reads them next.
            self._reader.feed_data(rest)
        if phase.state != "nominal":
            self.envelope = self._create_envelope()  # a fresh transaction, as after any DATA
            too_long = phase.state == "too_long"
            await self.push(
                "500 Line too long (see RFC5321 4.5.3.1.6)" if too_long else "552 Error: Too much mail data"
            )
            return
        self.envelope.content = self.envelope.original_content = phase.content()
        status = await self._call_handler_hook("DATA") if "DATA" in self._handle_hooks else MISSING
        self.envelope = self._create_envelope()
        await self.push("250 OK" if status is MISSING else status)


class Connection(BlockData):
    """One SMTP connection, counted against max_sessions and max_sessions_per_ip."""

    def __dir__(self) -> list[str]:
        # SMTP.__init__ runs inspect.getmembers(self) and dir(self) on every connection to find those
        # names, which was about a tenth of the intake's CPU: they are the class's, so list them once.
        return hook_names(type(self))

    def __init__(self, intake: Intake, **kwargs: Any) -> None:
        super().__init__(intake, **kwargs)
        self.intake = intake
        self._slot: str | None = None  # the client IP holding a slot, once counted

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """SMTP._getaddr (the address of MAIL FROM and RCPT TO, and what follows it), answered faster.

        aiosmtpd's builds a typing.Protocol class on every call and runs the header parser even for a
        plain <local@domain>: about a tenth of the intake's CPU. A plain address (and the parameters
        after it) is read directly; anything else goes to aiosmtpd's own code, as before.
        """
        plain = _PLAIN_PATH.match(arg)
        if plain is not None:
            address, rest = plain.group(1), arg[plain.end() :]
            if rest[:1] in (" ", "\t"):
                rest = rest.lstrip()  # as the parser's folding-whitespace rule strips it
            local = address.rpartition("@")[0]
            # A comment after the address is the parser's to read; so is a local part over the limit.
            if not rest.startswith("(") and not (
                self.local_part_limit and len(local) > self.local_part_limit
            ):
                return address, rest
        return super()._getaddr(arg)

    def connection_made(self, transport: Any) -> None:
        first = self._slot is None and getattr(self, "_original_transport", None) is None
        super().connection_made(transport)
        if not first:
            return
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        refusal = self.intake.slots.take(client)
        if refusal is not None:
            # Refuse before the greeting is sent; the client retries later.
            if self._handler_coroutine is not None:
                self._handler_coroutine.cancel()
            transport.write(refusal.encode() + b"\r\n")
            transport.close()
            return
        self._slot = client

    def connection_lost(self, error: Exception | None) -> None:
        if self._slot is not None:
            self.intake.slots.give_back(self._slot)
            self._slot = None
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = _REWRITES.get(status, status)
            # Every refusal, whichever hook or limit produced it, passes here: count it by reply code.
            if status[:1] in ("4", "5") and status[3:4] == " ":
                self.intake.metrics.messages_refused.labels(" ".join(status.split()[:2])).inc()
        await super().push(status)
