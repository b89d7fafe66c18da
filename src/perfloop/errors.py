"""perfloop's exceptions, one hierarchy for the library and the CLI.

    PerfloopError                  base; ``exit_code`` says how the CLI exits
    ├── UsageError                 bad input or usage from the user (exit 2)
    │   ├── ConfigError            an invalid perfloop.toml / [tool.perfloop] (names file, key, fix)
    │   └── RefNotFound            a run id, label or git ref that matches no stored run
    ├── StoreError                 the results store cannot be opened, migrated or written
    ├── TargetError                a target could not be measured (import error, crash, bad exit)
    │   └── TargetTimeout          a target exceeded its benchmark's timeout and was killed
    ├── GateFailed                 a workflow gate failed (exit 1)
    └── Interrupted                Ctrl-C (exit 130) or SIGTERM (exit 143) stopped the command

Lower-level errors (SQLAlchemy, OS, subprocess) are converted at the boundary with
``raise ... from exc`` and a message that says what to do next.
"""

from __future__ import annotations


class PerfloopError(Exception):
    """Base class of every error perfloop raises on purpose."""

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(PerfloopError):
    """Bad input or usage: the user can fix it by changing what they typed or wrote."""

    exit_code = 2


class ConfigError(UsageError):
    """An invalid configuration file. Names the file, the key and the fix."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None,
                 hint: str | None = None) -> None:
        where = ""
        if path:
            where = f"{path}: "
        if key:
            where += f"[{key}] "
        super().__init__(f"{where}{message}", hint=hint)
        self.path = path
        self.key = key


class RefNotFound(UsageError):
    """A run reference (id, label, git ref) that matches no stored run."""


class StoreError(PerfloopError):
    """The results store cannot be opened, migrated or written."""

    exit_code = 2


class TargetError(PerfloopError):
    """A target could not be measured."""

    exit_code = 2


class TargetTimeout(TargetError):
    """A target ran past its benchmark's timeout and was killed."""


class GateFailed(PerfloopError):
    """A gate decided against the change (an unapproved regression)."""

    exit_code = 1


class Interrupted(PerfloopError):
    """Ctrl-C or SIGTERM stopped a command; what was finished is kept (the message says what)."""

    exit_code = 130   # the shell's convention for SIGINT; the CLI exits 143 after SIGTERM
