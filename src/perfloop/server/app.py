"""The team server's HTTP API (FastAPI): upload runs with a write token, read them back.

::

    POST /api/v1/projects/{project}/runs        write token; body: RunUpload -> {run_id, created}
    GET  /api/v1/projects/{project}/runs        read token (or public project): newest first
    GET  /api/v1/projects/{project}/runs/{id}   read token: the run with results and samples
    POST /api/v1/projects/{project}/journal     write token; body: JournalUpload -> what changed
    GET  /api/v1/projects/{project}/journal     read token: the uploaded entries, newest first

Tokens travel as ``Authorization: Bearer <token>``; a revoked token is refused like an unknown
one. The OpenAPI description is at ``/openapi.json`` (and browsable at ``/docs``). Request
bodies over ``max_body`` bytes get 413 before any of them is parsed; every refusal stores
nothing.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Iterable

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import RefNotFound, StoreError
from ..store import Store
from ..store.server_tables import UploadConflict
from .dashboard import add_dashboard
from .schemas import (JournalOut, JournalUpload, RunOut, RunSummaryOut, RunUpload,
                      UploadOut)

DEFAULT_MAX_BODY = 32 * 1024 * 1024   # bytes; a run of 2,000 benchmarks x 100 samples is ~20 MB
PROJECT = Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._\-]+$",
               description="The project's name, as its tokens were made for.")



class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with 413, before the app
    reads any of it (by its Content-Length) or as soon as a streamed body passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(status_code=413, content={
            "detail": f"request body too large: the limit is {self.limit} bytes",
            "hint": "upload fewer results or samples per request"})
        await response(scope, receive, send)


def create_app(store_url: str, *, max_body: int = DEFAULT_MAX_BODY,
               public_projects: Iterable[str] = ()) -> FastAPI:
    """The server's ASGI application, on the store at ``store_url`` (migrated on start).

    Projects in ``public_projects`` can be read without a token; writing always needs one.
    """
    store = Store.open(store_url, reap=False)
    public = frozenset(public_projects)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="perfloop server", version=__version__, lifespan=lifespan,
                  description="Upload benchmark runs and read a project's history.")
    app.state.store = store
    app.add_middleware(BodyLimit, limit=max_body)
    bearer = HTTPBearer(auto_error=False)

    def authorize(scope: str) -> Callable[..., None]:
        def check(project: str = PROJECT,
                  credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
            if scope == "read" and project in public:
                return
            if credentials is None or credentials.scheme.lower() != "bearer":
                raise HTTPException(401, "a token is needed: send Authorization: Bearer TOKEN",
                                    headers={"WWW-Authenticate": "Bearer"})
            if store.check_token(credentials.credentials, project=project, scope=scope) is None:
                # the same answer for an unknown token, another project's, or a read token
                # writing: which of them it was is not the caller's to learn
                raise HTTPException(403, f"this token may not {scope} project {project!r}")
        return check

    _add_error_handlers(app)

    @app.post("/api/v1/projects/{project}/runs", response_model=UploadOut, status_code=201,
              dependencies=[Depends(authorize("write"))],
              responses={200: {"model": UploadOut, "description": "a retry: already stored"},
                         401: {}, 403: {}, 409: {}, 413: {}})
    async def upload_run(upload: RunUpload, project: str = PROJECT) -> JSONResponse:
        """Store a finished run, all or nothing, once per ``upload_id``."""
        try:
            run = upload.to_uploaded()
        except ValueError as e:
            raise HTTPException(422, f"invalid run: {e}") from None
        outcome = await run_in_threadpool(store.store_upload, project, upload.upload_id, run)
        return JSONResponse(status_code=201 if outcome.created else 200,
                            content={"run_id": outcome.run_id, "created": outcome.created})

    @app.get("/api/v1/projects/{project}/runs", response_model=list[RunSummaryOut],
             dependencies=[Depends(authorize("read"))])
    def list_runs(project: str = PROJECT, limit: int = Query(50, ge=1, le=1000),
                  offset: int = Query(0, ge=0, le=10**9)) -> list[dict[str, Any]]:
        """The project's runs, newest first."""
        return [_summary(r) for r in store.project_runs(project, limit=limit, offset=offset)]

    @app.get("/api/v1/projects/{project}/runs/{run_id}", response_model=RunOut,
             dependencies=[Depends(authorize("read"))], responses={404: {}})
    def get_run(run_id: int = Path(ge=1, le=2**63 - 1), project: str = PROJECT) -> dict[str, Any]:
        """One run of the project, with its environment, settings, results and samples."""
        if store.run_project(run_id) != project:
            raise HTTPException(404, f"project {project!r} has no run {run_id}")
        try:
            run = store.get_run(run_id)
        except RefNotFound:
            raise HTTPException(404, f"project {project!r} has no run {run_id}") from None
        return {**_summary(run), "environment_data": dict(run.environment),
                "settings": dict(run.settings), "perfloop_version": run.perfloop_version,
                "hostname": run.hostname,
                "benchmarks": [_result(r) for r in run.results]}

    _add_journal_routes(app, store, authorize)
    add_dashboard(app, store, public)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Invalid requests and store errors as JSON answers with their status."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        # Said without echoing the input: it may be large, or hold NaN, which JSON cannot carry.
        problems = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
                     "type": str(e.get("type", ""))} for e in error.errors()[:50]]
        return JSONResponse(status_code=422, content={"detail": problems})

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, error: StoreError) -> JSONResponse:
        status = 409 if isinstance(error, UploadConflict) else 503
        return JSONResponse(status_code=status,
                            content={"detail": str(error), "hint": error.hint or ""})


def _add_journal_routes(app: FastAPI, store: Store, authorize: Callable[[str], Callable[..., None]]) -> None:
    """Upload a store's journal, and read a project's."""

    @app.post("/api/v1/projects/{project}/journal", response_model=JournalOut,
              dependencies=[Depends(authorize("write"))],
              responses={401: {}, 403: {}, 413: {}})
    async def upload_journal(upload: JournalUpload, project: str = PROJECT) -> dict[str, int]:
        """Store a store's whole journal and its open cycle, in one transaction; sending the
        same journal again changes nothing."""
        entries = [_entry(e) for e in upload.entries]
        cycles = [c.model_dump() for c in upload.cycles]
        outcome = await run_in_threadpool(store.store_journal, project, upload.origin, entries,
                                          cycles)
        return outcome.to_dict()

    @app.get("/api/v1/projects/{project}/journal", response_model=list[dict[str, Any]],
             dependencies=[Depends(authorize("read"))])
    def read_journal(project: str = PROJECT, limit: int = Query(200, ge=1, le=10_000)
                     ) -> list[dict[str, Any]]:
        """The project's uploaded journal entries, newest first."""
        return store.project_journal(project, limit=limit)


def _entry(uploaded: Any) -> dict[str, Any]:
    """An uploaded entry as the journal itself writes it (open loop and descriptions redone)."""
    from ..workflows.journal import Entry

    entry = Entry(id=uploaded.id, source=uploaded.source, title=uploaded.title,
                  workflow=uploaded.workflow, status=uploaded.status,
                  created_at=uploaded.created_at, kind=uploaded.kind, why=uploaded.why,
                  expected=uploaded.expected, actual=uploaded.actual,
                  commits=tuple(uploaded.commits), baseline_run_id=uploaded.baseline_run_id,
                  verification_run_ids=tuple(uploaded.verification_run_ids),
                  notes=uploaded.notes)
    return {**entry.to_dict(), "created_at": entry.created_at}


def _summary(run: Any) -> dict[str, Any]:
    return {"id": run.id, "label": run.label, "commit": run.commit, "branch": run.branch,
            "dirty": run.dirty, "status": getattr(run.status, "value", run.status),
            "started_at": run.started_at, "finished_at": run.finished_at,
            "environment": run.environment_hash, "results": run.n_results,
            "failed": run.n_failed}


def _result(result: Any) -> dict[str, Any]:
    return json.loads(json.dumps({
        "name": result.name, "kind": result.kind, "status": result.status.value,
        "params": dict(result.params), "units": dict(result.units),
        "directions": dict(result.directions), "warnings": list(result.warnings),
        "error": result.error, "duration": result.duration,
        "samples": [{"metric": s.metric, "value": s.value, "worker": s.worker, "index": s.index,
                     "warmup": s.warmup, "loops": s.loops} for s in result.samples]}))
