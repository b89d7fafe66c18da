"""Tunable parameters of the shop, read from the environment.

They are read when the application or a job starts, not at import, so a test or a benchmark
can change them per process with environment variables:

- ``SHOP_DB``: path of the SQLite file (created and seeded when missing).
- ``SHOP_POOL_SIZE``: database connections in the pool; requests beyond it wait.
- ``SHOP_CACHE_SIZE``: product lookups kept in the in-process LRU cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The example's own directory: the default database lives under it, out of version control.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = PROJECT_ROOT / "var" / "shop.db"
DEFAULT_POOL_SIZE = 4
DEFAULT_CACHE_SIZE = 128


@dataclass(frozen=True)
class Settings:
    db_path: Path = DEFAULT_DB
    pool_size: int = DEFAULT_POOL_SIZE
    cache_size: int = DEFAULT_CACHE_SIZE

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ValueError(f"SHOP_POOL_SIZE must be at least 1, got {self.pool_size}")
        if self.cache_size < 0:
            raise ValueError(f"SHOP_CACHE_SIZE must be >= 0, got {self.cache_size}")


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def from_env(env: dict[str, str] | None = None) -> Settings:
    """Settings from ``env`` (the process environment by default)."""
    env = dict(os.environ if env is None else env)
    db = env.get("SHOP_DB", "").strip()
    return Settings(
        db_path=Path(db) if db else DEFAULT_DB,
        pool_size=_int_env(env, "SHOP_POOL_SIZE", DEFAULT_POOL_SIZE),
        cache_size=_int_env(env, "SHOP_CACHE_SIZE", DEFAULT_CACHE_SIZE),
    )
