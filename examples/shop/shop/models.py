"""The shop's records: products, customers, discount rules, cart lines and priced orders.

Money is :class:`~decimal.Decimal` throughout, rounded to cents only where a receipt would
round (per line discount, order totals), so a hand-computed cart gives exact totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

#: Customer tiers, lowest first; a rule's ``tier >= silver`` compares positions in this tuple.
TIERS: tuple[str, ...] = ("bronze", "silver", "gold", "platinum")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Product:
    id: int
    sku: str
    name: str
    category: str          # "department/aisle", e.g. "garden/tools"
    price: Decimal
    description: str = ""


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    tier: str

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}; expected one of {', '.join(TIERS)}")


@dataclass(frozen=True)
class DiscountRule:
    """A discount as the merchandising team writes it: a condition string and a percentage.

    ``condition`` is ``;``-separated clauses, all of which must hold:
    ``category ~ REGEX`` (matched at the start of the product category),
    ``tier >= TIER``, ``qty >= N``, ``price >= AMOUNT``. An empty condition always holds.
    An *exclusive* rule, when it applies, replaces every other rule on that line; otherwise
    the percentages of all applicable rules add up, capped at :data:`MAX_STACKED_PERCENT`.
    """

    id: int
    name: str
    condition: str
    percent: Decimal
    priority: int = 0      # higher first; decides which exclusive rule wins
    exclusive: bool = False
    active: bool = True


MAX_STACKED_PERCENT = Decimal("30")


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValueError(f"quantity must be at least 1, got {self.quantity}")


@dataclass(frozen=True)
class PricedLine:
    product: Product
    quantity: int
    unit_price: Decimal
    gross: Decimal          # unit_price * quantity
    discount_percent: Decimal
    discount: Decimal       # rounded to cents
    net: Decimal            # gross - discount
    rule_ids: tuple[int, ...]


@dataclass(frozen=True)
class Order:
    customer: Customer
    lines: tuple[PricedLine, ...]
    subtotal: Decimal
    discount: Decimal
    total: Decimal
    item_count: int


@dataclass(frozen=True)
class PastLine:
    product: Product
    quantity: int
    unit_price: Decimal
    discount: Decimal

    @property
    def net(self) -> Decimal:
        return self.unit_price * self.quantity - self.discount


@dataclass(frozen=True)
class PastOrder:
    """An order already placed, as the sales report reads it back."""

    id: int
    customer: Customer
    placed_on: str          # ISO date
    lines: tuple[PastLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.net for line in self.lines), Decimal("0"))
