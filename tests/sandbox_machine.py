"""What the sandbox tests expect of this machine, asked of the machine itself (never of the engine).

CI runs as root on Linux with apt-get, where the README's set-up installs bubblewrap: there the outer box must
work, and a missing or broken bwrap fails the suite instead of quietly testing the fallback. Elsewhere (no root,
no apt-get, not Linux) the fallback is allowed, and the tests check that the engine reports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def bwrap_required() -> bool:
    """True where the README's set-up installs bubblewrap: Linux, root, apt-get present (as in CI)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def bwrap_problem() -> str | None:
    """Why bwrap cannot make a box here (one line), or None when it runs a trivial command in one."""
    path = shutil.which("bwrap")
    if path is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    try:
        probe = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True,
                               timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not start ({exc})"
    if probe.returncode != 0:
        lines = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bwrap exits {probe.returncode}" + (f": {lines[-1]}" if lines else "")
    return None
