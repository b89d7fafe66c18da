"""The metrics-endpoint scraper: parsing, histogram quantiles, rates, a window without waiting."""

from __future__ import annotations

import math

import pytest

from perfloop.errors import TargetError, UsageError
from perfloop.measure.scrape import (Selector, bucket_quantile, parse_exposition, parse_selector, scrape,
                                     to_results)

PAGE = '''# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/checkout",le="0.01"} {b1}
http_request_duration_seconds_bucket{route="/checkout",le="0.05"} {b2}
http_request_duration_seconds_bucket{route="/checkout",le="0.1"} {b3}
http_request_duration_seconds_bucket{route="/checkout",le="+Inf"} {b3}
http_request_duration_seconds_sum{route="/checkout"} {s}
http_request_duration_seconds_count{route="/checkout"} {b3}
http_request_duration_seconds_bucket{route="/health",le="0.01"} 1000
http_request_duration_seconds_bucket{route="/health",le="0.05"} 1000
http_request_duration_seconds_bucket{route="/health",le="0.1"} 1000
http_request_duration_seconds_bucket{route="/health",le="+Inf"} 1000
http_request_duration_seconds_sum{route="/health"} 1
http_request_duration_seconds_count{route="/health"} 1000
# TYPE http_requests_total counter
http_requests_total{code="200"} {ok}
http_requests_total{code="500"} {err}
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes {rss}
'''


def page(n: int, *, slow: bool = False) -> str:
    """The page after ``n`` intervals of 100 requests: 90 under 10 ms, 10 between 10 and 50 ms;
    ``slow`` moves those 10 into the 50-100 ms bucket."""
    b1 = 90 * n
    b2 = 100 * n if not slow else 90 * n
    values = {"b1": b1, "b2": b2, "b3": 100 * n, "s": 1.5 * n, "ok": 98 * n, "err": 2 * n,
              "rss": 50_000_000 + n * 1_000_000}
    text = PAGE
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


class FakeEndpoint:
    """Serves page(k) on the k-th fetch; the clock advances only when the scraper sleeps."""

    def __init__(self, slow: bool = False) -> None:
        self.now = 0.0
        self.fetches = 0
        self.slow = slow

    def fetch(self, url: str) -> str:
        text = page(self.fetches, slow=self.slow)
        self.fetches += 1
        return text

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_parse_exposition_reads_types_labels_and_special_values() -> None:
    exp = parse_exposition(page(1) + 'weird{a="x\\"y",b="1"} NaN 1700000000\nup +Inf\n# EOF\n')
    assert exp.types["http_request_duration_seconds"] == "histogram"
    assert exp.types["http_requests_total"] == "counter"
    weird = next(p for p in exp.points if p.name == "weird")
    assert weird.labels == {"a": 'x"y', "b": "1"} and math.isnan(weird.value) and weird.timestamp == 1.7e9
    assert next(p for p in exp.points if p.name == "up").value == math.inf
    with pytest.raises(ValueError, match="cannot read"):
        parse_exposition("this is not a metric line at all {")


def test_selector_parsing() -> None:
    assert parse_selector('http_request_duration_seconds{route="/checkout"}') == Selector(
        "http_request_duration_seconds", {"route": "/checkout"})
    assert str(parse_selector("x")) == "x"
    with pytest.raises(UsageError, match="selector"):
        parse_selector("not a { selector")


def test_bucket_quantile_interpolates_like_promql() -> None:
    buckets = {0.01: 90.0, 0.05: 100.0, math.inf: 100.0}
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.01 * 50 / 90)
    assert bucket_quantile(0.95, buckets) == pytest.approx(0.01 + 0.04 * 5 / 10)
    assert bucket_quantile(0.99, {0.1: 10.0, math.inf: 20.0}) == 0.1   # in +Inf: the largest bound
    assert bucket_quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None


def test_a_window_of_scrapes_gives_one_value_per_interval_without_waiting() -> None:
    fake = FakeEndpoint()
    capture = scrape("http://svc/metrics", duration=60, interval=15, fetch=fake.fetch, clock=fake.clock,
                     sleep=fake.sleep)
    assert fake.fetches == 5 and capture.duration == 60 and fake.now == 60
    selectors = [parse_selector('http_request_duration_seconds{route="/checkout"}'),
                 parse_selector("http_requests_total"), parse_selector('http_requests_total{code="500"}'),
                 parse_selector("process_resident_memory_bytes")]
    latency, requests, errors, rss = to_results(capture, selectors)
    # each interval: 100 requests, the 10 slowest between 10 and 50 ms, so p99 = 10 + 40 * 9/10 ms
    assert latency.values("http_request_duration_seconds:p99") == pytest.approx([0.046] * 4)
    assert latency.values("http_request_duration_seconds:rate") == pytest.approx([100 / 15] * 4)
    assert latency.values("http_request_duration_seconds:mean") == pytest.approx([0.015] * 4)
    assert latency.units["http_request_duration_seconds:p99"] == "s"
    assert latency.directions["http_request_duration_seconds:rate"] == "higher"
    assert sorted(latency.by_worker("http_request_duration_seconds:p99")) == [0, 1, 2, 3]
    assert requests.values("http_requests_total:rate") == pytest.approx([100 / 15] * 4)
    assert errors.directions.get("http_requests_total:rate") == "higher"  # the name says requests
    assert rss.values("process_resident_memory_bytes") == [50_000_000 + n * 1_000_000 for n in range(5)]
    assert rss.directions["process_resident_memory_bytes"] == "lower"


def test_a_slower_service_shows_in_the_p99() -> None:
    fake = FakeEndpoint(slow=True)
    capture = scrape("http://svc/metrics", duration=30, interval=10, fetch=fake.fetch, clock=fake.clock,
                     sleep=fake.sleep)
    [latency] = to_results(capture, [parse_selector('http_request_duration_seconds{route="/checkout"}')])
    assert latency.values("http_request_duration_seconds:p99") == pytest.approx([0.05 + 0.05 * 9 / 10] * 3)


def test_error_counters_are_lower_is_better_and_restarts_are_skipped() -> None:
    texts = ["# TYPE app_errors_total counter\napp_errors_total 10\n",
             "# TYPE app_errors_total counter\napp_errors_total 20\n",
             "# TYPE app_errors_total counter\napp_errors_total 3\n",     # restarted
             "# TYPE app_errors_total counter\napp_errors_total 13\n"]
    fake = FakeEndpoint()
    capture = scrape("u", duration=3, interval=1, fetch=lambda url: texts.pop(0), clock=fake.clock,
                     sleep=fake.sleep)
    [result] = to_results(capture, [parse_selector("app_errors_total")])
    assert result.values("app_errors_total:rate") == [10.0, 10.0]
    assert result.directions["app_errors_total:rate"] == "lower"


def test_missing_series_fail_with_a_reason_and_a_bad_first_scrape_fails_at_once() -> None:
    fake = FakeEndpoint()
    capture = scrape("u", duration=2, interval=1, fetch=fake.fetch, clock=fake.clock, sleep=fake.sleep)
    [missing] = to_results(capture, [parse_selector("no_such_metric")])
    assert missing.status.value == "failed" and "no series named no_such_metric" in (missing.error or "")
    with pytest.raises(TargetError, match="Prometheus text format"):
        scrape("u", duration=2, interval=1, fetch=lambda url: "<html>", clock=fake.clock, sleep=fake.sleep)
    with pytest.raises(UsageError, match="longer than the duration"):
        scrape("u", duration=1, interval=5, fetch=fake.fetch)


def test_a_failed_scrape_mid_window_is_counted_not_fatal() -> None:
    fake = FakeEndpoint()

    def flaky(url: str) -> str:
        if fake.fetches == 2:
            fake.fetches += 1
            raise TargetError("connection refused")
        return fake.fetch(url)

    capture = scrape("u", duration=4, interval=1, fetch=flaky, clock=fake.clock, sleep=fake.sleep)
    assert len(capture.scrapes) == 4 and len(capture.errors) == 1
    [result] = to_results(capture, [parse_selector("http_requests_total")])
    assert result.warnings and "1 scrape(s) failed" in result.warnings[0]
