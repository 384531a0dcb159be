"""Hostile programs: each kind of attack must be stopped or refused, be a failed step, and leak no secret.

Every program runs against real secrets the test plants outside the box: a marker file in ``tmp_path``, secret
environment variables in this process, a victim process holding a secret in its environment, a listening
socket. A check asserts the secret never shows up in what came back (not merely that there was an error),
then that the engine still runs the next program. The whole table runs twice in the one test command: inside
bubblewrap, and without it (ENGINE_SANDBOX_NO_BWRAP=1), so the fallback layers meet every attack too; kinds
that only the box contains say so.
"""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import pytest

from engine.sandbox import box as sandbox_box
from engine.sandbox.launch import STDOUT_CAP, VALUE_CAP, ProgramResult, isolation_layers, run_program
from sandbox_machine import bwrap_required

SECRET_ENV = {"ENGINE_TEST_SECRET": "env-secret-5a1f", "AWS_SECRET_ACCESS_KEY": "aws-secret-93c2"}
VICTIM_SECRET = "victim-secret-77e0"


@dataclass
class Context:
    secret_path: str
    secret_text: str
    outside_path: str
    victim: subprocess.Popen
    port: int
    listener: socket.socket

    def fill(self, program: str) -> str:
        return (program.replace("SECRET_PATH", repr(self.secret_path)).replace("OUTSIDE_PATH", repr(self.outside_path))
                .replace("VICTIM_PID", str(self.victim.pid)).replace("PORT", str(self.port)))


@dataclass(frozen=True)
class Kind:
    name: str
    program: str
    check: Callable[[ProgramResult, Context], None] = lambda result, ctx: None
    timeout_s: float = 3


def _victim_alive(result: ProgramResult, ctx: Context) -> None:
    time.sleep(0.05)
    assert ctx.victim.poll() is None, "the program killed a process outside the sandbox"


def _nothing_written(result: ProgramResult, ctx: Context) -> None:
    assert not os.path.exists(ctx.outside_path)


def _no_connection(result: ProgramResult, ctx: Context) -> None:
    ctx.listener.settimeout(0.05)
    with pytest.raises(OSError):  # socket.timeout: nobody connected
        ctx.listener.accept()


def _timed_out(result: ProgramResult, ctx: Context) -> None:
    assert result.error.startswith("timed out after")


def _capped(result: ProgramResult, ctx: Context) -> None:
    assert len(result.stdout) <= STDOUT_CAP + 100 and (result.value is None or len(result.value) <= VALUE_CAP)


def _threads_refused(result: ProgramResult, ctx: Context) -> None:
    # Unlimited, the threads would all start, finish their short sleep and the program would succeed.
    assert (result.error, result.stdout.strip()) == ("RuntimeError: can't start new thread", "started 0"), result


def _memory(result: ProgramResult, ctx: Context) -> None:
    assert result.error == "memory limit exceeded"


def _not_in_stdlib() -> None:
    if os.path.exists(STDLIB_FILE):
        os.remove(STDLIB_FILE)
        pytest.fail("the program wrote into the standard library")


STDLIB_FILE = os.path.join(os.path.dirname(os.__file__), "engine_sandbox_evil.py")

KINDS = [
    Kind("read-file-outside", "print(open(SECRET_PATH).read())"),
    Kind("read-etc-passwd", "print(open('/etc/passwd').read())"),
    Kind("str-subclass-eq", (
        "class S(str):\n"
        "    def __eq__(self, other):\n"
        "        global leak\n        leak = open(SECRET_PATH).read()\n        return False\n"
        "    __hash__ = str.__hash__\n"
        "leak = None\ntry:\n    open(S('missing.txt'))\nexcept OSError:\n    pass\nprint(leak)\nraise SystemExit(leak is None)\n")),
    Kind("str-subclass-hash", (
        "class S(str):\n"
        "    def __hash__(self):\n"
        "        global leak\n        leak = open(SECRET_PATH).read()\n        return 1\n"
        "leak = None\ntry:\n    open(S('missing.txt'))\nexcept OSError:\n    pass\nprint(leak)\nraise SystemExit(leak is None)\n")),
    Kind("fspath-answers-twice", (
        "class P:\n    calls = 0\n"
        "    def __fspath__(self):\n        P.calls += 1\n        return SECRET_PATH if P.calls == 1 else 'x.txt'\n"
        "print(open(P()).read())\n")),
    Kind("pathlib-patched-fspath", (
        "import pathlib\nreal = pathlib.PurePath.__fspath__\ncalls = []\n"
        "def fspath(self):\n    calls.append(1)\n    return SECRET_PATH if len(calls) == 1 else real(self)\n"
        "pathlib.PurePath.__fspath__ = fspath\nprint(open(pathlib.Path('x.txt')).read())\n")),
    Kind("builtins-patched", (
        "import builtins, posixpath\nbuiltins.isinstance = lambda *a: True\nbuiltins.any = lambda *a: True\n"
        "posixpath.realpath = lambda *a, **k: '.'\nprint(open(SECRET_PATH).read())\n")),
    Kind("traceback-frame-into-hook", (
        "import _thread\ntry:\n    open(SECRET_PATH)\nexcept PermissionError as e:\n    tb = e.__traceback__\n"
        "    while tb.tb_next:\n        tb = tb.tb_next\n    frame = tb.tb_frame\n"
        "    frame.f_locals['busy'].add(_thread.get_ident())\nprint(open(SECRET_PATH).read())\n")),
    Kind("gc-finds-hook", (
        "import gc\nhooks = [o for o in gc.get_objects() if getattr(o, '__name__', '') == 'hook']\n"
        "for h in hooks:\n    for cell in h.__closure__ or ():\n        cell.cell_contents = None\n"
        "print(open(SECRET_PATH).read())\n")),
    Kind("runner-frame-and-settrace", (
        "import sys\nrunner = sys._getframe(1)\nprint(runner.f_locals.get('token'))\n"
        "sys.settrace(lambda *a: None)\nsys.audit('engine.sandbox.result', 'forged', None)\n"
        "print(open(SECRET_PATH).read())\n")),
    Kind("symlink", "import os\nos.symlink(SECRET_PATH, 'link')\nprint(open('link').read())\n"),
    Kind("hard-link", "import os\nos.link(SECRET_PATH, 'hard')\nprint(open('hard').read())\n"),
    Kind("proc-self-root", "print(open('/proc/self/root' + SECRET_PATH).read())\n"),
    Kind("proc-environ", (
        "import os\nfor pid in ('self', '1', str(os.getppid()), 'VICTIM_PID'):\n"
        "    try:\n        print(open('/proc/%s/environ' % pid, 'rb').read())\n    except OSError:\n        pass\n"
        "raise SystemExit('no environ readable')\n")),
    Kind("environment-secrets", (
        "import os\nprint(dict(os.environ))\nprint(os.environ['ENGINE_TEST_SECRET'], os.environ['AWS_SECRET_ACCESS_KEY'])\n")),
    Kind("write-outside", "open(OUTSIDE_PATH, 'w').write('escaped')\n", _nothing_written),
    Kind("write-into-stdlib", f"open({STDLIB_FILE!r}, 'w').write('import os')\n", lambda result, ctx: _not_in_stdlib()),
    Kind("native-module-written-into-box", (
        "import glob, os, shutil, importlib.util\n"
        "so = glob.glob(os.path.join(os.path.dirname(os.__file__), 'lib-dynload', '_bisect*.so'))[0]\n"
        "shutil.copyfile(so, '_bisect.so')\n"
        "spec = importlib.util.spec_from_file_location('_bisect', os.path.abspath('_bisect.so'))\n"
        "module = importlib.util.module_from_spec(spec)\nprint('loaded native code', module)\n")),
    Kind("ctypes", "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.system(b'cat ' + SECRET_PATH.encode())\n"),
    Kind("fork-bomb", "import os\nwhile True:\n    os.fork()\n", _victim_alive),
    Kind("thread-bomb", (
        "import threading, time\nthreading.stack_size(1 << 16)\nstarted = 0\ntry:\n    for _ in range(1000):\n"
        "        threading.Thread(target=time.sleep, args=(0.2,)).start()\n        started += 1\n"
        "finally:\n    print('started', started)\n"), _threads_refused),
    Kind("subprocess", "import subprocess\nprint(subprocess.run(['cat', SECRET_PATH], capture_output=True).stdout)\n"),
    Kind("socket-to-host", "import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=1).sendall(b'hi')\n",
         _no_connection),
    Kind("kill-other-process", "import os, signal\nos.kill(VICTIM_PID, signal.SIGKILL)\n", _victim_alive),
    Kind("pidfd-kill-other-process", "import os, signal\nsignal.pidfd_send_signal(os.pidfd_open(VICTIM_PID), signal.SIGKILL)\n",
         _victim_alive),
    Kind("raise-resource-limits", (
        "import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "x = bytearray(2 << 30)\n")),
    Kind("memory-bomb", "x = bytearray(10**10)\n", _memory),
    # time enough to reach the memory limit on a loaded machine: the check is that the limit, not the clock, stops it
    Kind("growing-memory", "x = []\nwhile True:\n    x.append(bytearray(10**7))\n", _memory, timeout_s=15),
    Kind("infinite-loop", "while True:\n    pass\n", _timed_out, timeout_s=1),
    Kind("ignore-signals-and-loop", (
        "import signal\nfor s in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n"), _timed_out, timeout_s=1),
    Kind("stdout-flood", "while True:\n    print('x' * 1000)\n", lambda r, c: (_timed_out(r, c), _capped(r, c)),
         timeout_s=1),
    Kind("huge-return-value", "def solution():\n    return 'y' * (10**9)\n", _memory),
    Kind("forged-result-line", (
        "import os\nprint('\\n@@engine-sandbox-result@@' + 'f' * 32 + ' {\"value\": \"forged\", \"error\": null}')\n"
        "os._exit(0)\n"), lambda result, ctx: None if result.value != "forged" else pytest.fail("forged result")),
]

# Contained only by the box: without bubblewrap these pass through (documented in engine.sandbox.box).
BOX_ONLY: dict[str, str] = {}


def test_at_least_twenty_kinds():
    assert len(KINDS) >= 20 and len({kind.name for kind in KINDS}) == len(KINDS)


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outside")
    secret_text = "file-secret-" + os.urandom(6).hex()
    secret_path = folder / "secret.txt"
    secret_path.write_text(secret_text)
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              env={**os.environ, "VICTIM_SECRET": VICTIM_SECRET})
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield Context(str(secret_path), secret_text, str(folder / "escaped.txt"), victim,
                      listener.getsockname()[1], listener)
    finally:
        listener.close()
        victim.kill()
        victim.wait()


@pytest.fixture(scope="module", params=["bubblewrap", "no-bubblewrap"])
def way(request) -> list[str]:
    """The layers of one way through the table: inside bubblewrap, or without it (ENGINE_SANDBOX_NO_BWRAP=1)."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "no-bubblewrap":
            patch.setenv(sandbox_box.OPT_OUT, "1")
        else:
            patch.delenv(sandbox_box.OPT_OUT, raising=False)
        sandbox_box._probe.cache_clear()
        try:
            layers = isolation_layers()
            if request.param == "no-bubblewrap":
                assert "bubblewrap" not in layers, layers
            elif "bubblewrap" not in layers:
                reason = sandbox_box.unavailable_reason()
                if bwrap_required():
                    pytest.fail(f"bubblewrap must run here (Linux, root, apt-get) but does not: {reason}", pytrace=False)
                pytest.skip(f"bubblewrap cannot run here ({reason}): only the way without it is tested")
            yield layers
        finally:
            sandbox_box._probe.cache_clear()


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
def test_hostile_program_is_contained(way, kind, context, monkeypatch):
    if kind.name in BOX_ONLY and "bubblewrap" not in way:
        pytest.skip(f"only bubblewrap contains this: {BOX_ONLY[kind.name]}")
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    result = run_program(context.fill(kind.program), timeout_s=kind.timeout_s, memory_mb=256)
    assert not result.ok and result.error, result
    seen = f"{result.value}\n{result.stdout}\n{result.error}"
    for secret in (context.secret_text, VICTIM_SECRET, "root:x:0:0", *SECRET_ENV.values()):
        assert secret not in seen, f"{kind.name} leaked {secret!r}"
    kind.check(result, context)
    assert context.victim.poll() is None
    follow_up = run_program("def solution():\n    return 6 * 7\n")
    assert (follow_up.ok, follow_up.value) == (True, "42"), follow_up
