"""Only the store opens its own transactions: code elsewhere calls the store's public methods.

``Store._read``/``Store._write`` hand out raw SQLAlchemy sessions; used from another layer they
would tie it to the schema and bypass the store's error translation.
"""

from __future__ import annotations

import re
from pathlib import Path

import perfloop

PACKAGE = Path(perfloop.__file__).parent
ROOT = PACKAGE.parent.parent
PRIVATE_SESSION = re.compile(r"\._(read|write)\(")


def _offenders(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if PRIVATE_SESSION.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_code_outside_the_store_opens_store_sessions() -> None:
    store = PACKAGE / "store"
    files = [p for p in PACKAGE.rglob("*.py") if store not in p.parents]
    files += sorted((ROOT / "benchmarks").rglob("*.py"))
    assert files, "no source files found"
    assert _offenders(files) == []


def test_the_check_finds_a_private_session() -> None:
    sample = ROOT / "src" / "perfloop" / "store" / "series.py"   # the store itself uses them
    assert _offenders([sample]), "the pattern no longer matches how the store opens sessions"
