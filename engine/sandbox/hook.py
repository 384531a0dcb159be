"""The child side's audit hook: refuses file access outside the sandbox, network, processes, native code, ...

Like `engine.sandbox.runner`, this file is never imported by the engine: its text is put in front of the
runner's and both run in the child interpreter (`python -I -S -B -c <text>`).

The hook is a second line of defence (the operating-system box of `engine.sandbox.box` is the first), yet it
must not be trivial to switch off, so it is written to run **no code the program can influence**:

* every builtin and C function it uses is bound into its closure when it is installed (a program can replace
  ``builtins.isinstance`` or ``posixpath.realpath``, never a closure cell it cannot reach); paths are resolved
  by its own small ``realpath`` built on ``os.lstat``/``os.readlink``;
* it accepts paths only as exact ``str``/``bytes`` (a ``str`` subclass could run its ``__eq__`` or
  ``__hash__`` inside the hook) or as pathlib objects whose conversion chain is still the standard library's
  (a patched ``__fspath__`` could answer differently to the hook than to ``open``);
* an event raised while the hook is checking another one (only possible if program code ran inside the hook)
  is refused, not waved through;
* it keeps its own record of what it refused, and it alone holds the per-run token and writes the result
  line, on an ``engine.sandbox.result`` event raised from the runner's own frame (checked by identity), so a
  program can neither hide what was refused nor forge the result;
* a traceback's frame is refused when it is one of the hook's (a PermissionError raised here carries them).
"""


def _install_hook(root, read_roots, pathlib_module, token, result_fd, layers, enforce=True):
    """Install the audit hook, called from the runner's `_main` frame, which alone may raise the result event.

    The hook is referenced only by the interpreter, never from a frame or global.
    """
    import builtins as b
    (type, len, str, bytes, int, tuple, list, reversed, enumerate, zip, PermissionError, OSError, Exception,
     AttributeError) = (b.type, b.len, b.str, b.bytes, b.int, b.tuple, b.list, b.reversed, b.enumerate, b.zip,
                        b.PermissionError, b.OSError, b.Exception, b.AttributeError)
    traceback_type, runner_globals, getframe = type(_traceback()), globals(), sys._getframe
    from _json import encode_basestring_ascii as encode
    main_frame, write, tagged = getframe(1), os.write, b"\n@@engine-sandbox-result@@" + token.encode() + b" "
    layers_json = ", ".join([encode(layer) for layer in layers])
    builtin_names, encoding = b.__dict__, sys.getfilesystemencoding()
    lstat, readlink, getcwd, get_ident, sep = os.lstat, os.readlink, os.getcwd, _thread.get_ident, "/"
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    NET = "blocked: network access"
    FILE = "blocked: file access outside the sandbox"
    PROC = "blocked: running other programs"
    INSPECT = "blocked: inspecting the interpreter"
    NATIVE = "blocked: loading native code"
    events = {
        "subprocess.Popen": PROC, "os.system": PROC, "os.exec": PROC, "os.posix_spawn": PROC, "os.spawn": PROC,
        "os.fork": PROC, "os.forkpty": PROC, "os.startfile": PROC, "pty.spawn": PROC, "webbrowser.open": PROC,
        "os.kill": "blocked: sending signals", "os.killpg": "blocked: sending signals",
        "resource.setrlimit": "blocked: changing resource limits",
        "resource.prlimit": "blocked: changing resource limits",
        "gc.get_objects": INSPECT, "gc.get_referrers": INSPECT, "gc.get_referents": INSPECT,
        "sys.settrace": INSPECT, "sys.setprofile": INSPECT, "sys.monitoring.register_callback": INSPECT,
        "sqlite3.enable_load_extension": NATIVE, "sqlite3.load_extension": NATIVE,
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
    record, busy, reading, written, missing = [], set(), [], [], object()

    # pathlib: what open() used is the `_str` slot, provided nothing in the conversion chain was replaced.
    type_dict, type_mro = type.__dict__["__dict__"].__get__, type.__dict__["__mro__"].__get__
    pure = pathlib_module.PurePath
    path_types = (pathlib_module.PosixPath, pathlib_module.PurePosixPath)
    slot = type_dict(pure).get("_str")
    read_slot = slot.__get__ if type(slot).__name__ == "member_descriptor" else None
    chain = ("__fspath__", "__str__", "__getattribute__", "__getattr__")

    def lookup(cls, name):  # what type(obj).name finds, without running descriptors
        for klass in type_mro(cls):
            found = type_dict(klass).get(name, missing)
            if found is not missing:
                return found
        return None

    originals = tuple(lookup(path_types[0], name) for name in chain)
    pathlib_names = type_dict(pure)["__fspath__"].__globals__

    def exact_keys(names):
        for key in names:
            if type(key) is not str:
                return False
        return True

    def path_text(path):
        kind = type(path)
        if kind is str:
            return path
        if kind is bytes:
            return path.decode(encoding, "surrogateescape")
        if read_slot is None or (kind is not path_types[0] and kind is not path_types[1]):
            return None
        for name, original in zip(chain, originals):
            if lookup(kind, name) is not original:
                return None
        if not (exact_keys(builtin_names) and exact_keys(pathlib_names)):
            return None
        if builtin_names.get("str") is not str or pathlib_names.get("str", missing) is not missing:
            return None
        try:
            text = read_slot(path)
        except AttributeError:
            return None
        return text if type(text) is str else None

    def resolve(text, follow):
        """os.path.realpath(text), or the parent's realpath joined with the last name when not follow."""
        if not text.startswith(sep):
            text = getcwd() + sep + text
        pending, done, hops = text.split(sep), [], 0
        pending.reverse()
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = sep + sep.join(done) + (sep if done else "") + part
            if not pending and not follow:
                done.append(part)
                break
            try:
                link = (lstat(here).st_mode & 0o170000) == 0o120000
            except OSError:
                link = False
            if not link:
                done.append(part)
                continue
            hops += 1
            if hops > 40:
                raise OSError("too many symbolic links")
            target = readlink(here)
            if target.startswith(sep):
                done = []
            pending.extend(reversed(target.split(sep)))
        return sep + sep.join(done)

    def inside(path, base):
        return path == base or path.startswith(base if base.endswith(sep) else base + sep)

    def allowed(path, follow, write, dir_fd=None, opening=False, native=False):
        if path is None:
            path = "."
        if type(path) is int:
            return True  # an already-open descriptor
        text = path_text(path)
        if text is None:
            return False
        if text in (":memory:", ""):
            return not native
        if dir_fd is not None and not text.startswith(sep):
            # Relative to an open directory: only directories inside the sandbox can be opened (below).
            text = readlink("/proc/self/fd/%d" % dir_fd) + sep + text
        resolved = resolve(text, follow)
        if inside(resolved, root):
            return not native
        if write:
            return False
        for base in read_roots:
            if inside(resolved, base):
                break
        else:
            return False
        if opening:  # os.open() of a directory outside the sandbox would give a dir_fd to write through
            try:
                return (lstat(resolved).st_mode & 0o170000) != 0o040000
            except OSError:
                return True
        return True

    def check(event, args):
        reason = events.get(event)
        if reason is not None:
            return reason
        if event.startswith("socket."):
            return NET
        if event.startswith("ctypes."):
            return "blocked: ctypes (native code)"
        if event == "import" and args:
            if type(args[0]) is not str or args[0] == "_posixsubprocess":
                return PROC
            # Only C extensions (those name a file) from the standard library, never one written by the program.
            if len(args) > 1 and args[1] is not None and not allowed(args[1], True, False, native=True):
                return NATIVE
            return None
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            write = (type(mode) is str and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)) or (
                type(flags) is int and (flags & write_flags) != 0)
            return None if allowed(path, True, write, opening=True) else FILE
        spec = path_events.get(event)
        if spec is not None:
            indices, follow, fd_indices, write = spec
            for n, i in enumerate(indices):
                if i >= len(args):
                    continue
                dir_fd = args[fd_indices[n]] if n < len(fd_indices) and fd_indices[n] < len(args) else None
                if dir_fd is not None and type(dir_fd) is not int:
                    return FILE
                if dir_fd is not None and dir_fd < 0:  # -1 (none given) or AT_FDCWD
                    dir_fd = None
                if not allowed(args[i], follow if i == indices[-1] else True, write, dir_fd):
                    return FILE
        return None

    def frame_of(traceback):
        """The frame behind a traceback entry (or the caller's with None), read with the hook standing aside."""
        reading.append(True)
        try:
            return getframe(2) if traceback is None else traceback.tb_frame
        finally:
            reading.pop()

    def emit(value, error):
        """Write the one result line; what the hook refused wins over any error the runner saw."""
        if written:
            return
        written.append(True)
        error = record[0] if record else error
        message = '{"value": %s, "error": %s, "layers": [%s]}' % (
            "null" if value is None else encode(value), "null" if error is None else encode(error), layers_json)
        data = tagged + message.encode("ascii") + b"\n"
        while data:
            data = data[write(result_fd, data):]

    def hook(event, args):
        if reading or (not enforce and event != "engine.sandbox.result"):
            return
        if type(event) is not str:
            reason = INSPECT
        elif event == "engine.sandbox.result":
            if frame_of(None) is main_frame and len(args) == 2:
                emit(args[0] if type(args[0]) is str else None, args[1] if type(args[1]) is str else None)
                return
            reason = INSPECT
        elif event == "engine.sandbox.blocked":
            reason = args[0] if len(args) == 1 and type(args[0]) is str else INSPECT
        elif event == "object.__getattr__" and len(args) == 2 and type(args[0]) is traceback_type:
            # A PermissionError raised here carries this hook's frame, whose closure holds the hook's state.
            reason = INSPECT if frame_of(args[0]).f_globals is runner_globals else None
        else:
            me = get_ident()
            if me in busy:
                reason = INSPECT  # program code ran inside the hook: refuse whatever it tries
            else:
                busy.add(me)
                try:
                    reason = check(event, args)
                except Exception:
                    reason = FILE if (event == "open" or event in path_events) else None
                finally:
                    busy.discard(me)
        if reason is not None:
            if not record:
                record.append(reason)
            raise PermissionError(reason)

    sys.addaudithook(hook)


def _traceback():
    """A traceback object, to learn the traceback type without importing `types`."""
    try:
        raise ValueError
    except ValueError:
        return sys.exc_info()[2]
