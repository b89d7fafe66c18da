"""Attribution: one change or several since the baseline? On made-up changes and in real git repos."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from perfloop.workflows.attribution import (CODE, CONFIG, DEPENDENCY, DOCS, TEST, FileChange, attribute,
                                            attribution_since, changed_functions, changed_keys,
                                            classify_path, snapshot_tree)

from gitutil import git

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"




@pytest.fixture
def shop_repo(tmp_path: Path) -> Path:
    """A copy of the example shop in a git repository of its own, one commit."""
    repo = tmp_path / "shop"
    shutil.copytree(SHOP, repo, ignore=shutil.ignore_patterns("var", ".perfloop", "__pycache__"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the shop")
    return repo


def apply_patch(repo: Path, name: str) -> None:
    subprocess.run(["patch", "-p1", "-s", "-i", str(repo / "patches" / name)], cwd=repo, check=True)


# -- pure rules -------------------------------------------------------------------------------

def test_classify_paths() -> None:
    assert classify_path("shop/pricing.py") == CODE
    assert classify_path("shop/settings.py") == CONFIG
    assert classify_path("perfloop.toml") == CONFIG
    assert classify_path("deploy/values.yaml") == CONFIG
    assert classify_path("requirements.txt") == DEPENDENCY
    assert classify_path("uv.lock") == DEPENDENCY
    assert classify_path("tests/test_shop.py") == TEST
    assert classify_path("README.md") == DOCS
    assert classify_path("docs/guide.py") == DOCS


def test_one_code_change_is_attributable() -> None:
    a = attribute([FileChange("shop/pricing.py", "M", CODE, 2, 1, functions=("apply_discounts",))])
    assert a.attributable and "apply_discounts" in a.summary


def test_docs_and_tests_do_not_count() -> None:
    a = attribute([FileChange("shop/pricing.py", "M", CODE), FileChange("README.md", "M", DOCS),
                   FileChange("tests/test_x.py", "M", TEST)])
    assert a.attributable and any("do not change what is measured" in n for n in a.notes)
    assert attribute([FileChange("README.md", "M", DOCS)]).summary.startswith("nothing that is measured")


def test_code_and_config_together_are_not_attributable() -> None:
    a = attribute([FileChange("shop/pricing.py", "M", CODE),
                   FileChange("shop/settings.py", "M", CONFIG, keys=("DEFAULT_CACHE_SIZE",))])
    assert not a.attributable
    assert "both code" in a.reasons[0]
    assert a.suggestion and "split into 2 changes" in a.suggestion
    assert "DEFAULT_CACHE_SIZE" in a.suggestion and "shop/" in a.suggestion


def test_several_config_keys_are_not_attributable_but_one_is() -> None:
    one = attribute([FileChange("app.toml", "M", CONFIG, keys=("pool.size",))])
    assert one.attributable
    two = attribute([FileChange("app.toml", "M", CONFIG, keys=("pool.size", "cache.size"))])
    assert not two.attributable and "2 configuration settings" in two.reasons[0]


def test_unrelated_places_are_not_attributable_related_files_are() -> None:
    far = attribute([FileChange("shop/pricing.py", "M", CODE), FileChange("billing/invoice.py", "M", CODE)])
    assert not far.attributable and "2 unrelated places" in far.summary
    near = attribute([FileChange("shop/pricing.py", "M", CODE), FileChange("shop/models.py", "M", CODE)])
    assert near.attributable and any("2 files changed in shop/" in n for n in near.notes)


def test_dependencies_with_code_are_not_attributable() -> None:
    a = attribute([FileChange("shop/pricing.py", "M", CODE), FileChange("requirements.txt", "M", DEPENDENCY)])
    assert not a.attributable and any("dependencies changed" in r for r in a.reasons)


def test_changed_keys_of_config_files() -> None:
    before = '[pool]\nsize = 4\n[cache]\nsize = 128\n[[benchmark]]\nname = "a"\nprocesses = 3\n'
    after = '[pool]\nsize = 8\n[cache]\nsize = 128\n[[benchmark]]\nname = "a"\nprocesses = 5\n'
    assert changed_keys("app.toml", before, after) == ("benchmark[a].processes", "pool.size")
    assert changed_keys("settings.py", "DEFAULT_POOL_SIZE = 4\nX = 1\n", "DEFAULT_POOL_SIZE = 8\nX = 1\n") \
        == ("DEFAULT_POOL_SIZE",)
    assert changed_keys(".env", "A=1\nB=2\n", "A=1\nB=3\nC=4\n") == ("B", "C")


def test_changed_functions_from_a_diff() -> None:
    diff = ("@@ -109,3 +109,4 @@ def apply_discounts(cart_lines: Sequence[CartLine], customer: Customer,\n"
            "+    candidates = prepare_rules(rules, customer)\n"
            "@@ -120,0 +121,3 @@ def price_cart(\n+def _helper():\n")
    assert changed_functions(diff) == ("apply_discounts", "price_cart", "_helper")


# -- real repositories --------------------------------------------------------------------------

def test_snapshot_leaves_the_index_alone_and_sees_untracked_files(shop_repo: Path) -> None:
    clean = snapshot_tree(shop_repo)
    assert clean is not None and not clean.dirty and clean.tree == git(shop_repo, "rev-parse", "HEAD^{tree}")
    (shop_repo / "shop" / "new_module.py").write_text("X = 1\n")
    dirty = snapshot_tree(shop_repo)
    assert dirty is not None and dirty.dirty and dirty.tree != clean.tree
    assert "shop/new_module.py" in dirty.dirty_files
    assert git(shop_repo, "status", "--porcelain") == "?? shop/new_module.py"   # nothing staged


def test_the_hot_spot_fix_alone_is_attributable_committed_or_not(shop_repo: Path) -> None:
    before = snapshot_tree(shop_repo)
    apply_patch(shop_repo, "fix-hot-spot.patch")
    uncommitted = attribution_since(before, shop_repo)
    assert uncommitted.attributable, uncommitted.summary
    [change] = uncommitted.changes
    assert change.path == "shop/pricing.py" and change.functions == ("apply_discounts",)
    git(shop_repo, "commit", "-qam", "prepare rules once per cart")
    committed = attribution_since(before, shop_repo)
    assert committed.attributable and [c[1] for c in committed.commits] == ["prepare rules once per cart"]


def test_a_patch_made_before_the_baseline_is_not_counted(shop_repo: Path) -> None:
    """The baseline describes the working tree, uncommitted edits included."""
    (shop_repo / "shop" / "settings.py").write_text(
        (shop_repo / "shop" / "settings.py").read_text().replace("DEFAULT_CACHE_SIZE = 128", "DEFAULT_CACHE_SIZE = 64"))
    before = snapshot_tree(shop_repo)
    apply_patch(shop_repo, "fix-hot-spot.patch")
    assert attribution_since(before, shop_repo).attributable


def test_a_mixed_diff_triggers_the_attribution_warning(shop_repo: Path) -> None:
    before = snapshot_tree(shop_repo)
    apply_patch(shop_repo, "fix-hot-spot.patch")
    settings = shop_repo / "shop" / "settings.py"
    settings.write_text(settings.read_text().replace("DEFAULT_CACHE_SIZE = 128", "DEFAULT_CACHE_SIZE = 4096"))
    git(shop_repo, "commit", "-qam", "fix pricing and grow the cache")
    a = attribution_since(before, shop_repo)
    assert not a.attributable
    assert "cannot attribute" in a.summary and "both code" in a.summary
    assert {c.path: c.kind for c in a.changes} == {"shop/pricing.py": CODE, "shop/settings.py": CONFIG}
    assert next(c for c in a.changes if c.kind == CONFIG).keys == ("DEFAULT_CACHE_SIZE",)
    assert a.suggestion and "DEFAULT_CACHE_SIZE" in a.suggestion and "apply_discounts" in a.suggestion


def test_outside_git_attribution_is_unknown(tmp_path: Path) -> None:
    assert snapshot_tree(tmp_path) is None
    a = attribution_since(None, tmp_path)
    assert a.attributable and "not taken in a git repository" in a.notes[0]
