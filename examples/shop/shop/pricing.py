"""Discount pricing of a cart: which rules apply to each line, and what the line costs.

Rules are written by the merchandising team as condition strings (see
:class:`~shop.models.DiscountRule`). Pricing a line takes the applicable rules highest
priority first: an exclusive rule in first place applies alone; otherwise up to
:data:`MAX_RULES_PER_LINE` non-exclusive rules add up, capped at
:data:`~shop.models.MAX_STACKED_PERCENT`.

This module is where the example's demonstrations happen: read "Known hot spot" in the
README before changing ``apply_discounts``, and keep ``patches/`` applying cleanly.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, NamedTuple, Sequence

from .models import (CENT, MAX_STACKED_PERCENT, CartLine, Customer, DiscountRule, Order,
                     PricedLine, TIERS)

MAX_RULES_PER_LINE = 2

_ZERO = Decimal("0")
_HUNDRED = Decimal("100")


class Condition(NamedTuple):
    """A parsed rule condition; absent clauses are the weakest bound (always true)."""

    category: re.Pattern[str] | None = None
    min_tier: int = 0
    min_qty: int = 1
    min_price: Decimal = _ZERO

    def matches(self, line: CartLine) -> bool:
        """Whether the line qualifies (the tier was checked once for the customer)."""
        return (line.quantity >= self.min_qty
                and line.product.price >= self.min_price
                and (self.category is None or self.category.match(line.product.category) is not None))


def parse_condition(text: str) -> Condition:
    """Parse ``"category ~ garden/; tier >= silver; qty >= 3"`` into a :class:`Condition`."""
    category, min_tier, min_qty, min_price = None, 0, 1, _ZERO
    for clause in text.split(";"):
        clause = clause.strip()
        if not clause:
            continue
        op = "~" if "~" in clause else ">="
        key, found, value = clause.partition(op)
        key, value = key.strip(), value.strip()
        if not found or not value or (key == "category") != (op == "~"):
            raise ValueError(f"cannot parse rule clause {clause!r}")
        if key == "category":
            category = re.compile(value)
        elif key == "tier":
            if value not in TIERS:
                raise ValueError(f"unknown tier {value!r} in {clause!r}")
            min_tier = TIERS.index(value)
        elif key == "qty":
            min_qty = int(value)
        elif key == "price":
            min_price = Decimal(value)
        else:
            raise ValueError(f"unknown condition {key!r} in {clause!r}")
    return Condition(category, min_tier, min_qty, min_price)


class PreparedRule(NamedTuple):
    rule: DiscountRule
    condition: Condition


def prepare_rules(rules: Iterable[DiscountRule], customer: Customer) -> list[PreparedRule]:
    """The active rules this customer's tier qualifies for, parsed, highest priority first."""
    tier = TIERS.index(customer.tier)
    prepared = []
    for rule in rules:
        if not rule.active:
            continue
        condition = parse_condition(rule.condition)
        if condition.min_tier > tier:
            continue
        prepared.append(PreparedRule(rule, condition))
    prepared.sort(key=lambda p: (-p.rule.priority, p.rule.id))
    return prepared


def choose_rules(applicable: Sequence[DiscountRule]) -> list[DiscountRule]:
    """Which of the applicable rules (highest priority first) a line actually gets."""
    if not applicable:
        return []
    if applicable[0].exclusive:
        return [applicable[0]]
    return [r for r in applicable if not r.exclusive][:MAX_RULES_PER_LINE]


def price_line(line: CartLine, applicable: Sequence[DiscountRule]) -> PricedLine:
    chosen = choose_rules(applicable)
    percent = min(sum((r.percent for r in chosen), _ZERO), MAX_STACKED_PERCENT)
    gross = line.product.price * line.quantity
    discount = (gross * percent / _HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
    return PricedLine(product=line.product, quantity=line.quantity, unit_price=line.product.price,
                      gross=gross, discount_percent=percent, discount=discount, net=gross - discount,
                      rule_ids=tuple(r.id for r in chosen))


def apply_discounts(cart_lines: Sequence[CartLine], customer: Customer,
                    rules: Sequence[DiscountRule]) -> list[PricedLine]:
    """Price every line of a cart for ``customer`` under ``rules``."""
    priced = []
    for line in cart_lines:
        candidates = prepare_rules(rules, customer)
        applicable = [p.rule for p in candidates if p.condition.matches(line)]
        priced.append(price_line(line, applicable))
    return priced


def price_cart(cart_lines: Sequence[CartLine], customer: Customer,
               rules: Sequence[DiscountRule]) -> Order:
    """The priced order for a cart: its lines and its totals."""
    lines = tuple(apply_discounts(cart_lines, customer, rules))
    subtotal = sum((pl.gross for pl in lines), _ZERO)
    discount = sum((pl.discount for pl in lines), _ZERO)
    return Order(customer=customer, lines=lines, subtotal=subtotal, discount=discount,
                 total=subtotal - discount, item_count=sum(pl.quantity for pl in lines))
