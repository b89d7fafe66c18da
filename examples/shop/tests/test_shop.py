"""The shop's own tests: pricing, cache, pool, seed, API, benchmarks, report and patches.

Run directly (``pytest tests`` from ``examples/shop``) or from perfloop's suite
(``tests/test_example_shop.py`` re-exports them). Fixtures live in this module, not in a
conftest, so that re-export carries them along. Nothing here measures time.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest

SHOP_ROOT = Path(__file__).resolve().parent.parent
if str(SHOP_ROOT) not in sys.path:
    sys.path.insert(0, str(SHOP_ROOT))

from shop import bench, report  # noqa: E402
from shop.cache import LRUCache  # noqa: E402
from shop.db import N_CUSTOMERS, N_PRODUCTS, N_RULES, ConnectionPool, PoolExhausted, ensure_database  # noqa: E402
from shop.models import CartLine, Customer, DiscountRule, Product  # noqa: E402
from shop.pricing import apply_discounts, parse_condition, price_cart  # noqa: E402
from shop.serialize import order_to_dict, product_to_dict  # noqa: E402
from shop.service import Shop  # noqa: E402
from shop.settings import Settings, from_env  # noqa: E402

PATCHES = ("fix-hot-spot.patch", "cache-everything.patch")


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded database of the example's own, shared by the module's tests (read-only)."""
    return ensure_database(tmp_path_factory.mktemp("shop") / "shop.db")


@pytest.fixture
def shop_env(shop_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SHOP_DB at the test database for code that reads the environment."""
    monkeypatch.setenv("SHOP_DB", str(shop_db))
    return shop_db


@pytest.fixture
def client(shop_db: Path) -> Iterator[object]:
    pytest.importorskip("httpx")
    with warnings.catch_warnings():
        # Starlette nudges towards a successor of httpx; the client works as it is.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from shop.app import create_app

    app = create_app(Settings(db_path=shop_db, pool_size=2, cache_size=16))
    with TestClient(app) as test_client:
        yield test_client


# --- pricing on a hand-computed cart -----------------------------------------------------

def _p(pid: int, category: str, price: str) -> Product:
    return Product(id=pid, sku=f"T-{pid}", name=f"test {pid}", category=category, price=Decimal(price))


RAKE = _p(1, "garden/tools", "12.50")
SPEAKER = _p(2, "electronics/audio", "99.99")
NOVEL = _p(3, "books/fiction", "7.99")

HAND_RULES = [
    DiscountRule(1, "garden", "category ~ garden/", Decimal("10"), priority=5),
    DiscountRule(2, "tools x3", "category ~ garden/tools$; qty >= 3", Decimal("5"), priority=3),
    DiscountRule(3, "gold", "tier >= gold", Decimal("20"), priority=9),
    DiscountRule(4, "big audio", "category ~ electronics/; price >= 50", Decimal("15"), priority=7,
                 exclusive=True),
    DiscountRule(5, "media", "category ~ (?:electronics|books)/", Decimal("5"), priority=1),
    DiscountRule(6, "retired", "category ~ books/", Decimal("50"), priority=9, active=False),
    DiscountRule(7, "readers", "category ~ books/; tier >= silver", Decimal("7.5"), priority=2),
    DiscountRule(8, "two or more", "qty >= 2", Decimal("2"), priority=0),
]
HAND_CART = [CartLine(RAKE, 4), CartLine(SPEAKER, 1), CartLine(NOVEL, 3)]


def test_hand_computed_cart_for_a_silver_customer() -> None:
    order = price_cart(HAND_CART, Customer(1, "Ada", "silver"), HAND_RULES)
    rake, speaker, novel = order.lines
    # rake: rules 1 (p5), 2 (p3), 8 (p0) apply; the two highest add up: 10% + 5% of 50.00
    assert (rake.gross, rake.discount_percent, rake.discount, rake.net) == (
        Decimal("50.00"), Decimal("15"), Decimal("7.50"), Decimal("42.50"))
    assert rake.rule_ids == (1, 2)
    # speaker: exclusive rule 4 ranks first and applies alone: 15% of 99.99 = 14.9985 -> 15.00
    assert (speaker.discount, speaker.net, speaker.rule_ids) == (Decimal("15.00"), Decimal("84.99"), (4,))
    # novel: rule 6 is inactive; 7 (p2) and 5 (p1) win over 8: 12.5% of 23.97 = 2.99625 -> 3.00
    assert (novel.gross, novel.discount, novel.net, novel.rule_ids) == (
        Decimal("23.97"), Decimal("3.00"), Decimal("20.97"), (7, 5))
    assert (order.subtotal, order.discount, order.total, order.item_count) == (
        Decimal("173.96"), Decimal("25.50"), Decimal("148.46"), 8)


def test_hand_computed_cart_for_a_gold_customer() -> None:
    order = price_cart(HAND_CART, Customer(2, "Ben", "gold"), HAND_RULES)
    rake, speaker, novel = order.lines
    # gold rule 3 (p9) ranks first: 20% + rule 1's 10% = 30%, exactly the cap
    assert (rake.discount_percent, rake.discount, rake.rule_ids) == (Decimal("30"), Decimal("15.00"), (3, 1))
    # the exclusive rule 4 is second, so it is skipped: 20% + 5% of 99.99 = 24.9975 -> 25.00
    assert (speaker.discount, speaker.rule_ids) == (Decimal("25.00"), (3, 5))
    # 20% + 7.5% of 23.97 = 6.59175 -> 6.59
    assert (novel.discount, novel.rule_ids) == (Decimal("6.59"), (3, 7))
    assert order.total == Decimal("173.96") - Decimal("46.59")


def test_stacked_discount_is_capped() -> None:
    rules = [DiscountRule(1, "a", "", Decimal("25"), priority=2),
             DiscountRule(2, "b", "", Decimal("25"), priority=1)]
    (line,) = apply_discounts([CartLine(RAKE, 1)], Customer(1, "Ada", "bronze"), rules)
    assert line.discount_percent == Decimal("30")
    assert line.discount == Decimal("3.75")


def test_lines_are_priced_independently() -> None:
    customer = Customer(1, "Ada", "silver")
    together = apply_discounts(HAND_CART, customer, HAND_RULES)
    alone = [apply_discounts([line], customer, HAND_RULES)[0] for line in HAND_CART]
    assert together == alone


def test_parse_condition() -> None:
    cond = parse_condition(" category ~ garden/(tools|plants)$ ; tier >= gold; qty >= 3; price >= 9.50 ")
    assert cond.category is not None and cond.category.pattern == "garden/(tools|plants)$"
    assert (cond.min_tier, cond.min_qty, cond.min_price) == (2, 3, Decimal("9.50"))
    assert parse_condition("") == parse_condition(" ; ")
    for bad in ("tier >= diamond", "qty ~ 3", "category >= garden/", "colour >= red", "qty >="):
        with pytest.raises(ValueError):
            parse_condition(bad)


# --- cache -------------------------------------------------------------------------------

def test_lru_cache_respects_its_size() -> None:
    cache: LRUCache[int, str] = LRUCache(3)
    for key in range(5):
        cache.put(key, str(key))
    assert len(cache) == 3 and 0 not in cache and 1 not in cache
    assert cache.get(2) == "2"              # 2 becomes the most recently used
    cache.put(5, "5")                       # so 3 is evicted, not 2
    assert 2 in cache and 3 not in cache
    cache.resize(1)
    assert len(cache) == 1 and 5 in cache
    cache.resize(0)
    cache.put(9, "9")
    assert len(cache) == 0 and cache.get(9) is None
    assert cache.stats()["hits"] == 1
    with pytest.raises(ValueError):
        LRUCache(-1)


def test_product_cache_respects_shop_cache_size(shop_db: Path) -> None:
    with Shop(Settings(db_path=shop_db, pool_size=1, cache_size=5)) as shop:
        for pid in range(1, 21):
            assert shop.catalog.product(pid) is not None
        assert len(shop.cache) == 5
        assert set(range(16, 21)) == {pid for pid in range(1, 21) if pid in shop.cache}
        assert shop.catalog.product(N_PRODUCTS + 1) is None
        assert len(shop.cache) == 5


# --- pool and settings -------------------------------------------------------------------

def test_pool_hands_out_at_most_its_size(shop_db: Path) -> None:
    pool = ConnectionPool(shop_db, 2)
    try:
        with pool.connection() as a, pool.connection() as b:
            assert a is not b
            with pytest.raises(PoolExhausted, match="SHOP_POOL_SIZE"):
                with pool.connection(timeout=0):
                    pass
            assert pool.in_use == 2
        with pool.connection(timeout=0) as c:
            assert c in (a, b)
    finally:
        pool.close()


def test_pool_bounds_concurrent_queries(shop_db: Path) -> None:
    pool = ConnectionPool(shop_db, 3)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for pid in range(1, 40):
                with pool.connection() as conn:
                    assert conn.execute("SELECT id FROM products WHERE id = ?", (pid,)).fetchone() == (pid,)
        except BaseException as exc:  # surfaced below: an assertion in a thread is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        pool.close()
    assert not errors
    assert 1 <= pool.peak_in_use <= 3 and pool.in_use == 0


def test_pool_is_read_only(shop_db: Path) -> None:
    pool = ConnectionPool(shop_db, 1)
    try:
        with pool.connection() as conn, pytest.raises(sqlite3.OperationalError):
            conn.execute("DELETE FROM products")
    finally:
        pool.close()


def test_settings_from_env(shop_db: Path) -> None:
    settings = from_env({"SHOP_DB": str(shop_db), "SHOP_POOL_SIZE": "3", "SHOP_CACHE_SIZE": "7"})
    assert settings == Settings(db_path=shop_db, pool_size=3, cache_size=7)
    assert from_env({}) == Settings()
    with Shop(settings) as shop:
        assert shop.pool.size == 3 and shop.cache.maxsize == 7
    for env in ({"SHOP_POOL_SIZE": "0"}, {"SHOP_POOL_SIZE": "four"}, {"SHOP_CACHE_SIZE": "-1"}):
        with pytest.raises(ValueError):
            from_env(env)


# --- seed --------------------------------------------------------------------------------

def test_seed_is_deterministic(shop_db: Path, tmp_path: Path) -> None:
    other = ensure_database(tmp_path / "again.db")
    with sqlite3.connect(shop_db) as a, sqlite3.connect(other) as b:
        assert list(a.iterdump()) == list(b.iterdump())
        counts = [a.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("products", "customers", "discount_rules")]
    assert counts == [N_PRODUCTS, N_CUSTOMERS, N_RULES]


def test_seeded_rules_all_parse(shop_db: Path) -> None:
    with Shop(Settings(db_path=shop_db, pool_size=1)) as shop:
        for rule in shop.rules:
            parse_condition(rule.condition)
        assert len(shop.rules) == N_RULES


# --- HTTP API ----------------------------------------------------------------------------

def test_health(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["pool_size"] == 2 and body["rules"] == N_RULES


def test_get_product_and_404(client, shop_db: Path) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/products/42")
    assert response.status_code == 200
    with Shop(Settings(db_path=shop_db, pool_size=1)) as shop:
        assert response.json() == product_to_dict(shop.catalog.product(42))
    missing = client.get(f"/products/{N_PRODUCTS + 1}")
    assert missing.status_code == 404 and str(N_PRODUCTS + 1) in missing.json()["detail"]


def test_checkout_totals(client, shop_db: Path) -> None:  # type: ignore[no-untyped-def]
    items = [(1, 2), (42, 1), (1337, 5), (2999, 3)]
    response = client.post("/checkout", json={
        "customer_id": 7, "lines": [{"product_id": p, "quantity": q} for p, q in items]})
    assert response.status_code == 200
    body = response.json()
    with Shop(Settings(db_path=shop_db, pool_size=1)) as shop:
        customer = shop.catalog.customer(7)
        lines = [CartLine(shop.catalog.product(p), q) for p, q in items]
        expected = price_cart(lines, customer, shop.rules)
    assert body == order_to_dict(expected)
    assert Decimal(body["total"]) == Decimal(body["subtotal"]) - Decimal(body["discount"])
    assert Decimal(body["total"]) == sum(Decimal(line["net"]) for line in body["lines"])
    assert body["item_count"] == 11


def test_checkout_errors(client) -> None:  # type: ignore[no-untyped-def]
    unknown_product = client.post("/checkout", json={
        "customer_id": 1, "lines": [{"product_id": 5, "quantity": 1},
                                    {"product_id": N_PRODUCTS + 7, "quantity": 1}]})
    assert unknown_product.status_code == 404
    assert str(N_PRODUCTS + 7) in unknown_product.json()["detail"]
    unknown_customer = client.post("/checkout", json={
        "customer_id": N_CUSTOMERS + 1, "lines": [{"product_id": 5, "quantity": 1}]})
    assert unknown_customer.status_code == 404 and "customer" in unknown_customer.json()["detail"]
    for bad in ({"customer_id": 1, "lines": []},
                {"customer_id": 1, "lines": [{"product_id": 5, "quantity": 0}]}):
        assert client.post("/checkout", json=bad).status_code == 422


def test_orders_summary(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/orders/summary", params={"limit": 50}).json()
    assert len(body["orders"]) == body["totals"]["orders"] == 50
    ids = [o["id"] for o in body["orders"]]
    assert ids == sorted(ids, reverse=True)
    revenue = sum(Decimal(o["total"]) for o in body["orders"])
    assert Decimal(body["totals"]["revenue"]) == revenue
    assert sum(Decimal(v["revenue"]) for v in body["by_tier"].values()) == revenue
    assert sum(v["units"] for v in body["by_category"].values()) == body["totals"]["units"]
    assert client.get("/orders/summary", params={"limit": 0}).status_code == 422


# --- benchmarks and the batch job --------------------------------------------------------

def test_bench_functions(shop_env: Path) -> None:
    ctx = bench.setup_checkout(5)
    assert len(ctx.lines) == 5 and ctx.customer.tier == "gold"
    assert bench.checkout(ctx) == ctx.order
    assert bench.setup_checkout(5).lines == ctx.lines
    decoded = json.loads(bench.serialize_order(ctx))
    assert decoded["total"] == str(ctx.order.total.quantize(Decimal("0.01")))
    with pytest.raises(ValueError):
        bench.setup_checkout(0)


def test_report_is_deterministic(shop_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Shop(from_env()) as shop:
        first = report.run(shop, carts=15, seed=5)
        assert report.run(shop, carts=15, seed=5) == first
    assert first["carts"] == 15
    assert Decimal(first["total"]) == Decimal(first["subtotal"]) - Decimal(first["discount"])
    assert report.main(["--carts", "15", "--seed", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first


# --- patches -----------------------------------------------------------------------------

def _copy_shop(dest: Path) -> Path:
    shutil.copytree(SHOP_ROOT, dest, ignore=shutil.ignore_patterns(
        "var", "__pycache__", ".perfloop", ".pytest_cache", "*.pyc"))
    return dest


def _fingerprint(root: Path, db: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(root / "tests" / "fingerprint.py")], cwd=root,
                          env={**os.environ, "SHOP_DB": str(db)},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def original_fingerprint(shop_db: Path) -> dict[str, object]:
    return _fingerprint(SHOP_ROOT, shop_db)


@pytest.mark.slow
@pytest.mark.parametrize("patch_name", PATCHES)
def test_patch_keeps_results(patch_name: str, tmp_path: Path, shop_db: Path,
                             original_fingerprint: dict[str, object]) -> None:
    copy = _copy_shop(tmp_path / "shop")
    patch_file = SHOP_ROOT / "patches" / patch_name
    check = subprocess.run(["patch", "-p1", "--dry-run", "--forward", "-i", str(patch_file)], cwd=copy,
                           capture_output=True, text=True)
    assert check.returncode == 0, f"{patch_name} does not apply cleanly:\n{check.stdout}{check.stderr}"
    applied = subprocess.run(["patch", "-p1", "--forward", "-i", str(patch_file)], cwd=copy,
                             capture_output=True, text=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "fuzz" not in applied.stdout.lower() and "offset" not in applied.stdout.lower(), applied.stdout
    assert (copy / "shop" / "pricing.py").read_text() != (SHOP_ROOT / "shop" / "pricing.py").read_text()
    assert _fingerprint(copy, shop_db) == original_fingerprint


@pytest.mark.slow
@pytest.mark.parametrize("patch_name", PATCHES)
def test_patched_copy_passes_its_tests(patch_name: str, tmp_path: Path) -> None:
    copy = _copy_shop(tmp_path / "shop")
    applied = subprocess.run(["patch", "-p1", "--forward", "-i", str(SHOP_ROOT / "patches" / patch_name)],
                             cwd=copy, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    # The copy's own patch tests are left out: they would patch an already patched copy.
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-k", "not patch", "tests"], cwd=copy, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
