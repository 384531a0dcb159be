"""The child side of the sandbox: run by `python -I -S -B -X utf8 -c <this file's text>`, config JSON on stdin.

It is never imported by the engine: `engine.sandbox` reads this file's text and hands it to a fresh isolated
interpreter, which installs the limits (seccomp, rlimits, an audit hook) before it runs the model's program.
Only the standard library is available here (`-S`), and nothing from the parent process is inherited.
"""
import sys, os, io, json, resource, builtins, _thread


def _seccomp():
    """Make fork/clone/exec/socket/... fail with EPERM. Returns True when the filter is installed."""
    tables = {
        # machine: (AUDIT_ARCH, syscall numbers)
        # x86_64: clone fork vfork execve kill socket ptrace mount unshare setns execveat process_vm_writev clone3
        "x86_64": (0xC000003E, (56, 57, 58, 59, 62, 41, 101, 165, 272, 308, 322, 311, 435)),
        # aarch64: clone execve kill socket ptrace mount unshare setns execveat process_vm_writev clone3
        "aarch64": (0xC00000B7, (220, 221, 129, 198, 117, 40, 97, 268, 281, 271, 435)),
    }
    machine = os.uname().machine
    if machine not in tables:
        return False
    arch, numbers = tables[machine]
    try:
        import ctypes, struct
        LD, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06
        ALLOW, DENY = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
        deny_at = 6 + len(numbers)
        program = [(LD, 0, 0, 4), (JEQ, 1, 0, arch), (RET, 0, 0, ALLOW), (LD, 0, 0, 0),
                   (JGE, deny_at - 5, 0, 0x40000000)]  # x32 syscalls
        for i, number in enumerate(numbers):
            program.append((JEQ, deny_at - (5 + i) - 1, 0, number))
        program += [(RET, 0, 0, ALLOW), (RET, 0, 0, DENY)]
        buffer = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in program))

        class FProg(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = FProg(len(program), ctypes.addressof(buffer))
        libc = ctypes.CDLL(None, use_errno=True)
        u = ctypes.c_ulong
        if libc.prctl(38, u(1), u(0), u(0), u(0)) != 0:  # PR_SET_NO_NEW_PRIVS
            return False
        return libc.prctl(22, u(2), ctypes.byref(fprog), u(0), u(0)) == 0  # PR_SET_SECCOMP, MODE_FILTER
    except Exception:
        return False
    finally:
        # A program's own `import ctypes` must run ctypes' set-up again, which the audit hook refuses.
        for name in [name for name in sys.modules if name == "ctypes" or name.startswith("ctypes.")]:
            del sys.modules[name]


def _limit(which, soft, hard=None):
    hard = soft if hard is None else hard
    try:
        resource.setrlimit(which, (soft, hard))
        return True
    except (ValueError, OSError):
        try:
            current = resource.getrlimit(which)[1]
            if current != resource.RLIM_INFINITY:
                resource.setrlimit(which, (min(soft, current), current))
                return True
        except (ValueError, OSError):
            pass
    return False


def _install_hook(root, read_roots, path_types, blocked):
    """Install the audit hook. It is referenced only by the interpreter, never from a frame or global."""
    realpath, fspath, fsdecode, split, join, sep = (os.path.realpath, os.fspath, os.fsdecode, os.path.split,
                                                   os.path.join, os.sep)
    isabs, isdir, readlink = os.path.isabs, os.path.isdir, os.readlink
    get_ident = _thread.get_ident
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    NET = "blocked: network access"
    FILE = "blocked: file access outside the sandbox"
    PROC = "blocked: running other programs"
    events = {
        "subprocess.Popen": PROC, "os.system": PROC, "os.exec": PROC, "os.posix_spawn": PROC, "os.spawn": PROC,
        "os.fork": PROC, "os.forkpty": PROC, "os.startfile": PROC, "pty.spawn": PROC, "webbrowser.open": PROC,
        "os.kill": "blocked: sending signals", "os.killpg": "blocked: sending signals",
        "resource.setrlimit": "blocked: changing resource limits",
        "resource.prlimit": "blocked: changing resource limits",
        "gc.get_objects": "blocked: inspecting the interpreter",
        "gc.get_referrers": "blocked: inspecting the interpreter",
        "gc.get_referents": "blocked: inspecting the interpreter",
        "sqlite3.enable_load_extension": "blocked: loading native code",
        "sqlite3.load_extension": "blocked: loading native code",
        "urllib.Request": NET, "http.client.connect": NET, "ftplib.connect": NET, "smtplib.connect": NET,
        "imaplib.open": NET, "poplib.connect": NET, "nntplib.connect": NET, "telnetlib.Telnet.open": NET,
    }
    # event: (indices of paths to check, follow symlinks of the last component, indices of dir_fd args, write)
    path_events = {
        "os.remove": ((0,), False, (1,), True), "os.rmdir": ((0,), False, (1,), True),
        "os.mkdir": ((0,), False, (2,), True), "os.rename": ((0, 1), False, (2, 3), True),
        "os.link": ((0, 1), False, (2, 3), True), "os.symlink": ((1,), False, (2,), True),
        "os.chmod": ((0,), True, (2,), True), "os.chown": ((0,), True, (3,), True),
        "os.truncate": ((0,), True, (), True), "os.utime": ((0,), True, (3,), True),
        "os.mkfifo": ((0,), False, (2,), True), "os.mknod": ((0,), False, (3,), True),
        "os.setxattr": ((0,), True, (), True), "os.removexattr": ((0,), True, (), True),
        "os.listdir": ((0,), True, (), False), "os.scandir": ((0,), True, (), False),
        "os.getxattr": ((0,), True, (), False), "os.listxattr": ((0,), True, (), False),
        "dbm.open": ((0,), True, (), True), "sqlite3.connect": ((0,), True, (), True),
    }
    busy = set()

    def inside(path, base):
        return path == base or path.startswith(base if base.endswith(sep) else base + sep)

    def allowed(path, follow, write, dir_fd=None, opening=False):
        if path is None:
            path = "."
        if isinstance(path, int):
            return True  # an already-open descriptor
        if not isinstance(path, (str, bytes)) and type(path) not in path_types:
            return False  # a custom os.PathLike could answer differently the second time it is asked
        text = fsdecode(fspath(path))
        if text in (":memory:", ""):
            return True
        if dir_fd is not None and not isabs(text):
            # Relative to an open directory: only directories inside the sandbox can be opened (below).
            text = join(readlink("/proc/self/fd/%d" % dir_fd), text)
        if follow:
            resolved = realpath(text)
        else:
            head, tail = split(text)
            resolved = realpath(text) if tail in ("", ".", "..") else join(realpath(head or "."), tail)
        if inside(resolved, root):
            return True
        if write or not any(inside(resolved, base) for base in read_roots):
            return False
        # os.open() of a directory outside the sandbox would give a dir_fd to write through; refuse it.
        return not (opening and isdir(resolved))

    def check(event, args):
        reason = events.get(event)
        if reason is not None:
            return reason
        if event.startswith("socket."):
            return NET
        if event.startswith("ctypes."):
            return "blocked: ctypes (native code)"
        if event == "import" and args and args[0] == "_posixsubprocess":
            return PROC
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            write = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and bool(flags & write_flags))
            return None if allowed(path, True, write, opening=True) else FILE
        spec = path_events.get(event)
        if spec is not None:
            indices, follow, fd_indices, write = spec
            for n, i in enumerate(indices):
                if i >= len(args):
                    continue
                dir_fd = args[fd_indices[n]] if n < len(fd_indices) and fd_indices[n] < len(args) else None
                if dir_fd is not None and not isinstance(dir_fd, int):
                    return FILE
                if dir_fd is not None and dir_fd < 0:  # -1 (none given) or AT_FDCWD
                    dir_fd = None
                if not allowed(args[i], follow if i == indices[-1] else True, write, dir_fd):
                    return FILE
        return None

    def hook(event, args):
        me = get_ident()
        if me in busy:
            return
        busy.add(me)
        try:
            try:
                reason = check(event, args)
            except Exception:
                reason = FILE if (event == "open" or event in path_events) else None
        finally:
            busy.discard(me)
        if reason is not None:
            if not blocked:
                blocked.append(reason)
            raise PermissionError(reason)

    sys.addaudithook(hook)


def _describe(exc):
    if isinstance(exc, MemoryError):
        return "memory limit exceeded"
    if isinstance(exc, SyntaxError):
        where = " (line %s)" % exc.lineno if exc.lineno else ""
        return "%s: %s%s" % (type(exc).__name__, exc.msg, where)
    try:
        lines = str(exc).strip().splitlines()
    except Exception:
        lines = []
    return type(exc).__name__ + (": " + lines[0] if lines else "")


def _main():
    config = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdin.close()
    sys.stdin = io.StringIO()  # input() sees end of file
    token, entry, root = config["token"], config["entry"], os.path.realpath(config["root"])
    result_fd = os.dup(1)
    stdout = sys.stdout
    try:
        stdout.reconfigure(line_buffering=True)
    except Exception:
        pass
    layers = ["subprocess", "tempdir", "env"]
    if config.get("netns"):
        layers.append("netns")
    blocked = []

    import pathlib
    path_types = (pathlib.PosixPath, pathlib.PurePosixPath)
    read_roots = []
    for entry_path in list(sys.path) + [os.path.dirname(os.__file__), "/usr/share/zoneinfo"]:
        if entry_path:
            real = os.path.realpath(entry_path)
            if real not in read_roots and real != "/":
                read_roots.append(real)

    # No new processes even through a re-imported helper: the audit hook has no event for this function.
    try:
        import _posixsubprocess

        def fork_exec(*args, **kwargs):
            if not blocked:
                blocked.append("blocked: running other programs")
            raise PermissionError("blocked: running other programs")

        _posixsubprocess.fork_exec = fork_exec
    except ImportError:
        pass

    if _seccomp():
        layers.append("seccomp")
    limits_ok = all([
        _limit(resource.RLIMIT_CPU, config["cpu_seconds"], config["cpu_seconds"] + 1),
        _limit(resource.RLIMIT_FSIZE, config["fsize"]),
        _limit(resource.RLIMIT_NOFILE, config["nofile"]),
        _limit(resource.RLIMIT_CORE, 0),
        _limit(resource.RLIMIT_AS, config["memory_bytes"]),
    ])
    if limits_ok:
        layers.append("rlimits")
    if _limit(resource.RLIMIT_NPROC, 0) and os.geteuid() != 0:
        layers.append("nproc")

    _install_hook(root, tuple(read_roots), path_types, blocked)
    layers.append("audit-hook")

    value = None
    error = None
    reserve = bytearray(1 << 20)  # freed on MemoryError so the result can still be written
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(config["code"], "<program>", "exec"), namespace)
        function = namespace.get(entry) if entry else None
        if callable(function):
            answer = function()
            if answer is not None:
                value = str(answer)[: config["value_cap"]]
    except MemoryError:
        reserve = None
        namespace.clear()
        error = "memory limit exceeded"
    except SystemExit as exc:
        if exc.code not in (None, 0):
            error = "SystemExit: %s" % (exc.code,)
    except BaseException as exc:
        reserve = None
        error = _describe(exc)
    if blocked:
        error = blocked[0]
    reserve = None
    namespace = None
    for stream in (stdout, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    message = json.dumps({"value": value, "error": error, "layers": layers}, ensure_ascii=False)
    data = b"\n" + b"@@engine-sandbox-result@@" + token.encode() + b" " + message.encode("utf-8", "replace") + b"\n"
    while data:
        written = os.write(result_fd, data)
        data = data[written:]


_main()
