"""The message catalog: shipped templates, an ops override folder, every template checked at start."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from services.wording import times
from services.wording.samples import samples

DEFAULTS = Path(__file__).resolve().parent / "templates"
CHANNELS = ("sms", "email", "voice")
SUFFIX = ".txt"


class WordingError(ValueError):
    """A template that cannot be used; the message starts with the file's path."""


def _timed(format_: Callable[[datetime, ZoneInfo, datetime], str]) -> Callable[..., str]:
    """A filter in the recipient's zone and relative to the injected now, both from the context."""

    @jinja2.pass_context
    def apply(context: jinja2.runtime.Context, instant: datetime) -> str:
        return format_(instant, context["zone"], context["now"])

    return apply


@jinja2.pass_context
def _stamp(context: jinja2.runtime.Context, instant: datetime) -> str:
    return times.stamp(instant, context["zone"])


@jinja2.pass_context
def _clock(context: jinja2.runtime.Context, instant: datetime) -> str:
    return times.clock(instant, context["zone"])


def _tidy(channel: str, text: str) -> str:
    """SMS and voice: one space between words, no blank lines (line breaks in SMS are kept).
    Email: paragraphs kept, at most one blank line between them, no trailing spaces."""
    if channel == "email":
        lines = [line.rstrip() for line in text.strip().splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
    lines = [" ".join(line.split()) for line in text.splitlines()]
    joined = "\n".join(line for line in lines if line)
    return joined.replace("\n", " ") if channel == "voice" else joined


class Wording:
    """Render `<channel>/<kind>` templates; an override folder wins file by file over the defaults."""

    def __init__(self, override: str | Path | None = None) -> None:
        self.override = Path(override) if override else None
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(DEFAULTS))]
        if self.override is not None:
            if not self.override.is_dir():
                raise WordingError(f"{self.override}: not a folder of templates")
            loaders.insert(0, jinja2.FileSystemLoader(str(self.override)))
        # Text, not HTML: autoescape off. StrictUndefined: a misspelt value fails, never prints "".
        # Sandboxed: an override template can format values but not reach into Python objects.
        self.env = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(stamp=_stamp, clock=_clock, by=_timed(times.by), at=_timed(times.at))

    def names(self) -> list[str]:
        """Every message the code can ask for: the shipped templates (partials start with '_')."""
        return sorted(
            f"{path.parent.name}/{path.stem}"
            for path in DEFAULTS.glob(f"*/*{SUFFIX}")
            if not path.name.startswith("_")
        )

    def source(self, name: str) -> str:
        """The file a template comes from (the override's when it has one): errors name it."""
        if self.override is not None and (self.override / f"{name}{SUFFIX}").is_file():
            return str(self.override / f"{name}{SUFFIX}")
        return str(DEFAULTS / f"{name}{SUFFIX}")

    def render(self, name: str, /, *, zone: ZoneInfo, now: datetime, **values: Any) -> str:
        channel = name.split("/", 1)[0]
        try:
            text = self.env.get_template(f"{name}{SUFFIX}").render(zone=zone, now=now, **values)
        except jinja2.TemplateError as exc:
            raise WordingError(f"{self.source(name)}: {exc}") from exc
        return _tidy(channel, text)

    def check(self, samples: Mapping[str, Iterable[Mapping[str, Any]]]) -> int:
        """Render every template against every sample; the first failure names its file.
        Returns how many renders passed."""
        known = set(self.names())
        if self.override is not None:
            for path in sorted(self.override.rglob("*")):
                name = path.relative_to(self.override).with_suffix("").as_posix()
                if path.is_file() and not path.name.startswith("_") and name not in known:
                    raise WordingError(
                        f"{path}: no message of this name (expected one of: {', '.join(sorted(known))})"
                    )
        rendered = 0
        for name in sorted(known):
            if name not in samples:
                raise WordingError(f"{self.source(name)}: no sample data to check it against")
            for values in samples[name]:
                text = self.render(name, **values)
                if not text.strip():
                    raise WordingError(f"{self.source(name)}: renders empty text")
                rendered += 1
        return rendered


def load(override: str | Path | None = None) -> Wording:
    """The catalog a service starts with: a template that fails on the sample data refuses the start."""
    words = Wording(override)
    words.check(samples())
    return words
