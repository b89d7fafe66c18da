"""Flame graphs of a :class:`~perfloop.analysis.profiles.Profile`, for offline viewing.

Three outputs, each one self-contained (no JavaScript library, no CDN, no network):

- ``.speedscope.json``: opens in speedscope.app (drag and drop) or a local speedscope;
- ``.svg``: an icicle graph (callers above callees), one rectangle per call path, width by
  time, a tooltip per frame; opens in any browser;
- ``.html``: the same graph inline with a few lines of embedded script for click-to-zoom, the
  hot spots as tables, and the signals and notes when given.

Colours say whose code a frame is: warm for the user's code, blue for libraries, green for the
standard library, grey for native and generated code, violet for perfloop itself.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..analysis.profiles import Frame, HotSpot, Profile, hot_spots, to_speedscope

ROW = 18            # pixels per stack level
FONT = 12
CHAR = 0.6 * FONT   # average glyph width, to decide how much of a label fits
MIN_PX = 0.3        # narrower call paths are not drawn (their time stays in the parent)


@dataclass
class _Node:
    label: str
    frame: Frame | None
    weight: float = 0.0
    self_weight: float = 0.0
    children: dict[Any, _Node] = field(default_factory=dict)


def call_tree(profile: Profile) -> _Node:
    """Stacks merged into a tree; with several threads, one subtree per thread."""
    root = _Node("all", None)
    threads = profile.threads
    for stack in profile.stacks:
        node = root
        node.weight += stack.weight
        if len(threads) > 1:
            key = ("thread", stack.thread)
            node = node.children.setdefault(key, _Node(f"thread {stack.thread or '?'}", None))
            node.weight += stack.weight
        for i in stack.frames:
            fr = profile.frames[i]
            node = node.children.setdefault(i, _Node(fr.name, fr))
            node.weight += stack.weight
        node.self_weight += stack.weight
    return root


def _colour(node: _Node) -> str:
    kind = node.frame.kind if node.frame else "thread"
    h = int(hashlib.md5(node.label.encode()).hexdigest()[:4], 16) / 0xFFFF
    if kind == "user":
        return f"hsl({int(8 + 37 * h)},80%,{int(58 + 8 * h)}%)"
    if kind == "library":
        return f"hsl({int(195 + 30 * h)},55%,{int(68 + 8 * h)}%)"
    if kind == "stdlib":
        return f"hsl({int(120 + 40 * h)},40%,{int(68 + 8 * h)}%)"
    if kind == "perfloop":
        return f"hsl({int(265 + 15 * h)},35%,80%)"
    if kind in ("native", "generated"):
        return f"hsl(0,0%,{int(72 + 10 * h)}%)"
    return "hsl(0,0%,88%)"


def _fmt_weight(profile: Profile, weight: float) -> str:
    per = profile.seconds_per_unit
    if per is None:
        return f"{weight:,.0f} samples"
    secs = weight * per
    return f"{secs * 1e3:,.1f} ms" if secs < 1 else f"{secs:,.2f} s"


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def render_svg(profile: Profile, *, width: int = 1200, title: str | None = None) -> str:
    """An icicle flame graph as a standalone SVG document."""
    root = call_tree(profile)
    total = root.weight
    top = 2 * ROW + 6
    height = top + _depth(root) * ROW + 4
    title = title or f"{profile.profiler or 'profile'}: {_fmt_weight(profile, total)}"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Verdana, sans-serif" font-size="{FONT}" '
           f'class="flamegraph">',
           '<style>.f rect{stroke:#fff;stroke-width:0.5}.f:hover rect{stroke:#000}'
           '.f text{pointer-events:none;fill:#000}</style>',
           f'<rect width="{width}" height="{height}" fill="#fafafa"/>',
           f'<text x="{width / 2}" y="{ROW}" text-anchor="middle" font-size="{FONT + 3}">'
           f'{html.escape(title)}</text>']
    if total <= 0:
        out.append(f'<text x="{width / 2}" y="{top + ROW}" text-anchor="middle">no samples</text></svg>')
        return "\n".join(out)
    scale = width / total

    def draw(node: _Node, x: float, depth: int) -> None:
        w = node.weight * scale
        if w < MIN_PX:
            return
        y = top + depth * ROW
        share = node.weight / total
        detail = f" ({node.frame.location}, {node.frame.kind})" if node.frame else ""
        tip = (f"{node.label}{detail}\n{_fmt_weight(profile, node.weight)}, {100 * share:.1f}% total, "
               f"{100 * node.self_weight / total:.1f}% self")
        room = int((w - 6) / CHAR)
        label = node.label if len(node.label) <= room else (node.label[:room - 2] + ".." if room > 3 else "")
        out.append(f'<g class="f" data-x="{x / width:.6f}" data-w="{w / width:.6f}" data-d="{depth}">'
                   f'<title>{html.escape(tip)}</title>'
                   f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{ROW - 1}" fill="{_colour(node)}" rx="2"/>'
                   f'<text x="{x + 3:.2f}" y="{y + ROW - 5}">{html.escape(label)}</text></g>')
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.label):
            draw(child, cx, depth + 1)
            cx += child.weight * scale

    draw(root, 0.0, 0)
    out.append("</svg>")
    return "\n".join(out)


_ZOOM = """<script>
// click a frame to zoom to it, click the root ("all") to zoom out; text is re-fitted
(function () {
  var svg = document.querySelector('svg.flamegraph'); if (!svg) return;
  var W = svg.viewBox.baseVal.width, CH = %(char)s;
  var groups = Array.prototype.slice.call(svg.querySelectorAll('g.f'));
  groups.forEach(function (g) {
    var t = g.querySelector('title').textContent; g.dataset.name = t.split('\\n')[0].split(' (')[0];
    g.addEventListener('click', function () { zoom(+g.dataset.x, +g.dataset.w, +g.dataset.d); });
  });
  function zoom(x0, w0, d0) {
    groups.forEach(function (g) {
      var x = (+g.dataset.x - x0) / w0, w = +g.dataset.w / w0, d = +g.dataset.d;
      var show = x >= -1e-9 && x + w <= 1 + 1e-9 && (d >= d0 || w >= 1 - 1e-9) && w * W >= 0.3;
      g.style.display = show ? '' : 'none'; if (!show) return;
      var r = g.querySelector('rect'), tx = g.querySelector('text');
      r.setAttribute('x', x * W); r.setAttribute('width', w * W); tx.setAttribute('x', x * W + 3);
      var room = Math.floor((w * W - 6) / CH), n = g.dataset.name;
      tx.textContent = n.length <= room ? n : (room > 3 ? n.slice(0, room - 2) + '..' : '');
    });
  }
})();
</script>""" % {"char": CHAR}


def _spot_rows(spots: Sequence[HotSpot]) -> str:
    def sec(v: float | None) -> str:
        return "" if v is None else (f"{v * 1e3:,.2f} ms" if v < 1 else f"{v:,.3f} s")
    rows = []
    for s in spots:
        rows.append(f"<tr class='{html.escape(s.kind)}'><td>{s.rank}</td><td>{html.escape(s.function)}</td>"
                    f"<td>{html.escape(s.location)}</td><td>{html.escape(s.kind)}</td>"
                    f"<td>{100 * s.self_share:.1f}%</td><td>{100 * s.total_share:.1f}%</td>"
                    f"<td>{sec(s.self_seconds)}</td><td>{sec(s.total_seconds)}</td></tr>")
    head = ("<tr><th>#</th><th>function</th><th>where</th><th>kind</th><th>self</th><th>total</th>"
            "<th>self s</th><th>total s</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def render_html(profile: Profile, *, title: str | None = None, signals: Sequence[Any] = (),
                notes: Sequence[str] = ()) -> str:
    """A standalone HTML page: the flame graph (click to zoom), hot spots, signals and notes."""
    title = title or f"{profile.profiler or 'profile'} flame graph"
    per_call = f", {profile.calls} calls (seconds are per call)" if profile.calls else ""
    summary = (f"profiler {html.escape(profile.profiler or '?')}, {profile.duration:.2f} s profiled, "
               f"{_fmt_weight(profile, profile.total)} recorded{per_call}")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:Verdana,sans-serif;font-size:13px;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:2px 8px;border-bottom:1px solid #ddd;"
        "text-align:left}tr.user td:nth-child(2){font-weight:bold}.warn{color:#a40}.legend span{display:inline-block;"
        "padding:1px 8px;margin-right:6px;border-radius:3px}svg{max-width:100%;height:auto}"
        "g.f{cursor:pointer}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{summary}</p>",
        "<p class='legend'><span style='background:hsl(25,80%,62%)'>user code</span>"
        "<span style='background:hsl(210,55%,72%)'>libraries</span>"
        "<span style='background:hsl(140,40%,72%)'>standard library</span>"
        "<span style='background:hsl(0,0%,77%)'>native, generated</span>"
        "<span style='background:hsl(270,35%,80%)'>perfloop</span> Click a frame to zoom; "
        "click the top bar to zoom out.</p>",
        render_svg(profile, title=title),
    ]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if signals:
        items = "".join(f"<li class='{html.escape(s.severity)}'><b>{html.escape(s.name)}</b>: "
                        f"{html.escape(s.reading)}</li>" for s in signals)
        parts.append(f"<h2>Signals</h2><ul>{items}</ul>")
    parts.append("<h2>Hot spots in user code</h2><p>Each sample is charged to the innermost frame of "
                 "user code on its stack.</p>" + _spot_rows(hot_spots(profile, scope="user")))
    parts.append("<h2>Hot spots, all code</h2>" + _spot_rows(hot_spots(profile)))
    parts.append(_ZOOM + "</body></html>")
    return "\n".join(parts)


def write_speedscope(profile: Profile, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(to_speedscope(profile)))
    return path


def write_flamegraph(profile: Profile, path_prefix: str | Path, *, title: str | None = None,
                     formats: Sequence[str] = ("speedscope", "svg", "html"), signals: Sequence[Any] = (),
                     notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write the profile as ``PREFIX.speedscope.json``, ``PREFIX.svg`` and ``PREFIX.html``.

    Returns the paths written, by format. Parent directories are created.
    """
    unknown = set(formats) - {"speedscope", "svg", "html"}
    if unknown:
        raise ValueError(f"unknown flame graph format(s): {', '.join(sorted(unknown))}")
    prefix = Path(path_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "speedscope" in formats:
        written["speedscope"] = write_speedscope(profile, prefix.with_name(prefix.name + ".speedscope.json"))
    if "svg" in formats:
        svg = prefix.with_name(prefix.name + ".svg")
        svg.write_text(render_svg(profile, title=title))
        written["svg"] = svg
    if "html" in formats:
        page = prefix.with_name(prefix.name + ".html")
        page.write_text(render_html(profile, title=title, signals=signals, notes=notes))
        written["html"] = page
    return written
