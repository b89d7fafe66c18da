"""JSON encoding of products, priced orders and the sales summary.

Money is written as strings with two decimals ("12.50"): a float would round prices the
client then adds up. Turning the frozen dataclasses and Decimals into plain dicts is a real
share of a request's time for large payloads, which is why it has its own benchmark.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from .models import CENT, Customer, Order, PastOrder, PricedLine, Product


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def product_to_dict(product: Product) -> dict[str, Any]:
    return {"id": product.id, "sku": product.sku, "name": product.name,
            "category": product.category, "price": money(product.price),
            "description": product.description}


def customer_to_dict(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "name": customer.name, "tier": customer.tier}


def priced_line_to_dict(line: PricedLine) -> dict[str, Any]:
    return {"product_id": line.product.id, "sku": line.product.sku, "name": line.product.name,
            "category": line.product.category, "quantity": line.quantity,
            "unit_price": money(line.unit_price), "gross": money(line.gross),
            "discount_percent": str(line.discount_percent), "discount": money(line.discount),
            "net": money(line.net), "rule_ids": list(line.rule_ids)}


def order_to_dict(order: Order) -> dict[str, Any]:
    return {"customer": customer_to_dict(order.customer),
            "lines": [priced_line_to_dict(line) for line in order.lines],
            "item_count": order.item_count, "subtotal": money(order.subtotal),
            "discount": money(order.discount), "total": money(order.total)}


def past_order_to_dict(order: PastOrder) -> dict[str, Any]:
    return {"id": order.id, "placed_on": order.placed_on,
            "customer": customer_to_dict(order.customer),
            "lines": [{"product_id": line.product.id, "sku": line.product.sku,
                       "name": line.product.name, "category": line.product.category,
                       "quantity": line.quantity, "unit_price": money(line.unit_price),
                       "discount": money(line.discount), "net": money(line.net)}
                      for line in order.lines],
            "total": money(order.total)}


def _default(value: object) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON; Decimals left in ``payload`` become money strings."""
    return json.dumps(payload, separators=(",", ":"), default=_default).encode()
