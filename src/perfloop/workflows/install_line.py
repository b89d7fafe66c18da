"""How a CI runner installs this perfloop: the pip argument that reproduces the installation.

pip records where each distribution came from (PEP 610, ``direct_url.json`` in its
``.dist-info``): nothing for a release from a package index, ``vcs_info`` for a VCS URL,
``archive_info`` for a wheel or sdist URL, ``dir_info`` for a local directory (editable or
not). The generated CI workflow must install the same perfloop on a machine that has only the
repository:

- a release: ``perfloop==VERSION``;
- a VCS URL: ``git+URL@COMMIT`` (the exact commit that is installed here);
- an archive URL: ``perfloop @ URL``;
- a local directory inside the repository being set up: that directory, relative;
- a local directory that is a git checkout with a remote: ``git+REMOTE@COMMIT`` (push the
  commit first), with a note saying so;

VCS URLs are given to pip bare, not as ``perfloop @ URL``: older pips (23.x) reject a PEP 508
requirement whose URL has an empty host, as ``git+file:///...`` has.
- any other local directory: its path, with a note that a runner does not have it.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlparse

DIST = "perfloop"


@dataclass(frozen=True)
class Requirement:
    """A pip argument and, when it may not work everywhere, why."""

    argument: str
    note: str | None = None


def installed_direct_url(dist: str = DIST) -> tuple[Mapping[str, Any] | None, str]:
    """``direct_url.json`` of the installed ``dist`` (None when it came from an index) and
    its version."""
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return None, "0"
    text = found.read_text("direct_url.json")
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    return (data if isinstance(data, dict) else None), found.version


def _git(path: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def pip_url(remote: str) -> str:
    """A git remote as pip's ``git+`` URL: ``git@host:org/repo`` becomes ``ssh://git@host/...``,
    a local path ``file:///...``."""
    if "://" in remote:
        return f"git+{remote}"
    if remote.startswith(("/", ".", "~")) or Path(remote).exists():
        return f"git+{Path(remote).expanduser().resolve().as_uri()}"
    if ":" in remote:
        host, path = remote.split(":", 1)
        return f"git+ssh://{host}/{path}"
    return f"git+{remote}"


def _local_dir(path: Path, repository: Path | None, workdir: Path | None) -> Requirement:
    if repository is not None and path.resolve().is_relative_to(repository.resolve()):
        # part of the repository the runner checks out: relative to where the step runs
        rel = Path(os.path.relpath(path.resolve(), (workdir or repository).resolve())).as_posix()
        return Requirement(rel if rel.startswith(".") else f"./{rel}")
    remote = _git(path, "remote", "get-url", "origin")
    commit = _git(path, "rev-parse", "HEAD")
    top = _git(path, "rev-parse", "--show-toplevel")
    if remote and commit and top:
        sub = Path(path).resolve().relative_to(Path(top).resolve()).as_posix()
        fragment = f"#subdirectory={sub}" if sub != "." else ""
        url = pip_url(remote)
        local = url.startswith("git+file:")
        return Requirement(f"{url}@{commit}{fragment}",
                           note=f"perfloop is installed from the local checkout {path}; CI installs "
                                f"the same commit ({commit[:10]}) from {remote}: push it first"
                                + (", and replace that local path, which a runner does not have, "
                                   "with the repository's URL" if local else ""))
    return Requirement(str(path), note=f"perfloop is installed from {path}, which a CI runner does "
                                       "not have: replace it with a version (perfloop==X.Y) or a "
                                       "git URL (perfloop @ git+https://...)")


def requirement(direct_url: Mapping[str, Any] | None, version: str, *,
                repository: Path | None = None, workdir: Path | None = None) -> Requirement:
    """The pip argument that installs the perfloop described by ``direct_url`` and ``version``
    on a CI runner that has the repository at ``repository`` checked out and runs the step in
    ``workdir`` (default: the repository's top)."""
    if not direct_url:
        return Requirement(f"{DIST}=={version}")
    url = str(direct_url.get("url", ""))
    sub = direct_url.get("subdirectory")
    fragment = f"#subdirectory={sub}" if sub else ""
    vcs = direct_url.get("vcs_info")
    if isinstance(vcs, Mapping):
        ref = vcs.get("commit_id") or vcs.get("requested_revision")
        return Requirement(f"{vcs.get('vcs', 'git')}+{url}{'@' + ref if ref else ''}{fragment}")
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return Requirement(f"{DIST} @ {url}")
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
        if "archive_info" in direct_url or path.is_file():
            return Requirement(str(path), note=f"perfloop is installed from the file {path}, which a "
                                               "CI runner does not have: use a version or a URL")
        return _local_dir(path / sub if sub else path, repository, workdir)
    return Requirement(f"{DIST}=={version}")


def install_command(project: bool, *, repository: Path | None = None, workdir: Path | None = None,
                    found: tuple[Mapping[str, Any] | None, str] | None = None) -> tuple[str, str | None]:
    """The workflow's install command (perfloop, and the project itself when ``project``), and
    a note when the command may not work on a runner."""
    direct_url, version = found if found is not None else installed_direct_url()
    req = requirement(direct_url, version, repository=repository, workdir=workdir)
    quoted = f'"{req.argument}"' if " " in req.argument or "@" in req.argument else req.argument
    return "pip install " + quoted + (" -e ." if project else ""), req.note


__all__ = ["Requirement", "install_command", "installed_direct_url", "pip_url", "requirement"]
