"""The team server's speed: upload throughput, and the latency of a benchmark's history page.

For each backend (SQLite always; PostgreSQL when PERFLOOP_TEST_POSTGRES_URL is set, in a
schema of its own, dropped afterwards) the server app is driven in-process through FastAPI's
TestClient (the HTTP parsing, validation and the store's transaction; no network):

- uploads: ``--uploads`` runs of ``--results`` benchmarks x ``--samples`` samples, one request
  each; runs/s and samples/s over the batch (median of ``--repeat`` batches);
- history: a benchmark with ``--history-runs`` stored runs (written through the store's
  upload API, not timed), then ``GET /projects/P/benchmarks/NAME`` ``--repeat`` times; median
  wall time, and median CPU time of this process (the server's work, for the most part: on a
  shared machine the wall time also counts the time other processes held the cores).

    python benchmarks/server.py --uploads 100 --history-runs 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from perfloop.records import BenchmarkResult, RunStatus, Sample
from perfloop.server.app import create_app
from perfloop.store import Store
from perfloop.store.server_tables import UploadedRun

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def body(upload_id: str, results: int, samples: int, rng: random.Random) -> dict[str, Any]:
    return {"upload_id": upload_id, "label": "bench", "commit": uuid.uuid4().hex[:40],
            "branch": "main", "environment": {"cpu": "bench"}, "status": "complete",
            "started_at": START.isoformat(), "finished_at": START.isoformat(),
            "results": [{"name": f"b{i}", "kind": "callable",
                         "samples": [{"metric": "wall_time", "value": rng.random(),
                                      "worker": j % 4, "index": j} for j in range(samples)]}
                        for i in range(results)]}


def fill_history(url: str, runs: int) -> None:
    rng = random.Random(1)
    with Store.open(url) as store:
        for k in range(runs):
            level = 0.01 * (1.2 if k >= runs // 2 else 1.0)
            result = BenchmarkResult(name="hist", kind="callable", status="ok", samples=tuple(
                Sample("wall_time", level * (1 + rng.gauss(0, 0.01)), worker=w, index=i)
                for w in range(3) for i in range(5)))
            at = START + timedelta(minutes=k)
            store.store_upload("shop", f"hist-{k}", UploadedRun(
                label=None, commit=f"{k:040x}", branch="main", dirty=False,
                environment={"cpu": "bench"}, settings={}, started_at=at, finished_at=at,
                status=RunStatus.COMPLETE, results=[result]))


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    with Store.open(url) as store:
        token = store.create_token(project="shop", scope="write")
    client = TestClient(create_app(url, public_projects=["shop"]))
    rng = random.Random(0)
    auth = {"Authorization": f"Bearer {token}"}
    rates = []
    for batch in range(args.repeat):
        bodies = [body(f"upload-{batch}-{i:06d}", args.results, args.samples, rng)
                  for i in range(args.uploads)]
        t0 = time.perf_counter()
        for b in bodies:
            assert client.post("/api/v1/projects/shop/runs", json=b, headers=auth).status_code == 201
        rates.append(args.uploads / (time.perf_counter() - t0))
    fill_history(url, args.history_runs)
    latencies = []
    cpu = []
    size = 0
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        page = client.get("/projects/shop/benchmarks/hist")
        latencies.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert page.status_code == 200
        size = len(page.content)
    runs_per_s = statistics.median(rates)
    return {"runs_per_s": runs_per_s, "samples_per_s": runs_per_s * args.results * args.samples,
            "history_page_s": statistics.median(latencies),
            "history_page_cpu_s": statistics.median(cpu), "history_page_bytes": size}


def backends(tmp: Path) -> Iterator[tuple[str, str]]:
    yield "sqlite", f"sqlite:///{tmp / 'server.db'}"
    base = os.environ.get("PERFLOOP_TEST_POSTGRES_URL")
    if not base:
        return
    schema = f"perfloop_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield "postgresql", url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--results", type=int, default=10)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--history-runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.uploads} "
          f"uploads of {args.results} results x {args.samples} samples; history of "
          f"{args.history_runs} runs")
    print("| backend | runs/s | samples/s | history page, wall | history page, CPU | page size |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in backends(Path(tmp)):
            r = measure(url, args)
            print(f"| {name} | {r['runs_per_s']:.1f} | {r['samples_per_s']:,.0f} | "
                  f"{r['history_page_s'] * 1000:.0f} ms | "
                  f"{r['history_page_cpu_s'] * 1000:.0f} ms | "
                  f"{r['history_page_bytes'] / 1e6:.1f} MB |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
