"""The team server's dashboard: server-rendered pages with the HTML report's offline charts.

::

    /                                        projects (those the visitor may read)
    /projects/{project}                      open incidents, the current cycle, benchmarks, runs
    /projects/{project}/benchmarks/{name}    a benchmark's history chart: change points and
                                             environment changes marked
    /projects/{project}/compare?base=&head=  two runs compared: a verdict per benchmark and metric
    /projects/{project}/journal              the uploaded journal, open loops first
    /projects/{project}/cycle                the current release cycle: budget, changes, health
    /static/plotly.min.js                    Plotly's JavaScript, served by the server (no CDN)

A project's pages need the same read access as its API: the project is public, or a read
token comes as ``Authorization: Bearer TOKEN`` or in the ``perfloop_token`` cookie.

Everything stored was written by clients, so every value is escaped for HTML (Jinja's
autoescape) after its control characters were made visible (:func:`perfloop.report.escape.
printable`); chart data goes into ``<script type="application/json">`` blocks that no ``</``
can close early.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..errors import RefNotFound, UsageError
from ..report.escape import printable
from ..report.html import COLORS, VERDICT_CLASS, _script_json, comparison_figure, history_figure
from ..report.units import format_change, format_value
from ..store import Store
from ..workflows.history import benchmark_history

TOKEN_COOKIE = "perfloop_token"
#: Box plots drawn on a comparison page; the table lists every verdict.
MAX_COMPARISON_CHARTS = 60
#: Journal entries on the journal page (newest first).
JOURNAL_LIMIT = 500


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``: control characters shown as escapes (then autoescaped)."""
    if value is None or isinstance(value, Markup) or not isinstance(value, str):
        return value
    return printable(value)


def _change(value: Any) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    return format_change(value)


@lru_cache(maxsize=1)
def _templates() -> Environment:
    env = Environment(loader=PackageLoader("perfloop", "server/templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True, finalize=_finalize)
    env.filters["sha"] = lambda c: str(c)[:10] if c else "-"
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else "-"
    env.filters["day"] = lambda d: str(d)[:10] if d else "-"
    env.filters["part"] = lambda v: quote(str(v), safe="")      # one URL path segment
    env.filters["value"] = lambda v, unit="": format_value(v, unit) \
        if isinstance(v, (int, float)) and math.isfinite(v) else "-"
    env.filters["change"] = _change
    env.filters["points"] = lambda v: f"{v:.1f}".removesuffix(".0") \
        if isinstance(v, (int, float)) else "-"
    return env


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs
    return get_plotlyjs()


def _page(template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates().get_template(template).render(colors=COLORS, **context))


class _ProjectRuns:
    """One project's runs, as :func:`~perfloop.analysis.drift.measured_run_noise` reads a
    store: drift is estimated from this project's repeat runs only."""

    def __init__(self, store: Store, project: str) -> None:
        self._store = store
        self._project = project

    def list_runs(self, limit: int | None = 400) -> list[Any]:
        return self._store.project_runs(self._project, limit=limit or 400)

    def get_run(self, run_id: int) -> Any:
        return self._store.get_run(run_id)


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
        runs = store.project_runs(project, limit=50)
        return _page("project.html.j2", project=project,
                     benchmarks=store.project_benchmarks(project), runs=_with_previous(runs),
                     incidents=store.project_journal(project, source="incident",
                                                     status="open"),
                     cycles=[_cycle_view(c) for c in store.project_cycles(project,
                                                                          status="open")])

    @app.get("/projects/{project}/benchmarks/{name:path}", response_class=HTMLResponse,
             include_in_schema=False)
    def benchmark_page(request: Request, project: str, name: str,
                       metric: str | None = None, environment: str = "all") -> HTMLResponse:
        require(request, project)
        try:
            # every environment class in one series by default, so that the places where the
            # class changed are on the chart; ?environment=latest keeps the latest class only
            histories = benchmark_history(store, name, metrics=[metric] if metric else None,
                                          project=project,
                                          all_environments=environment != "latest")
        except UsageError:
            raise HTTPException(404, f"project {project!r} has no results for {name!r}") from None
        figures = {f"series-{k}": history_figure(h) for k, h in enumerate(histories)}
        views = _series_views(histories)
        return _page("benchmark.html.j2", project=project, name=name, series=views,
                     environment=environment, figures_json=_json_block(figures),
                     data_json=_json_block([_without_points(h) for h in histories]))

    @app.get("/projects/{project}/compare", response_class=HTMLResponse,
             include_in_schema=False)
    def compare_page(request: Request, project: str,
                     base: int = Query(ge=1, le=2**63 - 1),
                     head: int = Query(ge=1, le=2**63 - 1)) -> HTMLResponse:
        require(request, project)
        comparison = _compared(store, project, base, head)
        figures, view = _comparison_view(comparison)
        return _page("compare.html.j2", project=project, cmp=view,
                     figures_json=_json_block(figures),
                     data_json=_json_block(comparison.to_dict()))

    _add_journal_pages(app, store, require)


def _series_views(histories: Sequence[Any]) -> list[dict[str, Any]]:
    """What the benchmark page shows of each history, beside its chart."""
    return [{"id": f"series-{k}", "metric": h.series.key.metric,
             "benchmark": h.series.key.benchmark,
             "branch": h.series.key.branch, "runs": len(h.series.points),
             "latest": format_value(h.series.points[-1].value, h.series.unit),
             "change_points": [c.to_dict() for c in h.change_points],
             "environment_changes": [{"index": e.index, "run_before": e.before.run_id,
                                      "run_after": e.after.run_id, "text": e.describe()}
                                     for e in h.environment_changes],
             "notes": list(h.notes)} for k, h in enumerate(histories)]


def _compared(store: Store, project: str, base: int, head: int) -> Any:
    """The comparison of two of ``project``'s runs, with the drift `perfloop compare` allows
    for runs measured apart; 404 when either is not the project's."""
    from ..analysis.comparison import DRIFTING_METRICS, compare_runs, interleaved_with
    from ..analysis.drift import measured_run_noise
    from ..config import DEFAULT_RUN_NOISE

    runs = []
    for run_id in (base, head):
        try:
            if store.run_project(run_id) != project:
                raise RefNotFound(f"no run {run_id}")
            runs.append(store.get_run(run_id))
        except RefNotFound:
            raise HTTPException(404, f"project {project!r} has no run {run_id}") from None
    base_run, head_run = runs
    drift = None
    if not interleaved_with(base_run, head_run):
        # the same drift estimate `perfloop compare` uses, from this project's repeat runs
        drift = measured_run_noise(_ProjectRuns(store, project), head_run.environment_hash,
                                   sorted(DRIFTING_METRICS), fallback=DEFAULT_RUN_NOISE)
    return compare_runs(base_run, head_run, drift=drift)


def _add_journal_pages(app: FastAPI, store: Store, require: Callable[[Request, str], None]) -> None:
    """The journal and cycle pages of a project."""
    @app.get("/projects/{project}/journal", response_class=HTMLResponse,
             include_in_schema=False)
    def journal_page(request: Request, project: str) -> HTMLResponse:
        require(request, project)
        entries = store.project_journal(project, limit=JOURNAL_LIMIT)
        return _page("journal.html.j2", project=project, entries=entries,
                     open_loops=[e for e in entries if e.get("open_loop")],
                     limit=JOURNAL_LIMIT)

    @app.get("/projects/{project}/cycle", response_class=HTMLResponse,
             include_in_schema=False)
    def cycle_page(request: Request, project: str) -> HTMLResponse:
        require(request, project)
        cycles = store.project_cycles(project)
        return _page("cycle.html.j2", project=project,
                     current=[_cycle_view(c) for c in cycles if c.get("status") == "open"],
                     closed=[_cycle_view(c) for c in cycles if c.get("status") != "open"][:20])


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _cycle_view(cycle: Mapping[str, Any]) -> dict[str, Any]:
    """An uploaded cycle with the fields the pages show, each of the type they expect: the
    health, changes and queue are free-form JSON from the client."""
    budget = _number(cycle.get("budget")) or 0.0
    spent = _number(cycle.get("spent")) or 0.0
    health = cycle.get("health") if isinstance(cycle.get("health"), dict) else {}

    def change(c: Any) -> dict[str, Any]:
        c = c if isinstance(c, dict) else {}
        blocked = c.get("blocked_by")
        return {"id": _text(c.get("id")), "title": _text(c.get("title")) or "",
                "score": _number(c.get("score")), "level": _text(c.get("level")) or "?",
                "status": _text(c.get("status")) or "?", "expect": _text(c.get("expect")),
                "rollback": _text(c.get("rollback")) or _text(c.get("rollback_command")),
                "age_days": _number(c.get("age_days")),
                "blocked_by": [str(b) for b in blocked] if isinstance(blocked, list) else []}

    changes: list[Any] = cycle.get("changes") or []
    queue: list[Any] = cycle.get("queue") or []
    changes = changes if isinstance(changes, list) else []
    queue = queue if isinstance(queue, list) else []
    return {"name": _text(cycle.get("name")) or "", "status": _text(cycle.get("status")),
            "opened_at": _text(cycle.get("opened_at")), "budget": budget, "spent": spent,
            "left": _number(cycle.get("left")) if _number(cycle.get("left")) is not None
            else budget - spent,
            "used_percent": round(min(max(spent / budget * 100, 0.0), 100.0), 1)
            if budget else 0.0,
            "health": {"stagnation": health.get("stagnation") is True,
                       "chaos": health.get("chaos") is True,
                       "unspent_percent": round((_number(health.get("unspent_share")) or 0) * 100),
                       "oldest_queued_days": _number(health.get("oldest_queued_days")),
                       "rolled_back_or_broken": _number(health.get("rolled_back_or_broken")),
                       "effects_outside_expected": _number(
                           health.get("effects_outside_expected"))} if health else None,
            "changes": [change(c) for c in changes], "queue": [change(c) for c in queue]}


def _json_block(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block with no ``<`` at all (JSON's
    ``\\u003c`` instead): no uploaded name can close the block or open a comment in it."""
    return Markup(_script_json(value).replace("<", "\\u003c"))


def _without_points(h: Any) -> dict[str, Any]:
    """A history's data for the page, its points left out: the chart carries their values,
    and 10,000 points would double the page (the API serves the runs)."""
    data = replace(h, series=replace(h.series, points=())).to_dict()
    data.pop("points", None)
    # approvals are placed by the points: from the whole history
    data["approvals"] = [{**a.to_dict(), "index": h.approval_index(a)} for a in h.approvals]
    return {**data, "runs": len(h.series.points)}


def _with_previous(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """The runs list, each with the run before it on its branch (to compare with), if listed."""
    out = []
    for k, run in enumerate(runs):
        previous = next((r for r in runs[k + 1:] if r.branch == run.branch), None)
        out.append({"run": run, "previous": previous.id if previous is not None else None})
    return out


def _comparison_view(comparison: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The chart figures and the template's view of a run comparison."""
    base_results = {r.name: r for r in comparison.base.results}
    head_results = {r.name: r for r in comparison.head.results}
    figures: dict[str, Any] = {}
    rows = []
    for k, v in enumerate(comparison.verdicts):
        verdict = getattr(v.verdict, "value", v.verdict)
        chart = None
        b, hd = base_results.get(v.benchmark), head_results.get(v.benchmark)
        if len(figures) < MAX_COMPARISON_CHARTS and b is not None and hd is not None \
                and b.values(v.metric) and hd.values(v.metric):
            chart = f"cmp-{k}"
            figures[chart] = comparison_figure(v.benchmark, v.metric, v.unit, b, hd,
                                               f"base #{comparison.base.id}",
                                               f"head #{comparison.head.id}")
        rows.append({"v": v, "kind": verdict, "css": VERDICT_CLASS.get(verdict, ""),
                     "chart": chart})
    counts: Mapping[str, int] = comparison.to_dict()["counts"]
    return figures, {
        "base": comparison.base, "head": comparison.head, "rows": rows, "counts": counts,
        "identity": [d for d in comparison.env_differences if d.identity],
        "conditions": [d for d in comparison.env_differences if not d.identity],
        "notes": list(comparison.notes), "failed": list(comparison.failed),
        "only_in_base": list(comparison.only_in_base),
        "only_in_head": list(comparison.only_in_head), "design": comparison.design}
