"""Functions perfloop's callable benchmarks call (see ``perfloop.toml``).

``setup_checkout`` does the slow, unmeasured part once per worker: it opens the database
(seeding it if needed), loads the rules and builds a deterministic cart. ``checkout`` is
the measured hot path: pricing that cart, as ``POST /checkout`` does after its lookups.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .models import CartLine, Customer, DiscountRule, Order
from .pricing import price_cart
from .serialize import dumps, order_to_dict
from .service import Shop
from .settings import from_env


@dataclass(frozen=True)
class CheckoutContext:
    customer: Customer
    lines: tuple[CartLine, ...]
    rules: tuple[DiscountRule, ...]
    order: Order                    # the cart priced once, for serialize_order


def setup_checkout(items: int = 10) -> CheckoutContext:
    """A cart of ``items`` distinct products for a gold-tier customer, and the rules."""
    if items < 1:
        raise ValueError(f"items must be at least 1, got {items}")
    with Shop(from_env()) as shop:
        products = shop.catalog.all_products()
        customer = next(c for c in shop.catalog.customers() if c.tier == "gold")
        rules = shop.rules
    rng = random.Random(1000 + items)   # the same cart for a given size, on every machine
    lines = tuple(CartLine(p, rng.randint(1, 5)) for p in rng.sample(products, items))
    return CheckoutContext(customer=customer, lines=lines, rules=rules,
                           order=price_cart(lines, customer, rules))


def checkout(ctx: CheckoutContext) -> Order:
    """Price the cart: the work of ``POST /checkout`` once products are looked up."""
    return price_cart(ctx.lines, ctx.customer, ctx.rules)


def serialize_order(ctx: CheckoutContext) -> bytes:
    """Encode the priced order as the API's JSON response body."""
    return dumps(order_to_dict(ctx.order))
