"""Print the pricing results of this copy of the shop as JSON, to compare two copies.

Run from a copy's root (``python tests/fingerprint.py``) with ``SHOP_DB`` naming a seeded
database. A patch that claims "same results" must leave this output unchanged. Every cart
is priced twice so that a memoizing patch is checked on its cache hits too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shop import bench, report  # noqa: E402
from shop.serialize import order_to_dict  # noqa: E402
from shop.service import Shop  # noqa: E402
from shop.settings import from_env  # noqa: E402


def main() -> None:
    out: dict[str, object] = {}
    with Shop(from_env()) as shop:
        customer_ids = [c.id for c in shop.catalog.customers()]
        orders = []
        for customer_id, items in report.build_carts(60, 11, customer_ids):
            first = order_to_dict(shop.checkout(customer_id, items))
            again = order_to_dict(shop.checkout(customer_id, items))
            if first != again:
                raise SystemExit(f"pricing the same cart twice differed for customer {customer_id}")
            orders.append(first)
        out["orders"] = orders
        out["report"] = report.run(shop, carts=40, seed=3)
    for items in (5, 20):
        ctx = bench.setup_checkout(items)
        out[f"bench_{items}"] = [order_to_dict(bench.checkout(ctx)) for _ in range(2)]
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
