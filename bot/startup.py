"""What every server we start does first: follow its parent out, and refuse to start on unlawful wording.

Kept apart from the ``bot`` command line (:mod:`bot.cli`, which starts the servers) so that the servers' entry
points (the Rasa server, the action server, the staff console, the reminder worker) depend on this small module
and not on the launcher above them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path
from typing import Optional

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def preflight(root: Optional[Path] = None) -> bool:
    """Check every stored owner-facing text before anything starts.

    Args:
        root: The project directory whose wording is checked (default: this project).

    Returns:
        True when the wording is clean; otherwise the error, naming file and text, is printed to stderr and
        the result is False (the caller exits non-zero without starting anything).
    """
    from bot.compliance import ComplianceError, check_wording_sources

    try:
        check_wording_sources(PROJECT_ROOT if root is None else root)
    except ComplianceError as error:
        print(f"error: {error}", file=sys.stderr)
        return False
    return True


PARENT_PID_VARIABLE = "BOT_PARENT_PID"


def exit_with_parent() -> None:
    """In a server started by :func:`bot.cli.start_servers`: get SIGTERM when the starting process dies (Linux).

    Called first thing by the servers' entry points (after ``exec``, so no ``preexec_fn`` runs in a forked,
    possibly multi-threaded parent). If the parent is already gone, exit at once.
    """
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):
        sys.exit("the process that started this server has already exited")
