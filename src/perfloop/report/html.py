"""The HTML report: one self-contained file with history charts, a comparison and the gate.

The page works offline and can be attached to a CI job or mailed: Plotly's JavaScript is
embedded inline (``plotly.offline.get_plotlyjs()``), the styles are inline, and no script,
stylesheet or image is fetched from anywhere. Charts are written as plain Plotly figure specs
(data and layout as JSON) rather than through ``plotly.io.to_html``, whose per-figure template
would repeat some 10 kB of styling in every chart; the same JSON, in one
``<script type="application/json" id="perfloop-data">`` block, carries the series and change
points for anyone who wants the numbers rather than the pictures.

Sections, each present only when there is something for it:

- **gate**: the verdicts of a ``perfloop gate --json`` output, per benchmark and metric;
- **comparison**: base run against head run, per benchmark and metric a box plot of both
  runs' samples (every sample shown) with the verdict;
- **history**: per series its runs, the level of each segment, change points (red for a
  regression, green for an improvement, purple where the environment changed) and approvals.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from jinja2 import Environment, PackageLoader, select_autoescape

from ..config import DEFAULT_TOLERANCE
from ..records import BenchmarkResult
from ..workflows.history import SeriesHistory
from .units import format_change, format_value

COLORS = {"regression": "#d62728", "improvement": "#2ca02c", "environment": "#9467bd",
          "approval": "#17becf", "base": "#1f77b4", "head": "#ff7f0e", "series": "#1f77b4"}
VERDICT_CLASS = {"regressed": "bad", "improved": "good", "unchanged": "neutral",
                 "inconclusive": "unsure"}
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}


def _templates() -> Environment:
    env = Environment(loader=PackageLoader("perfloop", "report/templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["value"] = lambda v, unit="": format_value(v, unit) if v is not None else "-"
    env.filters["change"] = lambda v: format_change(v) if v is not None else "-"
    env.filters["sha"] = lambda c: c[:10] if c else "-"
    env.filters["pvalue"] = lambda p: f"{p:.2g}" if p is not None else "-"
    return env


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# -- history --------------------------------------------------------------------------------------

def history_figure(h: SeriesHistory) -> dict[str, Any]:
    """A Plotly figure spec: the series, each segment's level, change points and markers."""
    s = h.series
    points = s.points
    x = list(range(len(points)))
    factor, unit_label = _display_unit(s.unit)
    hover = [f"run #{p.run_id}<br>{p.commit[:10] if p.commit else '-'}{'+dirty' if p.dirty else ''}"
             f"<br>{p.started_at.strftime('%Y-%m-%d %H:%M')}<br>env {p.environment[:8]}"
             f"<br>{format_value(p.value, s.unit)}" for p in points]
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines+markers", "name": s.key.metric, "x": x,
        "y": [p.value / factor for p in points], "text": hover, "hoverinfo": "text",
        "line": {"color": COLORS["series"], "width": 1}, "marker": {"size": 5}}]
    # Each segment's level: the detector's means, drawn flat between change points.
    bounds = [0] + [c.index for c in h.change_points] + [len(points)]
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        if b <= a:
            continue
        if k < len(h.change_points):
            level = h.change_points[k].mean_before
        elif h.change_points:
            level = h.change_points[-1].mean_after
        else:
            level = float(sum(p.value for p in points) / len(points))
        data.append({"type": "scatter", "mode": "lines", "x": [a - 0.5, b - 0.5],
                     "y": [level / factor, level / factor],
                     "line": {"color": "#444", "width": 2, "dash": "dot"}, "hoverinfo": "skip",
                     "showlegend": k == 0, "name": "level", "legendgroup": "level"})
    shapes, annotations = [], []
    for c in h.change_points:
        color = COLORS[c.kind]
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": c.index - 0.5,
                       "x1": c.index - 0.5, "y0": 0, "y1": 1, "line": {"color": color, "width": 2}})
        annotations.append({"x": c.index - 0.5, "y": 1, "xref": "x", "yref": "paper",
                            "yanchor": "bottom", "showarrow": False,
                            "text": f"{c.kind} {format_change(c.magnitude)}",
                            "font": {"color": color, "size": 11}})
    marked = {c.environment_change.index for c in h.change_points if c.environment_change}
    for e in h.environment_changes:
        if e.index in marked:
            continue
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": e.index - 0.5,
                       "x1": e.index - 0.5, "y0": 0, "y1": 1,
                       "line": {"color": COLORS["environment"], "width": 1, "dash": "dash"}})
        annotations.append({"x": e.index - 0.5, "y": 0, "xref": "x", "yref": "paper",
                            "yanchor": "top", "showarrow": False, "text": "environment",
                            "font": {"color": COLORS["environment"], "size": 10}})
    for approval in h.approvals:
        index = h.approval_index(approval)
        if index is not None:
            annotations.append({"x": index, "y": points[index].value / factor, "xref": "x", "yref": "y",
                                "text": "approved", "showarrow": True, "arrowhead": 2, "ay": -30,
                                "font": {"color": COLORS["approval"], "size": 10},
                                "arrowcolor": COLORS["approval"],
                                "hovertext": f"{approval.author}: {approval.reason}"})
    # The tolerance around the latest level, shaded: a wiggle inside it is not a change, and
    # the y range always spans it, so that noise never fills the chart.
    values = [p.value / factor for p in points]
    level = (h.change_points[-1].mean_after if h.change_points else
             sorted(p.value for p in points)[len(points) // 2]) / factor if points else 0.0
    tolerance = next((p.tolerance for p in reversed(points) if p.tolerance), None) or DEFAULT_TOLERANCE
    band = (level * (1 - tolerance), level * (1 + tolerance))
    shapes.insert(0, {"type": "rect", "xref": "paper", "yref": "y", "x0": 0, "x1": 1,
                      "y0": band[0], "y1": band[1], "fillcolor": "rgba(31,119,180,0.08)",
                      "line": {"width": 0}, "layer": "below"})
    low, high = min([*values, band[0]]), max([*values, band[1]])
    pad = (high - low) * 0.08 or abs(level) * 0.01 or 1.0
    step = _tick_step(len(points))
    ticks = list(range(0, len(points), step))
    layout = {"height": 320, "margin": {"l": 70, "r": 20, "t": 48, "b": 56}, "font": _FONT,
              "xaxis": {"title": {"text": f"commit and date of each run, oldest to newest "
                                          f"(shaded: ±{tolerance * 100:g}% tolerance)"},
                        "zeroline": False, "tickmode": "array", "tickvals": ticks,
                        "ticktext": [_tick_label(points[i]) for i in ticks]},
              "yaxis": {"title": {"text": f"{s.key.metric} ({unit_label})" if unit_label else s.key.metric},
                        "zeroline": False, "range": [low - pad, high + pad], **_value_axis(s.unit)},
              "shapes": shapes, "annotations": annotations, "showlegend": False,
              "plot_bgcolor": "#fafafa", "hovermode": "closest"}
    return {"data": data, "layout": layout}


def _tick_step(n: int) -> int:
    """A whole-number step giving at most about 12 ticks: runs have no halves."""
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if n / step <= 12:
            return step
    return 10_000


def _tick_label(point: Any) -> str:
    commit = point.commit[:7] if point.commit else "no commit"
    return f"{commit}<br>{point.started_at.strftime('%m-%d')}"


def _display_unit(unit: str) -> tuple[float, str]:
    """How chart values are scaled and labelled: bytes in MiB (binary, as the terminal prints
    them), everything else as measured."""
    if unit == "B":
        return 1024.0 ** 2, "MiB"
    return 1.0, unit


def _value_axis(unit: str) -> dict[str, Any]:
    """Seconds with SI prefixes (``120ms``, like the terminal output); bytes are already
    scaled to MiB by :func:`_display_unit`."""
    if unit == "s":
        return {"tickformat": "~s", "ticksuffix": unit}
    return {}


def _history_view(h: SeriesHistory, chart_id: str) -> dict[str, Any]:
    s = h.series
    return {"id": chart_id, "key": s.key, "title": f"{s.key.benchmark} · {s.key.metric}",
            "branch": s.key.branch,
            "environment": s.key.environment[:8] if s.key.environment else "all environments",
            "runs": len(s), "unit": s.unit, "direction": s.direction,
            "change_points": h.change_points, "environment_changes": h.environment_changes,
            # Only approvals of commits in this series: one of another branch would only confuse.
            "approvals": [(a, h.approval_index(a)) for a in h.approvals
                          if h.approval_index(a) is not None], "notes": h.notes}


# -- comparison -----------------------------------------------------------------------------------

def comparison_figure(benchmark: str, metric: str, unit: str, base: BenchmarkResult,
                      head: BenchmarkResult, base_name: str, head_name: str) -> dict[str, Any]:
    """Box plots of both runs' measured samples of one benchmark and metric, every sample shown."""
    data = []
    for side, result, name in (("base", base, base_name), ("head", head, head_name)):
        factor = _display_unit(unit)[0]
        values = [v / factor for v in result.values(metric)]
        workers = [f"worker {s.worker}" for s in result.samples if s.metric == metric and not s.warmup]
        data.append({"type": "box", "name": name, "y": values, "boxpoints": "all", "jitter": 0.4,
                     "pointpos": 0, "text": workers, "marker": {"color": COLORS[side], "size": 4},
                     "line": {"color": COLORS[side]}, "boxmean": True})
    layout = {"height": 300, "margin": {"l": 70, "r": 20, "t": 10, "b": 30}, "font": _FONT,
              "yaxis": {"title": {"text": f"{metric} ({_display_unit(unit)[1]})" if unit else metric},
                        "zeroline": False, **_value_axis(unit)},
              "showlegend": False, "plot_bgcolor": "#fafafa"}
    return {"data": data, "layout": layout}


def _comparison_view(comparison: Any, figures: dict[str, Any]) -> dict[str, Any]:
    base_results = {r.name: r for r in comparison.base.results}
    head_results = {r.name: r for r in comparison.head.results}
    base_name = f"base #{comparison.base.id}"
    head_name = f"head #{comparison.head.id}"
    rows = []
    for k, v in enumerate(comparison.verdicts):
        chart_id: str | None = f"cmp-{k}"
        b, hd = base_results.get(v.benchmark), head_results.get(v.benchmark)
        if b is not None and hd is not None and b.values(v.metric) and hd.values(v.metric):
            figures[f"cmp-{k}"] = comparison_figure(v.benchmark, v.metric, v.unit, b, hd,
                                                    base_name, head_name)
        else:
            chart_id = None
        verdict = getattr(v.verdict, "value", v.verdict)
        rows.append({"verdict": v, "kind": verdict, "css": VERDICT_CLASS.get(verdict, ""),
                     "chart": chart_id})
    return {"base": comparison.base, "head": comparison.head, "rows": rows,
            "env_differences": [d for d in comparison.env_differences if d.identity],
            "conditions": [d for d in comparison.env_differences if not d.identity],
            "notes": list(comparison.notes), "failed": list(comparison.failed),
            "only_in_base": list(comparison.only_in_base),
            "only_in_head": list(comparison.only_in_head)}


# -- gate ------------------------------------------------------------------------------------------

def _gate_view(gate: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a ``perfloop gate --json`` output the report shows."""
    rows = []
    for b in gate.get("benchmarks") or []:
        metrics = b.get("metrics") or []
        if not metrics:
            rows.append({"benchmark": b.get("name"), "metric": "-", "verdict": b.get("status"),
                         "status": b.get("status"), "css": "bad" if b.get("status") == "fail" else "",
                         "change": None, "ci_low": None, "ci_high": None, "p": None,
                         "note": b.get("error") or "", "approvals": []})
        for m in metrics:
            rows.append({"benchmark": b.get("name"), "metric": m.get("metric"),
                         "verdict": m.get("verdict"), "status": m.get("status"),
                         "css": {"fail": "bad", "approved": "unsure", "warn": "unsure"}.get(
                             m.get("status"), VERDICT_CLASS.get(m.get("verdict"), "")),
                         "change": _finite(m.get("change")), "ci_low": _finite(m.get("ci_low")),
                         "ci_high": _finite(m.get("ci_high")),
                         "p": m.get("p_adjusted", m.get("p_value")),
                         "note": "; ".join(m.get("notes") or []),
                         "approvals": [f"{a.get('author') or '?'}: {a.get('reason')}"
                                       for a in m.get("approvals") or []]})
        for effect in b.get("side_effects") or []:
            rows.append({"benchmark": b.get("name"), "metric": "side effect", "verdict": "",
                         "status": "", "css": "unsure", "change": None, "ci_low": None,
                         "ci_high": None, "p": None, "note": effect, "approvals": []})
    return {"passed": bool(gate.get("passed")), "summary": gate.get("summary", ""),
            "base": gate.get("base") or {}, "head": gate.get("head") or {}, "rows": rows,
            "notes": list(gate.get("notes") or [])}


def load_gate_json(text: str) -> dict[str, Any]:
    """A ``perfloop gate --json`` output, checked for the keys the report reads."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError("not a perfloop gate --json output: it has no 'benchmarks' list")
    return data


# -- the page --------------------------------------------------------------------------------------

def _gate_only(h: SeriesHistory) -> bool:
    """A series made only of the gate's runs (a detached base worktree has no branch): the gate
    measured it for one comparison, it is no history of a branch."""
    return bool(h.series.points) and all((p.label or "").startswith("gate-") for p in h.series.points)


def ordered_histories(histories: Sequence[SeriesHistory]) -> list[SeriesHistory]:
    """What matters first: series with a regression, then with any change point, then the
    rest (each group by name); series of the gate's runs alone are left out."""
    def rank(h: SeriesHistory) -> tuple[int, str, str]:
        kinds = {c.kind for c in h.change_points}
        first = 0 if "regression" in kinds else 1 if kinds else 2
        return first, h.series.key.benchmark, h.series.key.metric
    return sorted((h for h in histories if not _gate_only(h)), key=rank)


def _index(series: Sequence[Mapping[str, Any]], gate: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The page's first list: failed gate benchmarks and every change point, linked."""
    items: list[dict[str, Any]] = []
    for b in (gate or {}).get("benchmarks") or []:
        if b.get("status") in ("fail", "warn", "approved"):
            items.append({"href": "#gate", "kind": {"fail": "regression"}.get(b["status"], "environment"),
                          "text": f"gate: {b.get('name')} {b.get('status')}"})
    for view in series:
        for c in view["change_points"]:
            items.append({"href": f"#h-{view['id']}", "kind": c.kind,
                          "text": f"{view['title']}: {c.kind} {format_change(c.magnitude)} "
                                  f"({c.commit_range})"})
    order = {"regression": 0, "improvement": 2}
    return sorted(items, key=lambda i: order.get(i["kind"], 1))


def render_report(*, histories: Sequence[SeriesHistory] = (), comparison: Any = None,
                  gate: Mapping[str, Any] | None = None, title: str = "perfloop report",
                  store_url: str = "", generated_at: datetime | None = None,
                  notes: Sequence[str] = ()) -> str:
    """The report as one HTML string (Plotly inline: several MB, no network needed)."""
    from plotly.offline import get_plotlyjs

    figures: dict[str, Any] = {}
    series_views = []
    histories = ordered_histories(histories)
    for k, h in enumerate(histories):
        chart_id = f"series-{k}"
        figures[chart_id] = history_figure(h)
        series_views.append(_history_view(h, chart_id))
    comparison_view = _comparison_view(comparison, figures) if comparison is not None else None
    data = {"generated_at": (generated_at or datetime.now(timezone.utc)).isoformat(),
            "series": [h.to_dict() for h in histories],
            "comparison": comparison.to_dict() if comparison is not None else None,
            "gate": dict(gate) if gate is not None else None}
    regressions = sum(1 for h in histories for c in h.change_points if c.kind == "regression")
    page = _templates().get_template("report.html.j2").render(
        title=title, store_url=store_url,
        generated_at=(generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC"),
        series=series_views, comparison=comparison_view,
        gate=_gate_view(gate) if gate is not None else None, notes=list(notes),
        regressions=regressions, colors=COLORS, index=_index(series_views, gate),
        figures_json=_script_json(figures), data_json=_script_json(data),
        plotly_js=get_plotlyjs())
    return page


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "</" can close it early."""
    text = json.dumps(_clean(value), default=_json_default, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _clean(value: Any) -> Any:
    """``value`` with infinite and NaN floats as None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return str(value)


__all__ = ["comparison_figure", "history_figure", "load_gate_json", "ordered_histories",
           "render_report"]
