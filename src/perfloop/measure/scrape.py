"""Scraping a live service's metrics endpoint (Prometheus / OpenMetrics text format) over time.

A benchmark measures code in a controlled setting; a live service is measured where it runs.
"Capture the p99 for ten minutes before the change, and the same ten minutes after it" is
done here: :func:`scrape` fetches the endpoint every ``interval`` seconds for ``duration``
seconds, and :func:`to_results` turns each *interval between two scrapes* into one value per
derived metric, so that the intervals play the part workers play in a benchmark (the unit the
statistics resample), and a before/after pair compares with the same verdict engine as runs.

What a selector (``name`` or ``name{label="value",...}``) yields depends on the family's type
(``# TYPE`` line; without one, the name's suffix decides):

- histogram: per interval, from the bucket increments, ``NAME:p50``, ``NAME:p90``,
  ``NAME:p99`` (linear interpolation inside a bucket, as PromQL's ``histogram_quantile``),
  ``NAME:mean`` (sum increment / count increment) and ``NAME:rate`` (observations per second);
- summary: the quantiles it exports (``NAME:p99`` for ``quantile="0.99"``) at each scrape,
  and ``NAME:rate``;
- counter (or a name ending in ``_total``): ``NAME:rate`` per interval;
- gauge or untyped: ``NAME``, its value at each scrape.

Series a selector matches are added together (the rates of all instances of a counter add up;
narrow the selector with labels to pick one). Rates are better higher (throughput), except a
counter whose name says error or failure; everything else is better lower. A counter that went
down between two scrapes (a restart) gives no value for that interval rather than a negative
rate.

Fetching, the clock and sleeping are injectable, so the whole of this is tested without a server
and without waiting.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

from ..errors import TargetError, UsageError
from ..records import BenchmarkResult, ResultStatus, Sample

#: Quantiles derived from histograms, as metric suffixes.
HISTOGRAM_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
DEFAULT_INTERVAL = 15.0         # seconds between scrapes, Prometheus's usual scrape interval
KIND = "scrape"                 # BenchmarkResult.kind of a scraped series

_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_gsum", "_gcount")
_SAMPLE_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+(\S+))?\s*$")
_LABEL_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_SELECTOR_RE = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{.*\})?\s*$")


@dataclass(frozen=True)
class MetricPoint:
    """One sample line of an exposition: ``name{labels} value [timestamp]``."""

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


@dataclass(frozen=True)
class Exposition:
    """A parsed metrics page: its sample lines and the declared type of each family."""

    points: tuple[MetricPoint, ...]
    types: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Selector:
    """Which series to read: a family name and label values they must have."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.labels:
            return self.name
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}"


@dataclass(frozen=True)
class Scrape:
    """One fetch of the endpoint: when (seconds on the scraper's clock) and what it said."""

    t: float
    exposition: Exposition


@dataclass(frozen=True)
class Capture:
    """Scrapes of one endpoint over a window."""

    url: str
    scrapes: tuple[Scrape, ...]
    interval: float
    errors: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return self.scrapes[-1].t - self.scrapes[0].t if len(self.scrapes) > 1 else 0.0


# --------------------------------------------------------------------------------------------
# parsing


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def _labels(text: str | None, line: str) -> dict[str, str]:
    if not text:
        return {}
    inner = text.strip()[1:-1]
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        if not inner[pos:].strip():
            break
        m = _LABEL_RE.match(inner, pos)
        if m is None:
            raise ValueError(f"cannot read the labels of {line!r}")
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return labels


def _number(text: str, line: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number in {line!r}: {text!r}") from None


def parse_exposition(text: str) -> Exposition:
    """Parse the Prometheus text format (0.0.4) or OpenMetrics text; raise ValueError if malformed."""
    points: list[MetricPoint] = []
    types: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip().lower()
            continue
        m = _SAMPLE_RE.match(line)
        if m is None:
            raise ValueError(f"cannot read the metrics line {line!r}")
        name, label_text, value, stamp = m.groups()
        timestamp = _number(stamp, line) if stamp and not stamp.startswith("#") else None
        points.append(MetricPoint(name, _labels(label_text, line), _number(value, line), timestamp))
    return Exposition(tuple(points), types)


def parse_selector(text: str) -> Selector:
    """``http_request_duration_seconds{route="/checkout"}`` -> a :class:`Selector`."""
    m = _SELECTOR_RE.match(text)
    if m is None:
        raise UsageError(f"cannot read the metric selector {text!r}",
                         hint='write NAME or NAME{label="value"}, e.g. '
                              'http_request_duration_seconds{route="/checkout"}')
    try:
        labels = _labels(m.group(2), text)
    except ValueError as exc:
        raise UsageError(str(exc), hint='labels are written {name="value",...}') from None
    return Selector(m.group(1), labels)


# --------------------------------------------------------------------------------------------
# scraping


def fetch_text(url: str, *, timeout: float = 10.0) -> str:
    """GET the metrics page; a TargetError that says what to check when it fails."""
    import httpx
    try:
        response = httpx.get(url, timeout=timeout, headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    except httpx.HTTPError as exc:
        raise TargetError(f"cannot scrape {url}: {exc}",
                          hint="check that the service is running and that the URL is its metrics "
                               "endpoint (often /metrics)") from exc
    if response.status_code != 200:
        raise TargetError(f"scraping {url} answered HTTP {response.status_code}",
                          hint="point --scrape at the service's metrics endpoint (often /metrics)")
    return response.text


def scrape(url: str, *, duration: float, interval: float = DEFAULT_INTERVAL,
           fetch: Callable[[str], str] | None = None, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep,
           on_progress: Callable[[float], None] | None = None) -> Capture:
    """Fetch ``url`` at the start and then every ``interval`` seconds until ``duration`` has passed.

    A failed fetch in the middle is recorded in ``errors`` and the window goes on (a service
    under load may miss one scrape); the first fetch must succeed, so that a wrong URL fails at
    once instead of after ten minutes.
    """
    if duration <= 0 or interval <= 0:
        raise UsageError("a scrape needs a positive duration and interval")
    if interval > duration:
        raise UsageError(f"the scrape interval ({interval:g} s) is longer than the duration "
                         f"({duration:g} s)", hint="scrape at least twice: shorten --interval")
    fetch = fetch or fetch_text
    start = clock()
    first = fetch(url)
    try:
        scrapes = [Scrape(0.0, parse_exposition(first))]
    except ValueError as exc:
        raise TargetError(f"{url} is not in the Prometheus text format: {exc}",
                          hint="point --scrape at the service's metrics endpoint") from exc
    errors: list[str] = []
    n = int(math.floor(duration / interval + 1e-9))
    for i in range(1, n + 1):
        wait = start + i * interval - clock()
        if wait > 0:
            sleep(wait)
        try:
            text = fetch(url)
            scrapes.append(Scrape(clock() - start, parse_exposition(text)))
        except (TargetError, ValueError) as exc:
            errors.append(f"scrape {i}: {exc}")
        if on_progress:
            on_progress(i / n)
    return Capture(url, tuple(scrapes), interval, tuple(errors))


# --------------------------------------------------------------------------------------------
# from scrapes to values per interval


def _family(name: str, types: Mapping[str, str]) -> tuple[str, str]:
    """(family name, type) of a sample name, using the declared types, else the suffix."""
    if name in types:
        return name, types[name]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[:-len(suffix)] in types:
            return name[:-len(suffix)], types[name[:-len(suffix)]]
    return name, ""


def _matches(point: MetricPoint, selector: Selector, ignore: Sequence[str] = ()) -> bool:
    return all(point.labels.get(k) == v for k, v in selector.labels.items() if k not in ignore)


def _kind_of(selector: Selector, scrapes: Sequence[Scrape]) -> str:
    for s in scrapes:
        t = s.exposition.types.get(selector.name)
        if t:
            return "gauge" if t == "untyped" or t == "unknown" else t
    names = {p.name for s in scrapes for p in s.exposition.points}
    if f"{selector.name}_bucket" in names:
        return "histogram"
    if selector.name.endswith("_total") or f"{selector.name}_total" in names:
        return "counter"
    if f"{selector.name}_count" in names and f"{selector.name}_sum" in names:
        return "summary"
    return "gauge"


def _sum(points: Sequence[MetricPoint], name: str, selector: Selector,
         extra: Mapping[str, str] | None = None) -> float | None:
    values = [p.value for p in points if p.name == name and _matches(p, selector)
              and all(p.labels.get(k) == v for k, v in (extra or {}).items())]
    return sum(values) if values else None


def _buckets(points: Sequence[MetricPoint], selector: Selector) -> dict[float, float]:
    out: dict[float, float] = {}
    for p in points:
        if p.name == f"{selector.name}_bucket" and "le" in p.labels and _matches(p, selector, ("le",)):
            le = _number(p.labels["le"], p.name)
            out[le] = out.get(le, 0.0) + p.value
    return out


def bucket_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile from cumulative bucket counts (upper bound -> count), as PromQL does.

    Linear interpolation inside the bucket that holds the rank; the lowest bucket starts at 0;
    a rank in the +Inf bucket gives the largest finite bound. None without observations.
    """
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def _unit(name: str) -> str:
    for suffix, unit in (("_seconds", "s"), ("_bytes", "B"), ("_ratio", "ratio")):
        if name.removesuffix("_total").endswith(suffix):
            return unit
    return ""


def _rate_direction(name: str) -> str:
    lowered = name.lower()
    return "lower" if any(w in lowered for w in ("error", "fail", "exception", "reject", "timeout")) \
        else "higher"


@dataclass
class _Series:
    values: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)

    def add(self, metric: str, index: int, value: float | None, unit: str, direction: str) -> None:
        if value is None or math.isnan(value) or math.isinf(value):
            return
        self.values.setdefault(metric, []).append((index, value))
        self.units[metric] = unit
        self.directions[metric] = direction


def _derive(capture: Capture, selector: Selector) -> _Series:
    scrapes = capture.scrapes
    kind = _kind_of(selector, scrapes)
    name = selector.name
    out = _Series()
    unit = _unit(name)
    if kind in ("gauge", "summary"):
        for i, s in enumerate(scrapes):
            pts = s.exposition.points
            if kind == "gauge":
                out.add(name, i, _sum(pts, name, selector), unit, "lower")
                continue
            quantiles = sorted({p.labels["quantile"] for p in pts
                                if p.name == name and "quantile" in p.labels and _matches(p, selector)})
            for q in quantiles:
                label = f"p{float(q) * 100:g}".replace(".", "")
                out.add(f"{name}:{label}", i, _sum(pts, name, selector, {"quantile": q}), unit, "lower")
    if kind in ("counter", "histogram", "summary"):
        count_name = {"counter": name if name.endswith("_total") else f"{name}_total"}.get(kind, f"{name}_count")
        for i in range(1, len(scrapes)):
            a, b = scrapes[i - 1], scrapes[i]
            dt = b.t - a.t
            ca = _sum(a.exposition.points, count_name, selector)
            cb = _sum(b.exposition.points, count_name, selector)
            if kind == "counter" and ca is None:     # OpenMetrics declared the family without _total
                ca = _sum(a.exposition.points, name, selector)
                cb = _sum(b.exposition.points, name, selector)
            if ca is None or cb is None or cb < ca or dt <= 0:
                continue                            # missing, or reset by a restart
            out.add(f"{name}:rate", i - 1, (cb - ca) / dt, "1/s", _rate_direction(name))
            if kind != "histogram" or cb == ca:
                continue
            ba, bb = _buckets(a.exposition.points, selector), _buckets(b.exposition.points, selector)
            delta = {le: bb[le] - ba.get(le, 0.0) for le in bb}
            if any(v < 0 for v in delta.values()):
                continue
            for label, level in HISTOGRAM_QUANTILES.items():
                out.add(f"{name}:{label}", i - 1, bucket_quantile(level, delta), unit, "lower")
            sa = _sum(a.exposition.points, f"{name}_sum", selector)
            sb = _sum(b.exposition.points, f"{name}_sum", selector)
            if sa is not None and sb is not None:
                out.add(f"{name}:mean", i - 1, (sb - sa) / (cb - ca), unit, "lower")
    return out


def to_results(capture: Capture, selectors: Sequence[Selector]) -> list[BenchmarkResult]:
    """One result per selector, one sample per interval (or scrape) per derived metric.

    Each sample's ``worker`` is its interval's index: intervals are the independent-ish units
    the comparison resamples. A selector that matched nothing gives a failed result that says so.
    """
    results: list[BenchmarkResult] = []
    for selector in selectors:
        series = _derive(capture, selector)
        samples = tuple(Sample(metric=m, value=v, worker=i, index=0)
                        for m, pairs in series.values.items() for i, v in pairs)
        extra = {"url": capture.url, "interval": capture.interval, "duration": capture.duration,
                 "scrapes": len(capture.scrapes), "errors": list(capture.errors)}
        if not samples:
            results.append(BenchmarkResult(
                name=str(selector), kind=KIND, status=ResultStatus.FAILED, extra=extra,
                error=f"no series named {selector.name} with labels {dict(selector.labels)} in "
                      f"{len(capture.scrapes)} scrape(s) of {capture.url}" +
                      (" (a counter or histogram needs at least two scrapes)"
                       if len(capture.scrapes) < 2 else "")))
            continue
        warnings = [f"{len(capture.errors)} scrape(s) failed during the window"] if capture.errors else []
        results.append(BenchmarkResult(
            name=str(selector), kind=KIND, status=ResultStatus.OK, samples=samples,
            units=series.units, directions=series.directions, warnings=tuple(warnings),
            duration=capture.duration, extra=extra))
    return results


__all__ = ["Capture", "Exposition", "MetricPoint", "Scrape", "Selector", "bucket_quantile",
           "fetch_text", "parse_exposition", "parse_selector", "scrape", "to_results"]
