"""The worker's end of the result pipe: the protocol version and the messages it writes.

Imported by every callable worker (:mod:`perfloop.measure.worker`) and by the suite workers
(:mod:`perfloop.measure.suites`); the parent's end is :mod:`perfloop.measure.protocol`. Like the
worker, this module imports only the standard library.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

PROTOCOL_VERSION = 4


class ResultChannel:
    """Writes protocol messages to the result pipe, one JSON object per line, with the token."""

    def __init__(self, fd: int, token: str = "") -> None:
        self.fd = fd
        self.token = token

    def send(self, kind: str, **fields: Any) -> None:
        data = (json.dumps({"type": kind, "token": self.token, **fields}) + "\n").encode()
        # A blocking pipe write can still be partial when a signal interrupts it.
        while data:
            written = os.write(self.fd, data)
            data = data[written:]


def peak_rss_bytes() -> int:
    """This process's peak resident set size, in bytes.

    On Linux ``getrusage().ru_maxrss`` is inherited across fork/vfork + exec: a worker started
    by a 300 MB parent reports 300 MB even if it never used more than 9 MB. ``VmHWM`` in
    /proc/self/status is the high-water mark of this process's own address space since exec,
    so it is used where it exists.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux (and most Unixes) report KiB; macOS reports bytes.
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024
