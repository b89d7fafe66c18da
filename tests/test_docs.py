"""The documentation stands alone: it cites no file the repository does not have."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
CITED = re.compile(r"\b([A-Za-z][\w./-]*\.md)\b")


def test_every_cited_markdown_file_exists() -> None:
    missing = []
    for doc in DOCS:
        # file names in code (commands, outputs) are not citations
        text = re.sub(r"`[^`]*`", "", re.sub(r"```.*?```", "", doc.read_text(), flags=re.S))
        for name in set(CITED.findall(text)):
            if name.startswith("http"):
                continue
            if not any(p.exists() for p in (doc.parent / name, ROOT / name, ROOT / "docs" / name)):
                missing.append(f"{doc.relative_to(ROOT)} cites {name}")
    assert not missing, missing


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in DOCS:
        for target, anchor in LINK.findall(doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (doc.parent / target).resolve()
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
            elif anchor and path.suffix == ".md":
                slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                         for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M)}
                if anchor[1:] not in slugs:
                    broken.append(f"{doc.relative_to(ROOT)} -> {target}{anchor}")
    assert not broken, broken
