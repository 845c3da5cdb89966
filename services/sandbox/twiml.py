"""TwiML parsing into the verbs the call driver follows (pure, no I/O)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import msgspec


class Verb(msgspec.Struct, frozen=True):
    name: str  # Gather, Record, Redirect, Dial, Hangup, Say, ...
    attrs: dict[str, str]
    text: str  # the element's text (Redirect URL, Dial number, Say words)


class TwimlError(ValueError):
    pass


def parse(document: str) -> list[Verb]:
    """Top-level verbs of a <Response>; nested <Say> inside <Gather> is only prompt audio."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise TwimlError(f"invalid TwiML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"TwiML root is <{root.tag}>, expected <Response>")
    verbs = []
    for element in root:
        text = "".join(element.itertext()).strip()
        verbs.append(Verb(element.tag, dict(element.attrib), text))
    return verbs
