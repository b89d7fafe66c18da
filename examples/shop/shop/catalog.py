"""Reading the shop's data: products (through the LRU cache), customers, rules, past orders.

Every query borrows a connection from the pool for as short a time as it can, so the
pool size bounds concurrent queries, not concurrent requests.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from .cache import LRUCache
from .db import ConnectionPool
from .models import Customer, DiscountRule, PastLine, PastOrder, Product

_PRODUCT_COLUMNS = "id, sku, name, category, price_cents, description"


def _cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def _product(row: tuple) -> Product:
    pid, sku, name, category, cents, description = row
    return Product(id=pid, sku=sku, name=name, category=category, price=_cents(cents),
                   description=description)


class Catalog:
    def __init__(self, pool: ConnectionPool, cache: LRUCache[int, Product]) -> None:
        self.pool = pool
        self.cache = cache

    def product(self, product_id: int) -> Product | None:
        cached = self.cache.get(product_id)
        if cached is not None:
            return cached
        with self.pool.connection() as conn:
            row = conn.execute(f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE id = ?",
                               (product_id,)).fetchone()
        if row is None:
            return None
        product = _product(row)
        self.cache.put(product_id, product)
        return product

    def products(self, product_ids: Iterable[int]) -> dict[int, Product]:
        """The known products among ``product_ids`` (unknown ids are left out)."""
        found: dict[int, Product] = {}
        for pid in dict.fromkeys(product_ids):
            product = self.product(pid)
            if product is not None:
                found[pid] = product
        return found

    def all_products(self) -> list[Product]:
        """Every product, bypassing the cache (batch jobs and benchmark set-up)."""
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT {_PRODUCT_COLUMNS} FROM products ORDER BY id").fetchall()
        return [_product(row) for row in rows]

    def customer(self, customer_id: int) -> Customer | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT id, name, tier FROM customers WHERE id = ?",
                               (customer_id,)).fetchone()
        return None if row is None else Customer(*row)

    def customers(self) -> list[Customer]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT id, name, tier FROM customers ORDER BY id").fetchall()
        return [Customer(*row) for row in rows]

    def rules(self) -> tuple[DiscountRule, ...]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT id, name, condition, percent, priority, exclusive, active "
                                "FROM discount_rules ORDER BY id").fetchall()
        return tuple(DiscountRule(id=rid, name=name, condition=cond, percent=Decimal(pct),
                                  priority=prio, exclusive=bool(excl), active=bool(active))
                     for rid, name, cond, pct, prio, excl, active in rows)

    def recent_orders(self, limit: int) -> list[PastOrder]:
        """The ``limit`` most recent orders with their lines, newest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"""SELECT o.id, o.placed_on, c.id, c.name, c.tier,
                           l.quantity, l.unit_price_cents, l.discount_cents,
                           {', '.join('p.' + c.strip() for c in _PRODUCT_COLUMNS.split(','))}
                    FROM (SELECT id, customer_id, placed_on FROM orders ORDER BY id DESC LIMIT ?) o
                    JOIN customers c ON c.id = o.customer_id
                    JOIN order_lines l ON l.order_id = o.id
                    JOIN products p ON p.id = l.product_id
                    ORDER BY o.id DESC, l.line_no""", (limit,)).fetchall()
        orders: dict[int, tuple[str, Customer, list[PastLine]]] = {}
        for oid, placed_on, cid, cname, tier, qty, price, discount, *product in rows:
            entry = orders.get(oid)
            if entry is None:
                entry = orders[oid] = (placed_on, Customer(cid, cname, tier), [])
            entry[2].append(PastLine(_product(tuple(product)), qty, _cents(price), _cents(discount)))
        return [PastOrder(id=oid, customer=customer, placed_on=placed_on, lines=tuple(lines))
                for oid, (placed_on, customer, lines) in orders.items()]
