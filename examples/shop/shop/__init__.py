"""shop: a small online-shop service used to demonstrate perfloop's tuning workflows.

A FastAPI application (``shop.app``) over SQLite (``shop.db``), a product cache
(``shop.cache``), discount pricing (``shop.pricing``) and order serialization
(``shop.serialize``). ``shop.bench`` holds the functions perfloop benchmarks call and
``python -m shop.report`` is a batch job for the command benchmark.
"""

__version__ = "1.0.0"
