"""The child side of the sandbox: run by `python -I -S -B -X utf8 -c <text>`, config JSON on stdin.

It is never imported by the engine: `engine.sandbox.launch` hands the text of `engine.sandbox.hook` followed by this
file's to a fresh isolated interpreter (inside bubblewrap where it works), which installs the limits (rlimits,
no capabilities, seccomp, the audit hook `_install_hook`) before it runs the model's program. Only the standard
library is available here (`-S`), and nothing from the parent process is inherited.

The per-run token that marks the result line is handed to the audit hook and dropped from this frame before
the program runs (a program can read the runner's frame), and the hook writes the line; after the program,
the runner uses only functions it bound beforehand, so replacing ``json.dumps`` or ``builtins.str`` changes
nothing.
"""
import sys, os, io, json, resource, builtins, _thread


_SYSCALLS = {
    # machine: (AUDIT_ARCH, capset, syscalls to refuse)
    # x86_64: clone fork vfork execve kill socket ptrace mount unshare setns execveat process_vm_writev clone3
    #         process_vm_readv tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_send_signal pidfd_open pidfd_getfd
    "x86_64": (0xC000003E, 126, (56, 57, 58, 59, 62, 41, 101, 165, 272, 308, 322, 311, 435,
                                 310, 200, 234, 129, 297, 424, 434, 438)),
    # aarch64: clone execve kill socket ptrace mount unshare setns execveat process_vm_writev clone3
    #          process_vm_readv tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_send_signal pidfd_open pidfd_getfd
    "aarch64": (0xC00000B7, 91, (220, 221, 129, 198, 117, 40, 97, 268, 281, 271, 435,
                                 270, 130, 131, 138, 240, 424, 434, 438)),
}


def _native_limits():
    """Die with the parent, drop all capabilities, then install the seccomp filter. Returns the layers set.

    The filter makes fork/clone/exec/socket/ptrace/kill/pidfd... fail with EPERM. Without capabilities even
    root cannot raise its hard resource limits again, and RLIMIT_NPROC applies to it.
    """
    machine = os.uname().machine
    if machine not in _SYSCALLS or not sys.platform.startswith("linux"):
        return []
    arch, capset, numbers = _SYSCALLS[machine]
    layers = []
    try:
        import ctypes, struct
        libc = ctypes.CDLL(None, use_errno=True)
        u = ctypes.c_ulong
        libc.prctl(1, u(9), u(0), u(0), u(0))  # PR_SET_PDEATHSIG, SIGKILL
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: nothing, twice (64 bits)
        if libc.syscall(u(capset), header, data) == 0:
            layers.append("no-capabilities")
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
        if libc.prctl(38, u(1), u(0), u(0), u(0)) == 0:  # PR_SET_NO_NEW_PRIVS
            if libc.prctl(22, u(2), ctypes.byref(fprog), u(0), u(0)) == 0:  # PR_SET_SECCOMP, MODE_FILTER
                layers.append("seccomp")
    except Exception:
        pass
    finally:
        # A program's own `import ctypes` must run ctypes' set-up again, which the audit hook refuses.
        for name in [name for name in sys.modules if name == "ctypes" or name.startswith("ctypes.")]:
            del sys.modules[name]
    return layers


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
    disable = config.get("disable", ())  # only the engine's tests turn layers off, to check each on its own
    result_fd = os.dup(1)
    stdout = sys.stdout
    try:
        stdout.reconfigure(line_buffering=True)
    except Exception:
        pass
    # Bound now, before the program can replace them (see the module docstring).
    audit, text_of, describe, cap = sys.audit, str, _describe, config["value_cap"]
    layers = ["subprocess", "tempdir", "env"]
    if config.get("bwrap"):
        layers.append("bubblewrap")
    if config.get("netns"):
        layers.append("netns")

    import pathlib
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
            audit("engine.sandbox.blocked", "blocked: running other programs")
            raise PermissionError("blocked: running other programs")

        _posixsubprocess.fork_exec = fork_exec
    except ImportError:
        pass

    limits_ok = all([
        _limit(resource.RLIMIT_CPU, config["cpu_seconds"], config["cpu_seconds"] + 1),
        _limit(resource.RLIMIT_FSIZE, config["fsize"]),
        _limit(resource.RLIMIT_NOFILE, config["nofile"]),
        _limit(resource.RLIMIT_CORE, 0),
        _limit(resource.RLIMIT_AS, config["memory_bytes"]),
    ])
    if limits_ok:
        layers.append("rlimits")
    if "seccomp" not in disable:
        layers += _native_limits()
    if _limit(resource.RLIMIT_NPROC, 0) and (os.geteuid() != 0 or "no-capabilities" in layers):
        layers.append("nproc")
    if "audit-hook" not in disable:
        layers.append("audit-hook")
        _install_hook(root, tuple(read_roots), pathlib, token, result_fd, tuple(layers))
    else:  # the tests' layer checks: no hook, so a hook without its checks writes the result
        _install_hook(root, ("/",), pathlib, token, result_fd, tuple(layers), enforce=False)
    token = config["token"] = None

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
                value = text_of(answer)[:cap]
    except MemoryError:
        reserve = None
        namespace.clear()
        error = "memory limit exceeded"
    except SystemExit as exc:
        if exc.code not in (None, 0):
            error = "SystemExit: %s" % (exc.code,)
    except BaseException as exc:
        reserve = None
        error = describe(exc)
    reserve = None
    namespace = None
    for stream in (stdout, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    audit("engine.sandbox.result", value, error)

_main()
