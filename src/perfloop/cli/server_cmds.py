"""The team server's commands: ``serve``, ``token create/list/revoke``, ``upload``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from .common import JsonFlag, ProjectDir, StoreUrl, console, open_store, print_json, project_root

SERVER_ENV = "PERFLOOP_SERVER"   # the same names as perfloop.server.client (not imported: start-up)
TOKEN_ENV = "PERFLOOP_TOKEN"

UploadUrl = Annotated[Optional[str], typer.Option(
    "--upload", envvar=SERVER_ENV, metavar="URL",
    help="After storing the run, upload it to the perfloop server at URL (env PERFLOOP_SERVER).")]
UploadToken = Annotated[Optional[str], typer.Option(
    "--token", envvar=TOKEN_ENV, metavar="TOKEN", show_default=False,
    help="A write token of the project on the server (env PERFLOOP_TOKEN).")]
UploadProject = Annotated[Optional[str], typer.Option(
    "--project", envvar="PERFLOOP_PROJECT", metavar="NAME",
    help="The project's name on the server (default: the project directory's name; "
         "env PERFLOOP_PROJECT).")]

token_app = typer.Typer(help="Make, list and revoke the server's API tokens.",
                        no_args_is_help=True)


def _server_store(store: str | None) -> str:
    if not store:
        raise UsageError("--store is needed: the database the server uses",
                         hint="e.g. --store postgresql+psycopg://user@host:5432/perfloop or "
                              "--store server.db (SQLite, for one user)")
    return store


def serve(
    store: Annotated[Optional[str], typer.Option(
        "--store", envvar="PERFLOOP_STORE", metavar="URL",
        help="The server's store: a PostgreSQL URL (or a SQLite file for one user).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    public: Annotated[Optional[list[str]], typer.Option(
        "--public", metavar="PROJECT",
        help="Let anyone read this project without a token (repeatable).")] = None,
    max_body_mb: Annotated[float, typer.Option(
        "--max-body-mb", help="Largest accepted request body, in MB.", min=0.001)] = 32.0,
    json: Annotated[bool, typer.Option("--json", help="Print the address and store as JSON on "
                                       "stdout before serving.")] = False,
) -> None:
    """Run the team server: runners upload runs to it, everyone reads the same history.

    Migrations are applied to the store on start. The API is described at /docs.

    Example: `perfloop serve --store postgresql+psycopg://ci@db:5432/perfloop --port 8080`
    """
    try:
        import uvicorn

        from ..server.app import create_app
    except ImportError as e:
        raise UsageError(f"the server needs FastAPI and uvicorn ({e})",
                         hint="pip install 'perfloop[server]'") from e
    from ..store.db import safe_url, to_url
    url = to_url(_server_store(store), base=Path.cwd())
    app = create_app(url, max_body=int(max_body_mb * 1024 * 1024), public_projects=public or ())
    address = f"http://{host}:{port}"
    if json:
        print_json({"url": address, "store": safe_url(url), "public": list(public or ())})
    else:
        console.print(f"perfloop server on {address} (API at {address}/docs), store "
                      f"{safe_url(url)}", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="info")


@token_app.command("create")
def token_create(
    project: Annotated[str, typer.Option("--project", help="The project the token is for.")],
    scope: Annotated[str, typer.Option(help="read, or write (write also reads).")] = "write",
    name: Annotated[str, typer.Option(help="What the token is for, e.g. ci-runner-1.")] = "",
    store: Annotated[Optional[str], typer.Option(
        "--store", envvar="PERFLOOP_STORE", metavar="URL", help="The server's store.")] = None,
    json: JsonFlag = False,
) -> None:
    """Make an API token and print it once: only its hash is stored.

    Example: `perfloop token create --project shop --scope write --store URL`
    """
    from ..store import Store
    if scope not in ("read", "write"):
        raise UsageError(f"--scope {scope}: unknown scope", hint="use --scope read or write")
    with Store.open(_server_store(store), reap=False) as db:
        token = db.create_token(project=project, scope=scope, name=name)
    if json:
        print_json({"project": project, "scope": scope, "name": name, "token": token})
        return
    console.print(token, soft_wrap=True)
    console.print(f"A {scope} token of project {project!r}: copy it now, it is not shown again.",
                  soft_wrap=True)


@token_app.command("list")
def token_list(
    project: Annotated[Optional[str], typer.Option("--project", help="Only this project.")] = None,
    store: Annotated[Optional[str], typer.Option(
        "--store", envvar="PERFLOOP_STORE", metavar="URL", help="The server's store.")] = None,
    json: JsonFlag = False,
) -> None:
    """List the server's tokens (never the tokens themselves).

    Example: `perfloop token list --project shop --store URL`
    """
    from ..store import Store
    with Store.open(_server_store(store), reap=False) as db:
        records = db.tokens(project=project)
    if json:
        print_json([{"id": t.id, "project": t.project, "scope": t.scope, "name": t.name,
                     "created_at": t.created_at, "revoked_at": t.revoked_at}
                    for t in records])
        return
    from ..report.escape import terminal
    for t in records:
        revoked = f"  revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else ""
        console.print(f"#{t.id}  {terminal(t.project)}  {t.scope}  {terminal(t.name or '-')}  "
                      f"{t.created_at:%Y-%m-%d %H:%M}{revoked}", soft_wrap=True)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (token list).")],
    store: Annotated[Optional[str], typer.Option(
        "--store", envvar="PERFLOOP_STORE", metavar="URL", help="The server's store.")] = None,
    json: JsonFlag = False,
) -> None:
    """Revoke a token: the server refuses it from the next request on (it stays listed).

    Exit 2 when there is no such token.

    Example: `perfloop token revoke 3 --store URL`
    """
    from ..report.escape import terminal
    from ..store import Store
    with Store.open(_server_store(store), reap=False) as db:
        record = db.revoke_token(token_id)
    if record is None:
        raise UsageError(f"no token #{token_id}", hint="`perfloop token list` shows the ids")
    if json:
        print_json({"id": record.id, "project": record.project, "scope": record.scope,
                    "name": record.name, "revoked_at": record.revoked_at})
        return
    console.print(f"Revoked token #{record.id} ({record.scope}, project "
                  f"{terminal(record.project)}).", soft_wrap=True)


def upload_stored(db, run_id: int, *, server: str, token: str | None, project: str) -> dict:
    """Upload run ``run_id`` of the open local store ``db``; the server's answer."""
    from ..server.client import run_payload, upload, upload_id_for
    stored = db.get_run(run_id)
    payload = run_payload(stored, upload_id_for(db.url, stored, socket.gethostname()))
    return upload(server, token or "", project, payload)


def upload_journal(db, root: Path, *, server: str, token: str | None, project: str) -> dict:
    """Upload the open local store's whole journal (and open cycle); the server's answer."""
    from ..server.client import journal_payload, origin_for, upload
    payload = journal_payload(db, root, origin_for(db.url, socket.gethostname()))
    answer = upload(server, token or "", project, payload, what="journal")
    return {**answer, "entries": len(payload["entries"]), "cycles": len(payload["cycles"])}


def upload_cmd(
    ref: Annotated[Optional[str], typer.Argument(
        help="The run to upload: id, label or git ref.")] = None,
    journal: Annotated[bool, typer.Option(
        "--journal", help="Upload the journal (every entry, and the open release cycle).")
    ] = False,
    server: Annotated[Optional[str], typer.Option(
        "--server", envvar=SERVER_ENV, metavar="URL",
        help="The perfloop server (env PERFLOOP_SERVER).")] = None,
    token: UploadToken = None,
    project: UploadProject = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Upload a stored run, or the journal, to a perfloop server.

    Uploading again is safe: a run is never stored twice there, and the journal replaces this
    store's earlier copy (entries changed since are updated, removed ones removed).

    Example: `perfloop upload 12 --server http://127.0.0.1:8080 --token $PERFLOOP_TOKEN`

    Example: `perfloop upload --journal --server http://127.0.0.1:8080`
    """
    if not server:
        raise UsageError("no server to upload to", hint=f"pass --server URL or set {SERVER_ENV}")
    if ref is None and not journal:
        raise UsageError("nothing to upload", hint="name a run (perfloop upload 12) or pass "
                                                   "--journal")
    root = project_root(directory)
    answer: dict[str, Any] | None = None
    journal_answer: dict[str, Any] | None = None
    run_id: int | None = None
    with open_store(directory, store) as db:
        if ref is not None:
            from ..measure.git import resolve_commit
            run_id = db.resolve(ref, commit_of=lambda r: resolve_commit(root, r))
            answer = upload_stored(db, run_id, server=server, token=token,
                                   project=project or root.name)
        if journal:
            journal_answer = upload_journal(db, root, server=server, token=token,
                                            project=project or root.name)
    if journal_answer is None:
        assert run_id is not None and answer is not None   # a run was named (checked above)
        report_upload(run_id, answer, json=json)
        return
    if json:
        out: dict[str, Any] = {"journal": journal_answer}
        if answer is not None:
            out.update(run_id=run_id, server_run_id=answer.get("run_id"),
                       created=answer.get("created"))
        print_json(out)
        return
    if answer is not None and run_id is not None:
        report_upload(run_id, answer, json=False)
    j = journal_answer
    console.print(f"Uploaded the journal: {j['entries']} entries, {j['cycles']} open cycle(s); "
                  f"on the server {j['created']} new, {j['updated']} updated, {j['removed']} "
                  f"removed, {j['unchanged']} unchanged.", soft_wrap=True)


def report_upload(run_id: int, answer: dict, *, json: bool) -> None:
    if json:
        print_json({"run_id": run_id, "server_run_id": answer.get("run_id"),
                    "created": answer.get("created")})
        return
    what = "Uploaded" if answer.get("created") else "Already on the server:"
    console.print(f"{what} run #{run_id} as run #{answer.get('run_id')} on the server.",
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command("upload")(upload_cmd)
    app.add_typer(token_app, name="token")
