"""The poller's own poll function, N times in one process, against the fake upstream: does its RSS grow?

    .venv/bin/python bench/poll_loop.py --polls 10000     # run by bench/run.py, environment from it

`manage.py poll` waits at least 10 s between polls, so 10,000 polls of the
real loop would take more than a day. This calls what the loop calls for
each poll, `Command.poll_once()` (fetch over HTTP, store in one transaction),
back to back for every configured provider in turn, and prints one JSON
line: the RSS after the first round of polls and at every tenth of the run.
"""

from __future__ import annotations

import argparse
import io
import json
import os

import django
from common import rss_kib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--polls", type=int, default=10_000)
    args = parser.parse_args()

    django.setup()
    from quotas import providers
    from quotas.management.commands.poll import Command

    chosen = providers.configured()
    command = Command(stdout=io.StringIO(), stderr=io.StringIO())
    marks = {max(args.polls * i // 10, len(chosen)) for i in range(1, 11)} | {len(chosen)}
    rss: list[tuple[int, int]] = []
    failed = 0
    for done in range(1, args.polls + 1):
        if not command.poll_once(chosen[done % len(chosen)]):
            failed += 1
        if done in marks:
            rss.append((done, rss_kib(os.getpid())))
    print(json.dumps({"polls": args.polls, "failed": failed, "rss_kib": rss}))


if __name__ == "__main__":
    main()
