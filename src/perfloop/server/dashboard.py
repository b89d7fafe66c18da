"""The team server's dashboard: server-rendered pages with the HTML report's offline charts.

::

    /                                        projects (those the visitor may read)
    /projects/{project}                      its benchmarks and latest runs
    /projects/{project}/benchmarks/{name}    a benchmark's history chart, change points marked
    /static/plotly.min.js                    Plotly's JavaScript, served by the server (no CDN)

A project's pages need the same read access as its API: the project is public, or a read
token comes as ``Authorization: Bearer TOKEN`` or in the ``perfloop_token`` cookie.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from ..errors import UsageError
from ..report.html import _script_json, history_figure
from ..report.units import format_value
from ..store import Store
from ..workflows.history import benchmark_history

TOKEN_COOKIE = "perfloop_token"


@lru_cache(maxsize=1)
def _templates() -> Environment:
    env = Environment(loader=PackageLoader("perfloop", "server/templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["sha"] = lambda c: c[:10] if c else "-"
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else "-"
    return env


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs
    return get_plotlyjs()


def _page(template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates().get_template(template).render(**context))


def add_dashboard(app: FastAPI, store: Store, public: Iterable[str]) -> None:
    """Add the dashboard's pages to ``app``, reading ``store``."""
    public = frozenset(public)

    def may_read(request: Request, project: str) -> bool:
        if project in public:
            return True
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else \
            request.cookies.get(TOKEN_COOKIE, "")
        return bool(token) and store.check_token(token, project=project, scope="read") is not None

    def require(request: Request, project: str) -> None:
        if not may_read(request, project):
            raise HTTPException(403 if request.headers.get("authorization") or
                                request.cookies.get(TOKEN_COOKIE) else 401,
                                f"project {project!r} is not public: send a read token")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(_plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def projects(request: Request) -> HTMLResponse:
        shown = [(p, n) for p, n in store.projects() if may_read(request, p)]
        return _page("projects.html.j2", projects=shown)

    @app.get("/projects/{project}", response_class=HTMLResponse, include_in_schema=False)
    def project_page(request: Request, project: str) -> HTMLResponse:
        require(request, project)
        return _page("project.html.j2", project=project,
                     benchmarks=store.project_benchmarks(project),
                     runs=store.project_runs(project, limit=50))

    @app.get("/projects/{project}/benchmarks/{name}", response_class=HTMLResponse,
             include_in_schema=False)
    def benchmark_page(request: Request, project: str, name: str,
                       metric: str | None = None) -> HTMLResponse:
        require(request, project)
        try:
            histories = benchmark_history(store, name, metrics=[metric] if metric else None,
                                          project=project)
        except UsageError:
            raise HTTPException(404, f"project {project!r} has no results for {name!r}") from None
        figures = {f"series-{k}": history_figure(h) for k, h in enumerate(histories)}
        views = [{"id": f"series-{k}", "metric": h.series.key.metric,
                  "branch": h.series.key.branch, "runs": len(h.series.points),
                  "latest": format_value(h.series.points[-1].value, h.series.unit),
                  "change_points": [c.to_dict() for c in h.change_points],
                  "notes": list(h.notes)} for k, h in enumerate(histories)]
        return _page("benchmark.html.j2", project=project, name=name, series=views,
                     figures_json=_script_json(figures),
                     data_json=_script_json([h.to_dict() for h in histories]))


