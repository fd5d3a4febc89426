"""One ingest shard as the supervisor runs it: `manage.py run_ingest --shard I/N` with a heartbeat.

    python -m abusewatch.ingest_shard --shard 1/2

The Celery workers beat from a Celery signal (abusewatch.celery). The ingest command is no
Celery worker, and it lives in `detection`, below this package, so it cannot import
abusewatch.heartbeat. Run through this module, shard I beats as `ingest-I@host`: a shard whose
whole process stops (SIGSTOP, a stuck interpreter) is counted as hung by /healthz and killed and
restarted by the supervisor, as a hung worker is. One stuck camera is not a hung shard: the
reader's own read timeout and reconnect handle that.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

BEAT_PREFIX = "ingest-"


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` as (I, N); ValueError with a message a person can act on otherwise."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes INDEX/COUNT, as in 0/2, not {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"--shard needs 0 <= INDEX < COUNT, not {text!r}")
    return index, count


def beat_name(index: int, host: str | None = None) -> str:
    return f"{BEAT_PREFIX}{index}@{host or socket.gethostname()}"


def forget_retired_shards(client: Any, *, count: int, host: str | None = None) -> list[str]:
    """Remove this host's shard beats of indexes >= `count` (INGEST_SHARDS was lowered, or the
    core count changed): no process will beat under those names again, and /healthz would count
    their stale entries as hung shards for ever. Returns the names removed."""
    from abusewatch.heartbeat import heartbeat_key

    suffix = f"@{host or socket.gethostname()}"
    retired = []
    for raw in client.hkeys(heartbeat_key()):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not (name.startswith(BEAT_PREFIX) and name.endswith(suffix)):
            continue
        index = name[len(BEAT_PREFIX) : -len(suffix)]
        if not index.isdigit() or int(index) >= count:
            retired.append(name)
    if retired:
        client.hdel(heartbeat_key(), *retired)
    return retired


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shard", default="0/1", help="INDEX/COUNT, as for run_ingest")
    args = parser.parse_args(argv)
    try:
        index, _count = parse_shard(args.shard)
    except ValueError as error:
        parser.error(str(error))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusewatch.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from abusewatch import heartbeat

    name = beat_name(index)
    heartbeat.start(name)
    try:
        call_command("run_ingest", shard=args.shard)
    finally:
        # A clean stop removes the entry; a killed shard's stays until its successor beats.
        heartbeat.stop(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
