"""Each isolation layer, checked by what it does, and agreeing with what `isolation_layers()` reports.

Layers that depend on the machine are not skipped: the test predicts them from the machine (independently of
the engine) and asserts the report and the behaviour agree. On x86-64/aarch64 Linux seccomp and dropped
capabilities must be there; on Linux as root with apt-get (as in CI, where the set-up installs it) bubblewrap
must run, and a missing or broken bwrap fails the suite in one line; elsewhere the engine must report the
fallback. `engine.sandbox.launch._run(..., disable=...)` turns the audit hook and seccomp off, and
ENGINE_SANDBOX_NO_BWRAP the box, so that a layer is seen working on its own.
"""

import dis
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from engine.sandbox import box as sandbox_box
from engine.sandbox.launch import _run, isolation_layers
from sandbox_machine import bwrap_problem, bwrap_required

REPO = Path(__file__).resolve().parents[1]
NO_HOOK = ("audit-hook",)
NOTHING_INSIDE = ("audit-hook", "seccomp")


def run_alone(code: str, disable: tuple[str, ...]) -> str | None:
    result, _ = _run(code, 5.0, 256, None, disable)
    assert result.ok, result
    return result.value


def _bwrap_expected() -> bool:
    """Whether bwrap can make a box here, asked of bwrap directly (not through the engine)."""
    return os.environ.get(sandbox_box.OPT_OUT, "") in ("", "0") and bwrap_problem() is None


def _unshare_expected() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--net", "--", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def layers() -> list[str]:
    return isolation_layers()


def test_reported_layers_match_this_machine(layers):
    assert {"subprocess", "tempdir", "env", "rlimits", "audit-hook"} <= set(layers)
    seccomp_machine = sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "aarch64")
    assert ("seccomp" in layers) == seccomp_machine
    assert ("bubblewrap" in layers) == _bwrap_expected()
    assert ("netns" in layers) == (_bwrap_expected() or _unshare_expected())
    if seccomp_machine and os.geteuid() == 0 and _bwrap_expected():
        assert {"bubblewrap", "netns", "seccomp", "no-capabilities", "nproc"} <= set(layers)


def test_bubblewrap_runs_where_the_set_up_installs_it(layers):
    """Linux, root, apt-get (as in CI): the box must be there; elsewhere the fallback must be reported as such."""
    problem = bwrap_problem()
    if bwrap_required():
        if problem is not None:
            pytest.fail(f"bubblewrap must run on this machine (Linux, root, apt-get), but {problem}", pytrace=False)
        assert "bubblewrap" in layers, f"bwrap runs here but the engine does not use it: {sandbox_box.unavailable_reason()}"
    elif "bubblewrap" not in layers:
        assert sandbox_box.unavailable_reason() and sandbox_box.box_command("/tmp") is None
    else:
        assert problem is None and sandbox_box.unavailable_reason() is None


@pytest.fixture
def without_box(monkeypatch):
    """Programs run without bubblewrap (which drops capabilities and hides /proc too), to see the inner layers."""
    monkeypatch.setenv(sandbox_box.OPT_OUT, "1")
    sandbox_box._probe.cache_clear()
    yield
    monkeypatch.delenv(sandbox_box.OPT_OUT)
    sandbox_box._probe.cache_clear()


def test_seccomp_refuses_fork_and_threads_with_the_hook_off(layers):
    if "seccomp" not in layers:
        assert not (sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "aarch64"))
        return  # without the filter these would really fork: nothing to run
    code = ("import os, threading\ntry:\n    os.fork()\nexcept OSError as e:\n    fork = e.errno\n"
            "try:\n    threading.Thread(target=print).start()\nexcept RuntimeError as e:\n    thread = str(e)\n"
            "print(fork, thread)\n")
    assert run_alone(code, NO_HOOK) == "1 can't start new thread"


def test_no_capabilities_even_for_root(without_box):
    """The runner's own capset, outside the box: no capability left, so even root may neither raise its hard
    memory limit (CAP_SYS_RESOURCE) nor give a file away (CAP_CHOWN)."""
    code = ("import os, resource\n"
            "def attempt(action):\n    try:\n        action()\n        return 'done'\n"
            "    except (ValueError, OSError):\n        return 'refused'\n"
            "try:\n    caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapPrm'))]\n"
            "except OSError:\n    caps = 'no /proc'\n"
            "open('mine', 'w').close()\n"
            "print(caps, attempt(lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1))),\n"
            "      attempt(lambda: os.chown('mine', 4321, 4321)))\n")
    result, layers = _run(code, 5.0, 256, None, NO_HOOK)
    assert result.ok and "bubblewrap" not in layers, (result, layers)
    if sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "aarch64"):
        assert "no-capabilities" in layers, layers
        assert result.value == "['0000000000000000', '0000000000000000'] refused refused"
    else:  # no capset here: only an unprivileged user is refused
        assert result.value.endswith("refused refused" if os.geteuid() != 0 else "done done"), result


def test_network_namespace_holds_only_loopback(layers):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    code = (f"import socket\nnames = [n for _, n in socket.if_nameindex()]\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n    reached = True\n"
            f"except OSError:\n    reached = False\nprint(reached, names)\n")
    try:
        value = run_alone(code, NOTHING_INSIDE)
    finally:
        listener.close()
    if "netns" in layers:
        assert value == "False ['lo']"
    else:
        assert value.startswith("True")


def test_bubblewrap_hides_the_host(layers, tmp_path):
    marker = tmp_path / "marker.txt"
    marker.write_text("outside")
    code = (f"import os\nprint(os.path.exists({str(marker)!r}), os.path.exists('/etc/passwd'), "
            f"os.path.exists('/home'), os.getpid() < 10)\n")
    seen = run_alone(code, NOTHING_INSIDE)
    if "bubblewrap" in layers:
        assert seen == "False False False True"
    else:
        assert seen.startswith("True True")


def test_opt_out_is_honoured(monkeypatch):
    monkeypatch.setenv(sandbox_box.OPT_OUT, "1")
    sandbox_box._probe.cache_clear()
    try:
        assert sandbox_box.box_command("/tmp") is None
        assert sandbox_box.unavailable_reason() == f"{sandbox_box.OPT_OUT} is set"
    finally:
        monkeypatch.delenv(sandbox_box.OPT_OUT)
        sandbox_box._probe.cache_clear()


def test_box_binds_no_root_and_no_etc():
    command = sandbox_box._arguments("bwrap", "/tmp/engine-sandbox-x")
    bound = [command[i + 2] for i, word in enumerate(command) if word in ("--ro-bind", "--bind")]
    assert "/" not in bound and not any(path == "/etc" or path.startswith("/home") for path in bound)
    assert {"--unshare-all", "--die-with-parent", "--cap-drop"} <= set(command) and command[-1] == "--"


def test_hook_reads_no_globals():
    """The hook must not look anything up at call time: a program could have replaced it."""
    module = compile((REPO / "engine" / "sandbox" / "hook.py").read_text(), "hook.py", "exec")
    install = next(c for c in module.co_consts if isinstance(c, types.CodeType) and c.co_name == "_install_hook")
    pending = [c for c in install.co_consts if isinstance(c, types.CodeType)]
    assert {"hook", "check", "allowed", "resolve", "path_text"} <= {c.co_name for c in pending}
    while pending:
        code = pending.pop()
        pending += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        names = [i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")]
        assert names == [], f"{code.co_name} looks up {names}"


def _descendants(pid: int) -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _program_pids(pid: int) -> set[int]:
    pids = set()
    for child in _descendants(pid):
        try:
            if b"@@engine-sandbox-result@@" in Path(f"/proc/{child}/cmdline").read_bytes():
                pids.add(child)
        except OSError:
            pass
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_kills_the_program(tmp_path):
    """The caller survives KeyboardInterrupt (it keeps running) and the program's processes must be gone."""
    script = textwrap.dedent(f"""
        import signal, sys, time
        # Ctrl-C as a terminal delivers it, whatever disposition or mask this process inherited from the runner
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path.insert(0, {str(REPO)!r})
        from engine.sandbox.launch import run_program
        try:
            run_program("import time\\ntime.sleep(60)\\n", timeout_s=60)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            time.sleep(30)
    """)
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        deadline = time.monotonic() + 10
        program = set()
        while not program and time.monotonic() < deadline:
            time.sleep(0.1)
            program = _program_pids(caller.pid)
        assert program, "the program never started"
        time.sleep(0.5)  # let it reach its sleep
        caller.send_signal(signal.SIGINT)
        said = caller.stdout.readline().strip()
        if said != "interrupted":
            caller.kill()
            raise AssertionError(f"the caller said {said!r}, exit {caller.wait()}, stderr: {caller.stderr.read()[-1500:]!r}")
        deadline = time.monotonic() + 3
        while any(Path(f"/proc/{pid}").exists() for pid in program) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = [pid for pid in program if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        assert alive == [] and caller.poll() is None
    finally:
        caller.kill()
        caller.wait()
