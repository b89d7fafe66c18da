"""A run read while another process is still writing it is consistent: every result with all
its samples, its result count matching its results, labelled ``running`` until it is complete.

On PostgreSQL each statement of a READ COMMITTED transaction sees its own snapshot, so a reader
that fetched a run's results and then their samples could see samples of a result it had not
fetched (a raw KeyError). One writer process and several reader threads look for that window.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from perfloop.records import RunStatus
from perfloop.store import Store

pytestmark = pytest.mark.slow

RESULTS = 40

WRITER = textwrap.dedent("""
    import sys
    from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
    from perfloop.store import Store

    with Store.open(sys.argv[1]) as store:
        run_id = store.begin_run(label="in-flight", commit=None, branch=None, dirty=False,
                                 environment={"cpu": "x"}, settings={}, project="p")
        print(run_id, flush=True)
        sys.stdin.readline()          # the readers are ready
        for i in range(RESULTS):
            samples = tuple(Sample("wall_time", 1.0 + j, worker=j % 4, index=j) for j in range(100 + i))
            store.add_result(run_id, BenchmarkResult(name=f"b{i}", kind="callable",
                                                     status=ResultStatus.OK, samples=samples))
        store.finish_run(run_id, RunStatus.COMPLETE)
    """).replace("RESULTS", str(RESULTS))


def test_readers_see_a_consistent_run_while_a_writer_adds_results(any_store_url: str) -> None:
    Store.open(any_store_url).close()      # migrate once, before the processes race
    writer = subprocess.Popen([sys.executable, "-c", WRITER, any_store_url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    run_id = int(writer.stdout.readline())
    problems: list[str] = []
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def read() -> None:
        with Store.open(any_store_url, reap=False) as store:
            while True:
                last = done.is_set()
                try:
                    run = store.get_run(run_id)
                except Exception as exc:   # the bug this test is about: a raw KeyError
                    problems.append(f"{type(exc).__name__}: {exc}")
                    return
                seen.append((str(getattr(run.status, "value", run.status)), len(run.results)))
                if run.n_results not in (None, len(run.results)) and not (run.n_results == 0 and not run.results):
                    problems.append(f"n_results {run.n_results} but {len(run.results)} results")
                for result in run.results:
                    expected = 100 + int(result.name[1:])
                    if len(result.samples) != expected:
                        problems.append(f"{result.name}: {len(result.samples)} of {expected} samples")
                if last:
                    return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    writer.stdin.write("go\n")
    writer.stdin.flush()
    assert writer.wait(timeout=300) == 0
    done.set()
    for thread in readers:
        thread.join(timeout=300)
    assert not problems, problems[:5]
    # the readers saw it in flight (labelled running) and, at the end, complete
    assert any(status == RunStatus.RUNNING.value for status, _ in seen)
    assert seen[-1] == (RunStatus.COMPLETE.value, RESULTS) or (RunStatus.COMPLETE.value, RESULTS) in seen
