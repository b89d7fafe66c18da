"""The HTTP API: ``uvicorn shop.app:app`` (run from the example's directory).

Endpoints are plain ``def`` functions, so FastAPI runs them on its thread pool: several
requests are in flight at once and compete for the database pool, which is what makes
``SHOP_POOL_SIZE`` a parameter worth tuning. Settings are read from the environment when
the application starts (see :mod:`shop.settings`).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from . import __version__
from .serialize import dumps, order_to_dict, product_to_dict
from .service import NotFound, Shop
from .settings import Settings


class LineIn(BaseModel):
    product_id: int
    quantity: int = Field(ge=1, le=1000)


class CheckoutIn(BaseModel):
    customer_id: int
    lines: list[LineIn] = Field(min_length=1, max_length=500)


def _json(payload: object) -> Response:
    # Our own encoder: FastAPI's generic jsonable_encoder would walk the payload twice.
    return Response(content=dumps(payload), media_type="application/json")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; ``settings`` default to the environment, read at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.shop = Shop(settings)
        try:
            yield
        finally:
            app.state.shop.close()

    app = FastAPI(title="shop", version=__version__, lifespan=lifespan)

    def shop_of(request: Request) -> Shop:
        return request.app.state.shop

    @app.get("/health")
    def health(request: Request) -> Response:
        shop = shop_of(request)
        with shop.pool.connection() as conn:
            conn.execute("SELECT 1").fetchone()
        return _json({"status": "ok", "pool_size": shop.pool.size, "cache": shop.cache.stats(),
                      "rules": len(shop.rules)})

    @app.get("/products/{product_id}")
    def get_product(product_id: int, request: Request) -> Response:
        product = shop_of(request).catalog.product(product_id)
        if product is None:
            raise HTTPException(status_code=404, detail=f"unknown product id: {product_id}")
        return _json(product_to_dict(product))

    @app.post("/checkout")
    def checkout(body: CheckoutIn, request: Request) -> Response:
        try:
            order = shop_of(request).checkout(body.customer_id,
                                              [(line.product_id, line.quantity) for line in body.lines])
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        return _json(order_to_dict(order))

    @app.get("/orders/summary")
    def orders_summary(request: Request, limit: int = Query(200, ge=1, le=2000)) -> Response:
        return _json(shop_of(request).orders_summary(limit))

    return app


app = create_app()
