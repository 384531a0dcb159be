"""The sandbox's outer box: bubblewrap (``bwrap``) around the child Python, when it can run here.

Why: the audit hook and the rest run inside the program's own interpreter, so a clever enough program can
always find a way round them (audit hooks are documented as "not a sandbox"). The boundary has to be the
operating system. Inside the box the program sees only

* the interpreter's own files, read-only: the executable, the standard library, libpython and the system
  library folders (``/usr/lib*``, ``/lib*``, ``/etc/ld.so.cache``) it loads its C extensions from; not ``/``,
  not ``/etc``, not ``/home``, not the project;
* a fresh ``/proc`` (its own process namespace: no other process is visible or can be signalled), a minimal
  ``/dev`` and an empty ``/tmp`` in memory;
* its per-run directory, writable, at the same path as outside (so error messages and ``os.getcwd()`` read
  the same with and without the box);
* no network (a new network namespace holding only ``lo``), no capabilities, and it dies with its parent.

The resource limits, seccomp filter and audit hook still run inside the box, as defence in depth.

Whether bubblewrap works is checked once per process by running a trivial program in exactly this box. Set
``ENGINE_SANDBOX_NO_BWRAP=1`` to skip the box (to test the fallback, or where bwrap misbehaves); the engine
then says once, in one warning line, which layers are active.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

OPT_OUT = "ENGINE_SANDBOX_NO_BWRAP"
"""Environment variable: set it to 1 to run programs without bubblewrap even where bwrap works."""

_log = logging.getLogger("engine.sandbox")
_warned: list[bool] = []


def interpreter() -> str:
    """The real interpreter binary (not a virtualenv's symlink), which the box binds and runs."""
    return os.path.realpath(sys.executable)


def box_command(directory: str) -> list[str] | None:
    """The ``bwrap ... --`` prefix that boxes a child working in `directory`, or None where it cannot run."""
    bwrap = _bwrap()
    if bwrap is None:
        return None
    return _arguments(bwrap, directory)


def unavailable_reason() -> str | None:
    """Why programs run without bubblewrap here, or None when they run inside it."""
    return None if _bwrap() is not None else _probe()[1]


def warn_once(layers: list[str]) -> None:
    """Say once per process, in one line, that the box is missing and which layers are active instead."""
    if _warned or "bubblewrap" in layers:
        return
    _warned.append(True)
    _log.warning("sandbox runs without bubblewrap (%s); active layers: %s", unavailable_reason(), ", ".join(layers))


def _bwrap() -> str | None:
    return _probe()[0]


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[str | None, str | None]:
    """(path of a working bwrap, None) or (None, why not). Runs ``python -c pass`` in the real box once."""
    if os.environ.get(OPT_OUT, "") not in ("", "0"):
        return None, f"{OPT_OUT} is set"
    if not sys.platform.startswith("linux"):
        return None, "bubblewrap needs Linux"
    path = shutil.which("bwrap")
    if path is None:
        return None, "bwrap is not installed"
    directory = tempfile.mkdtemp(prefix="engine-sandbox-probe-")
    try:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        command = [*_arguments(path, directory), interpreter(), "-I", "-S", "-c", "pass"]
        probe = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"bwrap could not start: {exc}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if probe.returncode != 0:
        lines = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, "bwrap failed: " + (lines[-1] if lines else f"exit code {probe.returncode}")
    return path, None


def _arguments(bwrap: str, directory: str) -> list[str]:
    """The bwrap command line. Pure apart from looking at which system folders exist."""
    # No --new-session: the child already starts as a session leader without a terminal (so no TIOCSTI), and
    # staying in bwrap's process group lets one killpg() reach every process in the box.
    command = [bwrap, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL"]
    for source, target in _read_only_paths():
        command += ["--ro-bind", source, target]
    for link in ("/lib", "/lib64", "/lib32"):
        if os.path.islink(link):
            command += ["--symlink", os.readlink(link), link]
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", directory, directory,
                "--chdir", directory]
    return [*command, "--"]  # the child's environment is the minimal one the engine passes to bwrap


@functools.lru_cache(maxsize=1)
def _read_only_paths() -> tuple[tuple[str, str], ...]:
    """(real path, path inside) of what the interpreter needs to start and import its standard library."""
    stdlib = os.path.dirname(os.__file__)
    candidates = [interpreter(), stdlib, sysconfig.get_config_var("DESTSHARED") or ""]
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname:
        candidates.append(os.path.join(libdir, soname))
    candidates += ["/usr/lib", "/usr/lib64", "/usr/lib32", "/etc/ld.so.cache", "/usr/share/zoneinfo"]
    candidates += [link for link in ("/lib", "/lib64", "/lib32") if not os.path.islink(link)]
    paths: list[tuple[str, str]] = []
    for candidate in candidates:
        real = os.path.realpath(candidate) if candidate else ""
        covered = any(real == done or real.startswith(done + "/") for done, _ in paths)
        if real and real != "/" and os.path.exists(real) and not covered:
            paths.append((real, candidate))
    return tuple(paths)
