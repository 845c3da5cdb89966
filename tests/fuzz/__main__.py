"""`python -m tests.fuzz [libFuzzer flags]`: fuzz intake_email's parse-and-build path from fresh seeds."""

from __future__ import annotations

import base64
import shutil
import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

# Imported under instrumentation so libFuzzer sees coverage of our parser and of the stdlib email and
# html packages it drives; modules imported before this block would be opaque to it.
with atheris.instrument_imports(include=["services", "email", "html", "tests"]):
    from tests.fuzz.target import publishable, write_seeds

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".data" / "fuzz"
# Tokens the mutator splices in; mail structure hangs on them and random bytes rarely spell them.
TOKENS = (
    "From:",
    "Sender:",
    "Return-Path:",
    "Subject:",
    "Date:",
    "Message-ID:",
    "In-Reply-To:",
    "References:",
    "MIME-Version: 1.0",
    "Content-Type:",
    "Content-Transfer-Encoding:",
    "Content-Disposition:",
    "Content-ID:",
    "Auto-Submitted:",
    "Precedence:",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/report",
    "report-type=delivery-status",
    "message/rfc822",
    "message/delivery-status",
    "text/rfc822-headers",
    "text/html",
    "text/plain",
    "boundary=",
    "charset=",
    "name=",
    "filename=",
    "filename*=utf-8''",
    "attachment",
    "inline",
    "base64",
    "quoted-printable",
    "x-uuencode",
    "=?utf-8?q?",
    "=?utf-8?b?",
    "=?iso-2022-jp?B?",
    "?=",
    "\r\n--",
    "--\r\n",
    "\r\n\r\n",
    "<a@b>",
    "[SR-1-",
)


def main() -> None:
    corpus = WORK / "corpus"
    artifacts = WORK / "artifacts"
    # A fresh corpus each run: a bounded run starts from the same seeds on every machine.
    shutil.rmtree(corpus, ignore_errors=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    count = write_seeds(corpus)
    dictionary = WORK / "email.dict"
    dictionary.write_text("".join(f"{_quoted(t)}\n" for t in TOKENS))
    print(f"fuzz: {count} seeds in {corpus}", flush=True)
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    defaults = {
        "-max_len": "16384",
        # Far above any parse of 16 KB; only a pathological (e.g. backtracking) input trips it, and
        # such an input would outlive intake's 5 s publish timeout and be answered 451 forever.
        "-timeout": "10",
        "-dict": str(dictionary),
        "-artifact_prefix": f"{artifacts}/",
        "-print_final_stats": "1",
    }
    given = {f.split("=", 1)[0] for f in flags}
    flags += [f"{k}={v}" for k, v in defaults.items() if k not in given]
    # Regex and str.startswith/endswith comparisons become hints for the mutator.
    atheris.enabled_hooks.add("RegEx")
    atheris.enabled_hooks.add("str")
    atheris.Setup([sys.argv[0], *flags, str(corpus)], _one_input)
    atheris.Fuzz()


def _quoted(token: str) -> str:
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\x{ord(c):02x}" for c in token)
    return f'"{escaped}"'


def _one_input(data: bytes) -> None:
    try:
        publishable(data)
    except BaseException:
        # CI keeps no artifacts: the input in the log is what lets someone replay a crash elsewhere.
        print(f"fuzz: failing input (base64): {base64.b64encode(data).decode()}", file=sys.stderr, flush=True)
        raise


if __name__ == "__main__":
    main()
