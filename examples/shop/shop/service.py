"""The shop's operations, shared by the HTTP API, the batch report and the benchmarks.

:class:`Shop` owns the pool, the product cache and the discount rules (loaded once at
start: merchandising changes them a few times a day, and :meth:`Shop.reload_rules` picks
a change up).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any, Sequence

from .cache import LRUCache
from .catalog import Catalog
from .db import ConnectionPool, ensure_database
from .models import CartLine, DiscountRule, Order, Product
from .pricing import price_cart
from .serialize import money, past_order_to_dict
from .settings import Settings, from_env


class NotFound(LookupError):
    """A customer or product the request names does not exist."""

    def __init__(self, kind: str, ids: Sequence[int]) -> None:
        self.kind = kind
        self.ids = list(ids)
        super().__init__(f"unknown {kind} id(s): {', '.join(map(str, self.ids))}")


class Shop:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or from_env()
        ensure_database(self.settings.db_path)
        self.pool = ConnectionPool(self.settings.db_path, self.settings.pool_size)
        self.cache: LRUCache[int, Product] = LRUCache(self.settings.cache_size)
        self.catalog = Catalog(self.pool, self.cache)
        self.rules: tuple[DiscountRule, ...] = self.catalog.rules()

    def reload_rules(self) -> None:
        self.rules = self.catalog.rules()

    def cart(self, items: Sequence[tuple[int, int]]) -> list[CartLine]:
        """Cart lines for ``(product_id, quantity)`` pairs; raises NotFound for unknown ids."""
        products = self.catalog.products(pid for pid, _ in items)
        missing = [pid for pid, _ in items if pid not in products]
        if missing:
            raise NotFound("product", list(dict.fromkeys(missing)))
        return [CartLine(products[pid], qty) for pid, qty in items]

    def checkout(self, customer_id: int, items: Sequence[tuple[int, int]]) -> Order:
        customer = self.catalog.customer(customer_id)
        if customer is None:
            raise NotFound("customer", [customer_id])
        return price_cart(self.cart(items), customer, self.rules)

    def orders_summary(self, limit: int = 200) -> dict[str, Any]:
        """Recent orders with their lines, and revenue by category and by tier."""
        orders = self.catalog.recent_orders(limit)
        by_category: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"units": 0, "revenue": Decimal("0"), "discount": Decimal("0")})
        by_tier: dict[str, dict[str, Any]] = defaultdict(lambda: {"orders": 0, "revenue": Decimal("0")})
        revenue = discount = Decimal("0")
        units = 0
        for order in orders:
            tier = by_tier[order.customer.tier]
            tier["orders"] += 1
            tier["revenue"] += order.total
            for line in order.lines:
                cat = by_category[line.product.category]
                cat["units"] += line.quantity
                cat["revenue"] += line.net
                cat["discount"] += line.discount
                units += line.quantity
                revenue += line.net
                discount += line.discount
        return {
            "orders": [past_order_to_dict(o) for o in orders],
            "by_category": {k: {**v, "revenue": money(v["revenue"]), "discount": money(v["discount"])}
                            for k, v in sorted(by_category.items())},
            "by_tier": {k: {**v, "revenue": money(v["revenue"])} for k, v in sorted(by_tier.items())},
            "totals": {"orders": len(orders), "units": units, "revenue": money(revenue),
                       "discount": money(discount)},
        }

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> "Shop":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
