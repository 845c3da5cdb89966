"""CPU per parsed message (the benchmark mix, the shared corpus) and for big bodies; `python -m bench.parse`.

In-process and single-threaded: `time.process_time` counts only this process's CPU, so other work on a
shared machine shows up far less than in wall-clock numbers. Each figure is the best of a few repeats.
Flags: `--sizes 67,271,1024,5120` (big-body sizes in KB), `--repeats N`, `--mix N` (messages in the mix).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

from bench import load
from services.intake_email.mail import parse, trim_reply

SECRET = b"bench-secret"
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
# One reply paragraph, an inline-quoted block and more reply below it: nothing here ends the message,
# so the reply trimmer has to look at every line (the case that used to be quadratic in the line count).
BLOCK = (
    "The printer on floor 3 shows error 50.4 after every third page again.\n"
    "We already power-cycled it twice and replaced the fuser last week.\n"
    "\n"
    "> Did you try the firmware update from the vendor's site?\n"
    "> It fixed the same error on the second floor.\n"
    "\n"
    "Yes, it is on 2.31 now; the error is still there this morning.\n"
    "\n"
)


def best_cpu(fn: Callable[[], object], repeats: int) -> float:
    """The least CPU seconds one call of `fn` took over `repeats` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def big_mail(kb: int) -> bytes:
    body = BLOCK * (kb * 1024 // len(BLOCK) + 1)
    head = "From: Client <client@acme.example>\nSubject: Long thread\nMessage-ID: <big@acme.example>\n"
    return (head + "Content-Type: text/plain; charset=utf-8\n\n" + body).encode()


def per_message_ms(messages: list[bytes], repeats: int) -> float:
    def run() -> None:
        for raw in messages:
            parse(raw, secret=SECRET)

    return best_cpu(run, repeats) / len(messages) * 1000


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--sizes", default="67,271,1024,5120", help="big-body sizes in KB, comma-separated")
    args.add_argument("--repeats", type=int, default=5)
    args.add_argument("--mix", type=int, default=200)
    opts = args.parse_args()
    results: dict[str, object] = {}
    mix = load.message_mix(opts.mix)
    parse(mix[0], secret=SECRET)  # warm caches and lazy imports outside the measurement
    results["mix_cpu_ms_per_msg"] = round(per_message_ms(mix, opts.repeats), 3)
    corpus = sorted(p for p in CORPORA.rglob("*") if p.is_file()) if CORPORA.is_dir() else []
    if corpus:
        raws = [p.read_bytes() for p in corpus]
        results["corpus_files"] = len(raws)
        results["corpus_cpu_ms_per_msg"] = round(per_message_ms(raws, max(1, opts.repeats // 2)), 3)
    big: dict[str, float] = {}
    for kb in (int(s) for s in opts.sizes.split(",") if s.strip()):
        raw = big_mail(kb)
        # The big bodies must really be kept whole: a trimmer that cut them early would measure nothing.
        assert len(parse(raw, secret=SECRET).body) > len(raw) // 2
        repeats = opts.repeats if kb <= 1024 else 1
        big[f"{kb}KB_parse_s"] = round(best_cpu(functools.partial(parse, raw, secret=SECRET), repeats), 4)
        big[f"{kb}KB_trim_reply_s"] = round(best_cpu(functools.partial(trim_reply, raw.decode()), repeats), 4)
    results["big_bodies"] = big
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
