"""The cost of keeping the ledger in a bucket: writes and reads of ledger.json on SeaweedFS.

Run by hand from the repository root::

    .venv/bin/python bench/state.py            # appends to bench/RESULTS.md
    .venv/bin/python bench/state.py --no-record

A pass that creates N jobs writes twice per job: the record (a conditional PUT of its
shard) and the history entry (a conditional PUT of that month's history document).
Measured for ledgers that already hold 0, 1,000, 10,000 and 50,000 records (and as many
history entries, this month): the time per record write and per history entry, the time
to read the ledger cold and warm, the number of shards and the largest. Goal (issue
17.5): ms per record write at 50,000 within 2x of at 1,000.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402

from bench.engine import machine  # noqa: E402
from runner.jobs.status import JobStatus  # noqa: E402
from runner.reconcile.model import LedgerRecord  # noqa: E402
from runner.state.ledger.bucket import S3Ledger  # noqa: E402
from tests.servers import CREDENTIALS, seaweedfs  # noqa: E402

WRITES = 100


def _record(i: int) -> LedgerRecord:
    return LedgerRecord(
        target="prod",
        name=f"job-{i:05d}",
        generation=1,
        job_id=str(uuid.uuid4()),
        spec_hash="0123456789abcdef",
        status=JobStatus.COMPLETE,
        created=time.time(),
        immutable='{"manifest":{"generate":{"bucket":"logs"}},"operation":{"tag":{}}}',
    )


def run(endpoint: str, existing: int) -> dict[str, float]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    ledger = S3Ledger(client, bucket, "team/ledger.json")
    if existing:
        ledger.import_all(
            [_record(i) for i in range(existing)],
            [
                {
                    "at": time.time(),
                    "target": "prod",
                    "name": f"job-{i:05d}",
                    "action": "create",
                    "jobId": None,
                    "detail": "new spec",
                }
                for i in range(existing)
            ],
        )
    started = time.perf_counter()
    S3Ledger(client, bucket, "team/ledger.json").records()  # another process: nothing cached
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(WRITES):
        ledger.record(_record(existing + i))
    write = (time.perf_counter() - started) / WRITES
    started = time.perf_counter()
    for i in range(WRITES):
        ledger.note("prod", f"job-{existing + i:05d}", "create", None, "new spec")
    note = (time.perf_counter() - started) / WRITES
    started = time.perf_counter()
    reads = 5
    for _ in range(reads):
        ledger.records()
    read = (time.perf_counter() - started) / reads
    shards = client.list_objects_v2(Bucket=bucket, Prefix="team/ledger.json.d/").get("Contents", [])
    client.close()
    return {
        "existing": existing,
        "write_ms": write * 1000,
        "note_ms": note * 1000,
        "cold_read_ms": cold * 1000,
        "read_ms": read * 1000,
        "shards": len(shards),
        "kib": max((o["Size"] for o in shards), default=0) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as data, seaweedfs(Path(data)) as endpoint:
        for existing in (0, 1_000, 10_000, 50_000):
            rows.append(run(endpoint, existing))
            print(rows[-1])
    if args.no_record:
        return
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## state.py — {stamp}\n",
        f"Machine: {machine()}. SeaweedFS (`weed mini`) on loopback on the same cores. "
        f"{WRITES} record writes and {WRITES} history entries onto a ledger that already "
        "holds N records and N history entries (this month's); reads: in a process that has "
        "read nothing (cold: lists the shards, GETs all), and again in the same (warm: GETs "
        "only shards whose ETag changed).\n",
        "| records before | ms per record write | ms per history entry | cold read ms "
        "| warm read ms | shards | largest shard KiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {int(row['existing']):,} | {row['write_ms']:.1f} | {row['note_ms']:.1f} | "
            f"{row['cold_read_ms']:.0f} | {row['read_ms']:.1f} | {int(row['shards'])} | "
            f"{row['kib']:,.0f} |"
        )
    with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
