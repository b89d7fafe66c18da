"""Nightly pricing report: ``python -m shop.report [--carts N] [--seed S] [--json]``.

Prices a deterministic batch of carts through the same path as ``POST /checkout``
(customer and product lookups through the pool and the cache, then discount pricing) and
prints what the discounts cost. It is the example's command benchmark: a realistic batch
job whose run time is dominated by pricing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any, Sequence

from .db import N_PRODUCTS
from .serialize import money
from .service import Shop
from .settings import from_env


def build_carts(n: int, seed: int, customer_ids: Sequence[int]) -> list[tuple[int, list[tuple[int, int]]]]:
    """``n`` carts ``(customer_id, [(product_id, quantity), ...])``, the same for a given seed."""
    rng = random.Random(seed)
    carts = []
    for _ in range(n):
        size = rng.randint(1, 12)
        items = [(pid, rng.randint(1, 5)) for pid in rng.sample(range(1, N_PRODUCTS + 1), size)]
        carts.append((rng.choice(customer_ids), items))
    return carts


def run(shop: Shop, carts: int = 200, seed: int = 7) -> dict[str, Any]:
    customer_ids = [c.id for c in shop.catalog.customers()]
    subtotal = discount = Decimal("0")
    by_tier: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal("0"), Decimal("0")])
    rule_uses: Counter[int] = Counter()
    lines = 0
    for customer_id, items in build_carts(carts, seed, customer_ids):
        order = shop.checkout(customer_id, items)
        subtotal += order.subtotal
        discount += order.discount
        tier = by_tier[order.customer.tier]
        tier[0] += order.subtotal
        tier[1] += order.discount
        lines += len(order.lines)
        rule_uses.update(rid for line in order.lines for rid in line.rule_ids)
    return {
        "carts": carts, "lines": lines, "subtotal": money(subtotal), "discount": money(discount),
        "total": money(subtotal - discount),
        "discount_share": f"{(discount / subtotal * 100) if subtotal else 0:.2f}%",
        "by_tier": {t: {"subtotal": money(v[0]), "discount": money(v[1])} for t, v in sorted(by_tier.items())},
        "top_rules": [{"rule_id": rid, "lines": n} for rid, n in rule_uses.most_common(5)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shop.report", description=__doc__.splitlines()[0])
    parser.add_argument("--carts", type=int, default=200, help="carts to price (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the cart generator (default 7)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.carts < 1:
        parser.error("--carts must be at least 1")
    with Shop(from_env()) as shop:
        summary = run(shop, carts=args.carts, seed=args.seed)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
        return 0
    print(f"priced {summary['carts']} carts ({summary['lines']} lines)")
    print(f"subtotal {summary['subtotal']}  discount {summary['discount']} "
          f"({summary['discount_share']})  total {summary['total']}")
    for tier, v in summary["by_tier"].items():
        print(f"  {tier:<9} subtotal {v['subtotal']:>12}  discount {v['discount']:>10}")
    print("most used rules: " + ", ".join(f"#{r['rule_id']} ({r['lines']} lines)" for r in summary["top_rules"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
