"""The data layer: the SQLite schema, its deterministic seed, and a connection pool.

The database is created and seeded on first start when its file is missing. Seeding uses
``random.Random(42)`` and no clock, so every checkout of the example prices the same
catalog, and two machines benchmark the same data. Several benchmark workers may start at
once: each builds the file under a private temporary name and renames it into place, and
since every build is identical the last rename winning is harmless.
"""

from __future__ import annotations

import os
import queue
import random
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .models import TIERS

SEED = 42
N_PRODUCTS = 3000
N_CUSTOMERS = 500
N_RULES = 200
N_ORDERS = 1500

CATEGORIES: dict[str, tuple[str, ...]] = {
    "electronics": ("audio", "video", "computers", "phones", "cameras"),
    "home": ("kitchen", "bedding", "lighting", "furniture"),
    "garden": ("tools", "plants", "outdoor", "watering"),
    "sports": ("running", "cycling", "camping", "fitness"),
    "toys": ("puzzles", "games", "outdoor", "baby"),
    "books": ("fiction", "science", "cooking", "travel"),
    "grocery": ("coffee", "snacks", "pantry", "drinks"),
    "beauty": ("skincare", "hair", "fragrance"),
}
_ADJECTIVES = ("compact", "deluxe", "classic", "eco", "smart", "heavy-duty", "portable",
               "premium", "essential", "vintage", "modular", "quiet")
_WORDS = ("durable", "lightweight", "designed", "for", "everyday", "use", "with", "a",
          "warranty", "of", "two", "years", "and", "easy", "care", "made", "from", "recycled",
          "materials", "tested", "by", "our", "team", "in", "real", "homes", "fits", "most",
          "standard", "sizes")
_FIRST = ("Ada", "Ben", "Chloe", "Dev", "Eva", "Finn", "Grace", "Hugo", "Iris", "Jon", "Kira",
          "Liam", "Maya", "Noah", "Olga", "Pia", "Quinn", "Ravi", "Sara", "Tom")
_LAST = ("Novak", "Okafor", "Schmidt", "Tanaka", "Silva", "Moreau", "Kowalski", "Haddad",
         "Larsen", "Rossi", "Nguyen", "Byrne")
_PERCENTS = ("2", "2.5", "3", "5", "5", "5", "7.5", "10", "10", "15", "20")

SCHEMA = """
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    tier TEXT NOT NULL
);
CREATE TABLE discount_rules (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    condition TEXT NOT NULL,
    percent TEXT NOT NULL,          -- a decimal string: money never goes through floats
    priority INTEGER NOT NULL,
    exclusive INTEGER NOT NULL,
    active INTEGER NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    placed_on TEXT NOT NULL
);
CREATE TABLE order_lines (
    order_id INTEGER NOT NULL REFERENCES orders(id),
    line_no INTEGER NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    discount_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_product ON order_lines(product_id);
"""


def _category_pattern(rng: random.Random) -> str | None:
    depts = sorted(CATEGORIES)
    roll = rng.random()
    if roll < 0.05:
        return None                                    # store-wide promotion
    dept = rng.choice(depts)
    aisles = CATEGORIES[dept]
    if roll < 0.20:
        return f"{dept}/"
    if roll < 0.70:
        return f"{dept}/{rng.choice(aisles)}$"
    if roll < 0.85:
        a, b = rng.sample(aisles, 2)
        return f"{dept}/({a}|{b})$"
    if roll < 0.93:
        d1, d2 = rng.sample(depts, 2)
        return f"(?:{d1}|{d2})/"
    return f"[a-z]+/{rng.choice(('outdoor', 'coffee', 'tools', 'games', 'kitchen'))}$"


def _rule_condition(rng: random.Random) -> str:
    clauses = []
    pattern = _category_pattern(rng)
    if pattern is not None:
        clauses.append(f"category ~ {pattern}")
    if rng.random() < 0.6:
        clauses.append(f"tier >= {rng.choice(TIERS[1:])}")
    if rng.random() < 0.4 or pattern is None:
        clauses.append(f"qty >= {rng.choice((2, 3, 5, 10))}")
    if rng.random() < 0.2:
        clauses.append(f"price >= {rng.choice(('20', '50', '100', '250'))}")
    return "; ".join(clauses)


def seed(conn: sqlite3.Connection, rng: random.Random | None = None) -> None:
    """Create the schema and fill it with the example's deterministic data."""
    rng = rng or random.Random(SEED)
    conn.executescript(SCHEMA)
    categories = [f"{d}/{a}" for d in sorted(CATEGORIES) for a in CATEGORIES[d]]

    products = []
    for pid in range(1, N_PRODUCTS + 1):
        category = rng.choice(categories)
        aisle = category.split("/")[1]
        name = f"{rng.choice(_ADJECTIVES).title()} {aisle} item {pid}"
        # Prices cluster low with a long tail, like a real catalogue.
        cents = int(round(min(rng.lognormvariate(3.2, 1.0), 900.0), 2) * 100) + 99
        description = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 60)))
        products.append((pid, f"SKU-{pid:05d}", name, category, cents, description))
    conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)", products)

    tier_weights = (50, 30, 15, 5)
    customers = [(cid, f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                  rng.choices(TIERS, weights=tier_weights)[0]) for cid in range(1, N_CUSTOMERS + 1)]
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?)", customers)

    rules = []
    for rid in range(1, N_RULES + 1):
        percent = rng.choice(_PERCENTS)
        rules.append((rid, f"promo-{rid:03d} {percent}% off", _rule_condition(rng), percent,
                      rng.randint(0, 9), int(rng.random() < 0.08), int(rng.random() < 0.9)))
    conn.executemany("INSERT INTO discount_rules VALUES (?, ?, ?, ?, ?, ?, ?)", rules)

    orders, lines = [], []
    for oid in range(1, N_ORDERS + 1):
        # Fixed dates (no clock): the summary report must be the same on every machine.
        month, day = divmod(oid * 7 % 336, 28)
        orders.append((oid, rng.randint(1, N_CUSTOMERS), f"2024-{month + 1:02d}-{day + 1:02d}"))
        for line_no in range(1, rng.randint(1, 6) + 1):
            pid = rng.randint(1, N_PRODUCTS)
            qty = rng.randint(1, 4)
            price = products[pid - 1][4]
            discount = price * qty * rng.choice((0, 0, 5, 10, 15)) // 100
            lines.append((oid, line_no, pid, qty, price, discount))
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", orders)
    conn.executemany("INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?)", lines)
    conn.commit()


def ensure_database(path: str | Path) -> Path:
    """Create and seed the database at ``path`` unless the file already exists."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        conn = sqlite3.connect(tmp)
        try:
            seed(conn)
        finally:
            conn.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class PoolExhausted(RuntimeError):
    """No connection became free in time: the pool is too small for the load."""


class ConnectionPool:
    """A fixed set of SQLite connections handed out one request at a time.

    The size is the ``SHOP_POOL_SIZE`` tuning parameter: too small and requests queue for a
    connection (tail latency grows under load); too large and memory and file handles grow
    for nothing. Connections are shared across the server's worker threads, hence
    ``check_same_thread=False``; the pool guarantees one thread per connection at a time.
    """

    def __init__(self, path: str | Path, size: int, *, timeout: float = 30.0) -> None:
        if size < 1:
            raise ValueError(f"pool size must be at least 1, got {size}")
        self.path = Path(path)
        self.size = size
        self.timeout = timeout
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue(maxsize=size)
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self.in_use = 0
        self.peak_in_use = 0
        for _ in range(size):
            conn = sqlite3.connect(self.path, check_same_thread=False)
            # The service only reads; refusing writes at the connection guards the seed data.
            conn.execute("PRAGMA query_only = ON")
            self._all.append(conn)
            self._idle.put(conn)

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[sqlite3.Connection]:
        """Borrow a connection; wait up to ``timeout`` seconds (0: do not wait) for one."""
        wait = self.timeout if timeout is None else timeout
        try:
            conn = self._idle.get(block=wait > 0, timeout=wait if wait > 0 else None)
        except queue.Empty:
            raise PoolExhausted(f"all {self.size} connections busy for {wait:g}s; "
                                f"raise SHOP_POOL_SIZE or lower the load") from None
        with self._lock:
            self.in_use += 1
            self.peak_in_use = max(self.peak_in_use, self.in_use)
        try:
            yield conn
        finally:
            with self._lock:
                self.in_use -= 1
            self._idle.put(conn)

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
