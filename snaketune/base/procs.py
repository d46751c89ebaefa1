"""Process helpers shared by the trial runner and the warm worker (Linux, no-ops elsewhere)."""

from __future__ import annotations

import ctypes
import signal


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
