"""`engine serve` latency: DescribeJob and a 1,000-job ListJobs page on one connection.

Run by hand from the repository root::

    .venv/bin/python bench/serve.py            # appends to bench/RESULTS.md
    .venv/bin/python bench/serve.py --no-record

Issue 17.1: every answer waited ~40 ms although the server spent ~1 ms of CPU on it,
because headers and body went out as two small writes and Nagle's algorithm held the
second until the client's delayed ACK. The contender, measured in the same run, is the
same server with Nagle's algorithm left on (as before the change). Requests are signed
SigV4 once per request with botocore's own signer and sent over one keep-alive
http.client connection, so the numbers are the server's, not boto3's client overhead.
Goals: DescribeJob p50 under 3 ms; ListJobs of a 1,000-job page under 15 ms.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from bench.engine import append_results, machine  # noqa: E402
from runner.backends.local import LocalBackend  # noqa: E402
from runner.serve.server import EngineServer  # noqa: E402
from runner.spec.models import LocalTarget  # noqa: E402
from tests.engine.conftest import request  # noqa: E402

KEY, SECRET = "AKIDBENCH", "bench-secret"
CALLS = 200


def _signed(url: str) -> dict[str, str]:
    prepared = AWSRequest(method="GET", url=url)
    S3SigV4Auth(Credentials(KEY, SECRET), "s3", "us-east-1").add_auth(prepared)
    return dict(prepared.headers.items())


def _p50_ms(server: EngineServer, path: str, calls: int) -> tuple[float, float]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    times = []
    for _ in range(calls):
        headers = _signed(server.url + path)
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        answer.read()
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status == 200, answer.status
    connection.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def run() -> list[tuple[str, str, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        local = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), Path(folder))
        ids = [
            local.create_job(request({"untag": {}}, {"generate": {"bucket": "logs"}}))
            for _ in range(1000)
        ]
        for nagle_off in (False, True):
            server = EngineServer(local, {KEY: SECRET})
            server.httpd.RequestHandlerClass.disable_nagle_algorithm = nagle_off  # type: ignore[attr-defined]
            server.start()
            label = "TCP_NODELAY (now)" if nagle_off else "Nagle on (before)"
            try:
                describe = _p50_ms(server, f"/v20180820/jobs/{ids[0]}", CALLS)
                listing = _p50_ms(server, "/v20180820/jobs?maxResults=1000", CALLS // 10)
            finally:
                server.shutdown()
            rows.append((label, "DescribeJob", *describe))
            rows.append((label, "ListJobs, 1,000 jobs", *listing))
        local.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    args = parser.parse_args()
    rows = run()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## serve.py — {stamp}",
        "",
        f"Machine: {machine()}. One keep-alive connection on loopback, requests signed with "
        f"botocore's SigV4 (signing not timed); {CALLS} DescribeJob and {CALLS // 10} "
        "ListJobs calls per row.",
        "",
        "| server | call | p50 ms | p95 ms |",
        "|---|---|---:|---:|",
        *(f"| {a} | {b} | {p50:.2f} | {p95:.2f} |" for a, b, p50, p95 in rows),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        append_results(text)


if __name__ == "__main__":
    main()
