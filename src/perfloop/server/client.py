"""Uploading to a perfloop server: a stored run (``perfloop run --upload URL --token T``) or
the journal (``perfloop upload --journal``).

The upload id is derived from the run's identity in the local store (host, store, run id,
start time), so retrying, or running the upload again later, never stores the run twice on
the server. The journal goes whole, with an origin id derived from the host and the store:
the server keeps one copy of each entry per origin. Only network failures and server errors
(5xx) are retried; a refusal (4xx) is final and says why.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable
from urllib.parse import quote

import httpx

from ..errors import PerfloopError, UsageError

SERVER_ENV = "PERFLOOP_SERVER"
TOKEN_ENV = "PERFLOOP_TOKEN"
RETRIES = 3
_UPLOAD_NAMESPACE = uuid.UUID("5d0c8a59-2b1e-4f7c-9a55-6f1f2c1d7e10")


class UploadFailed(PerfloopError):
    """The server could not be reached or failed; the run stays in the local store."""

    exit_code = 1


def upload_id_for(store_url: str, run: Any, hostname: str) -> str:
    """A stable id for uploading ``run`` from this store: the same on every retry."""
    key = f"{hostname}|{store_url}|{run.id}|{run.started_at.isoformat()}"
    return str(uuid.uuid5(_UPLOAD_NAMESPACE, key))


def origin_for(store_url: str, hostname: str) -> str:
    """A stable id of this local store, naming where uploaded journal entries come from."""
    return str(uuid.uuid5(_UPLOAD_NAMESPACE, f"journal|{hostname}|{store_url}"))


def journal_payload(store: Any, root: Any, origin: str) -> dict[str, Any]:
    """The JSON body that uploads the store's whole journal and its open release cycle."""
    from ..store import json_ready
    from ..workflows.cycles import status
    from ..workflows.journal import entries

    found = entries(store, root=root)
    state = status(store, root)
    cycles = []
    if state.get("cycle"):
        cycles.append({**state["cycle"], "queue": state.get("queue", []),
                       "health": state.get("health", {})})
    return json_ready({"origin": origin, "entries": [e.to_dict() for e in found],
                       "cycles": cycles})


def run_payload(run: Any, upload_id: str) -> dict[str, Any]:
    """The JSON body that uploads a :class:`~perfloop.store.StoredRun`."""
    from ..store import json_ready

    status = getattr(run.status, "value", run.status)
    return json_ready({
        "upload_id": upload_id, "label": run.label, "commit": run.commit, "branch": run.branch,
        "dirty": run.dirty, "environment": dict(run.environment), "settings": dict(run.settings),
        "started_at": run.started_at, "finished_at": run.finished_at,
        "status": "interrupted" if status == "running" else status,
        "perfloop_version": run.perfloop_version, "hostname": run.hostname,
        "results": [{
            "name": r.name, "kind": r.kind, "status": r.status.value, "params": dict(r.params),
            "units": dict(r.units), "directions": dict(r.directions),
            "warnings": list(r.warnings), "error": r.error, "stderr_tail": r.stderr_tail,
            "duration": r.duration, "extra": dict(r.extra),
            "samples": [{"metric": s.metric, "value": s.value, "worker": s.worker,
                         "index": s.index, "warmup": s.warmup, "loops": s.loops}
                        for s in r.samples]}
            for r in run.results]})


def upload(server: str, token: str, project: str, payload: dict[str, Any], *,
           what: str = "runs", client: httpx.Client | None = None, retries: int = RETRIES,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """POST ``payload`` to the server's ``what`` (runs, or journal) of ``project``; the
    server's answer (for a run: ``run_id``, ``created``). Raises UsageError on a refusal,
    UploadFailed otherwise."""
    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--upload {server}: not an http(s) URL",
                         hint="e.g. --upload http://127.0.0.1:8080")
    if not token:
        raise UsageError("uploading needs a token", hint=f"pass --token or set {TOKEN_ENV} "
                         "(make one with `perfloop token create --scope write`)")
    url = f"{server.rstrip('/')}/api/v1/projects/{quote(project, safe='')}/{what}"
    own = client is None
    http = client or httpx.Client(timeout=60.0)
    last = ""
    try:
        for attempt in range(retries + 1):
            if attempt:
                sleep(min(2.0 ** attempt, 10.0))
            try:
                response = http.post(url, json=payload,
                                     headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as e:
                last = f"cannot reach {server}: {e}"
                continue
            if response.status_code >= 500:
                last = f"the server answered {response.status_code}: {_detail(response)}"
                continue
            if response.status_code >= 400:
                raise UsageError(f"the server refused the upload ({response.status_code}): "
                                 f"{_detail(response)}",
                                 hint="check --token (a write token of this project) and the "
                                      "project name")
            return dict(response.json())
    finally:
        if own:
            http.close()
    raise UploadFailed(f"upload failed after {retries + 1} attempts: {last}",
                       hint=f"the {'run' if what == 'runs' else what} is kept in the local "
                            "store; upload it again later")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:200]
    return detail if isinstance(detail, str) else str(detail)[:500]
