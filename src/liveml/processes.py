"""Whether a process on this machine is still running (for runners and writers that left files behind)."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True while ``pid`` runs. A killed child its parent has not reaped yet (a zombie) runs nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


__all__ = ["alive"]
