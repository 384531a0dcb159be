"""The project's single Jinja environment: sandboxed, strict, capped, rooted at `prompts/` plus user folders.

Templates are user input, so they render in Jinja's sandbox (no access to Python internals) with
StrictUndefined (a missing variable is an error that names it, never an empty string). A template that runs
away (a huge `range`, nested loops, a string multiplied a billion times) is stopped by the caps below, and
every failure while rendering, whatever Python raised, becomes one `TemplateError` line naming the template.
The caps guard against runaway templates; they do not make a hostile template harmless to memory, since it
renders inside this process.

A template produces either plain text or chat messages. Chat turns are opened with `{{ role("user") }}`,
`{{ role("system") }}` or `{{ role("assistant") }}`; everything up to the next `role(...)` is that turn's
content. The marker carries a per-process random nonce, so text coming from data can never forge a turn.
"""

from __future__ import annotations

import contextvars
import re
import secrets
import time
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from pathlib import Path

import jinja2
from jinja2 import meta, nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from engine.errors import TemplateError
from engine.generation import ROLES

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
_NONCE = secrets.token_hex(8)
_MARKER = re.compile(r"\x00turn:(system|user|assistant):" + _NONCE + r"\x00")

MAX_RENDER_SECONDS = 3.0
"""Wall-clock seconds one render may take; real prompts render in milliseconds."""

MAX_OUTPUT_CHARS = 1_000_000
"""Characters one render may produce (about 250k tokens, beyond any context window here); also the cap on one
string or list built inside a template (by `*`, `+`, `~`, a format width or a filter)."""

MAX_RANGE = 100_000
"""Items one `range(...)` may have (Jinja's own sandbox limit)."""

MAX_LOOP_STEPS = 1_000_000
"""`{% for %}` iterations one render may take, all loops together: nested loops fail fast and the same way on
every machine, before the time cap."""

MAX_INT_BITS = 10_000
"""Bits an integer made by `*` or `**` may have (about 3,000 digits), so `10**10**8` is refused, not computed."""


class RenderLimit(TemplateError):
    """A render went past one of the caps above."""


@dataclass
class _Budget:
    """What one render has spent so far; the guards below charge it."""

    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_RENDER_SECONDS)
    steps: int = 0
    chars: int = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimit(f"rendering ran past {MAX_RENDER_SECONDS:g} s (MAX_RENDER_SECONDS): "
                              "look for a loop that runs too long")

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_LOOP_STEPS:
            raise RenderLimit(f"loops ran more than {MAX_LOOP_STEPS:,} times (MAX_LOOP_STEPS): "
                              "look for nested or huge loops")
        if not self.steps % 256:
            self.check_time()

    def output(self, chars: int) -> None:
        self.chars += chars
        if self.chars > MAX_OUTPUT_CHARS:
            raise RenderLimit(f"output passed {MAX_OUTPUT_CHARS:,} characters (MAX_OUTPUT_CHARS)")
        self.check_time()


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _budget() -> _Budget:
    """The running render's budget (a fresh one when a template is driven without `render`)."""
    return _BUDGET.get() or _Budget()


def _check_size(size: int) -> None:
    if size > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"a string or list of {size:,} items, more than MAX_OUTPUT_CHARS ({MAX_OUTPUT_CHARS:,})")


def _sized(value):
    """`value` when it is a string or sequence within MAX_OUTPUT_CHARS, else RenderLimit."""
    if isinstance(value, (str, list, tuple)):
        _check_size(len(value))
    return value


def _range(*args) -> range:
    """`range` for templates, refused past MAX_RANGE items."""
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise RenderLimit(f"range{args} has {len(items):,} items, more than MAX_RANGE ({MAX_RANGE:,})")
    return items


# a printf conversion's width and precision ("%-12.3f", "%*d"); a str.format field's spec ("{0:>12}", "{:{}}")
_PRINTF_SIZES = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*:([^{}]*)[{}]")


def _check_format(fmt: str, printf: bool) -> None:
    """Refuse a format string whose width or precision would build more than MAX_OUTPUT_CHARS, or comes from an
    argument (where its size cannot be seen in advance)."""
    if printf:
        sizes = [size for match in _PRINTF_SIZES.finditer(fmt) for size in match.groups() if size]
    else:
        sizes = [size for spec in _FORMAT_SPEC.findall(fmt) for size in re.findall(r"\d+", spec)]
        if re.search(r"\{[^{}]*:[^{}]*\{", fmt):
            sizes.append("*")
    for size in sizes:
        if size == "*":
            raise RenderLimit(f"format {fmt[:40]!r} takes a width from its arguments: write the width in the template")
        if int(size) > MAX_OUTPUT_CHARS:
            raise RenderLimit(f"format width {int(size):,} in {fmt[:40]!r} is more than MAX_OUTPUT_CHARS "
                              f"({MAX_OUTPUT_CHARS:,})")


def _product_size(left, right) -> None:
    """Refuse `left * right` before computing it when the result would be too big."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
            _check_size(len(seq) * max(times, 0))
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"an integer product would pass {MAX_INT_BITS:,} bits (MAX_INT_BITS)")


def _power_size(base, exponent) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent * base.bit_length() > MAX_INT_BITS:
            raise RenderLimit(f"{base}**{exponent} would pass {MAX_INT_BITS:,} bits (MAX_INT_BITS)")


_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "slice", "batch"})
"""Filters whose integer arguments are widths or counts, so a huge one would build a huge value."""


def _sized_filter(name: str, filter_func):
    """`filter_func` with its result, and the widths or format string it is given, kept within MAX_OUTPUT_CHARS."""
    skip = 2 if hasattr(filter_func, "jinja_pass_arg") else 1  # the context or environment, then the value

    @wraps(filter_func)
    def capped(*args, **kwargs):
        if name in _WIDTH_FILTERS:
            for arg in (*args[skip:], *kwargs.values()):
                if isinstance(arg, int) and arg > MAX_OUTPUT_CHARS:
                    raise RenderLimit(f"filter {name}({arg:,}) exceeds MAX_OUTPUT_CHARS ({MAX_OUTPUT_CHARS:,})")
        elif name == "format" and isinstance(args[skip - 1], str):
            _check_format(args[skip - 1], printf=True)
        return _sized(filter_func(*args, **kwargs))

    return capped


class _Guards(Extension):
    """Reached by compiled templates (as `environment.extensions[...]`, which templates cannot rebind)."""

    def loop(self, iterable):
        """Every `{% for %}` iterates through here, so that each iteration is counted and timed."""
        budget = _budget()
        for item in iterable:
            budget.step()
            yield item

    def concat(self, text):
        """Every `a ~ b` passes its result through here."""
        return _sized(text)


class _AddGuards(NodeTransformer):
    def __init__(self, guards: _Guards):
        self.guards = guards

    def _call(self, name: str, node: nodes.Expr) -> nodes.Call:
        return nodes.Call(self.guards.attr(name, lineno=node.lineno), [node], [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.For:
        node = self.generic_visit(node)
        node.iter = self._call("loop", node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        return self._call("concat", self.generic_visit(node))


class _CappedTemplate(jinja2.Template):
    def render(self, *args, **kwargs) -> str:
        """Render chunk by chunk, stopping at MAX_OUTPUT_CHARS or MAX_RENDER_SECONDS."""
        budget = _Budget()
        token = _BUDGET.set(budget)
        try:
            parts = []
            for chunk in self.generate(*args, **kwargs):
                budget.output(len(chunk))
                parts.append(chunk)
            return "".join(parts)
        finally:
            _BUDGET.reset(token)


class CappedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox plus the caps above: ranges, loops, output, time, and the size of what `*`,
    `**`, `+`, `%`, `~`, format strings and filters build."""

    template_class = _CappedTemplate
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options):
        super().__init__(extensions=[_Guards], **options)
        self.globals["range"] = _range
        del self.globals["lipsum"]  # lipsum(10**7) would run unchecked in one call
        self.filters = {name: _sized_filter(name, f) for name, f in self.filters.items()}
        self._guards = _AddGuards(self.extensions[_Guards.identifier])

    def _parse(self, source, name, filename):
        return self._guards.visit(super()._parse(source, name, filename))

    def call_binop(self, context, operator_name: str, left, right):
        if operator_name == "*":
            _product_size(left, right)
        elif operator_name == "**":
            _power_size(left, right)
        elif operator_name == "%" and isinstance(left, str):
            _check_format(left, printf=True)
        result = super().call_binop(context, operator_name, left, right)
        return _sized(result) if operator_name == "+" else result

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        _budget().check_time()
        target = getattr(getattr(__obj, "__wrapped__", None), "__self__", None)
        if isinstance(target, str) and getattr(__obj, "__name__", "") in ("format", "format_map"):
            _check_format(target, printf=False)
        return super().call(__context, __obj, *args, **kwargs)


def _role(name: str) -> str:
    if name not in ROLES:
        raise TemplateError(f"role({name!r}) is not a chat role: use one of {', '.join(ROLES)}")
    return f"\x00turn:{name}:{_NONCE}\x00"


def _numbered(items, start: int = 1) -> str:
    """`{{ steps | numbered }}` -> "1. first\\n2. second"."""
    return "\n".join(f"{i}. {item}" for i, item in enumerate(items, start))


@dataclass(frozen=True)
class RenderedPrompt:
    """What a template produced: plain text, or chat messages as (role, content) pairs."""

    text: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None


def build_environment(extra_dirs: tuple[str, ...] = ()) -> jinja2.Environment:
    """A fresh capped sandbox whose loader searches `extra_dirs` first, then `prompts/`."""
    search = [str(Path(d)) for d in extra_dirs] + [str(PROMPTS_DIR)]
    env = CappedSandbox(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals["role"] = _role
    env.filters["numbered"] = _sized_filter("numbered", _numbered)
    return env


@lru_cache(maxsize=8)
def environment(extra_dirs: tuple[str, ...] = ()) -> jinja2.Environment:
    return build_environment(extra_dirs)


def _not_found(env: jinja2.Environment, name: str, missing: str) -> TemplateError:
    where = ", ".join(env.loader.searchpath)
    if missing == name:
        return TemplateError(f"template {name!r} not found (looked in {where}): check the name or add its folder")
    return TemplateError(f"template {name!r} includes {missing!r}, which was not found (looked in {where}; "
                         "'..' is not allowed): use a name inside those folders")


def _load(env: jinja2.Environment, name: str) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise _not_found(env, name, name) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {name!r} line {exc.lineno}: {exc.message}") from exc


def template_trees(env: jinja2.Environment, name: str):
    """`name` and every template it includes, imports or extends, once each, as (name, filename, parsed tree);
    a template that is missing or does not parse comes as (name, None, the exception) and its own includes are
    not followed."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            source, filename, _ = env.loader.get_source(env, current)
            tree = env.parse(source, current, filename)
        except (jinja2.TemplateNotFound, jinja2.TemplateSyntaxError) as exc:
            yield current, None, exc
            continue
        yield current, filename, tree
        pending.extend(t for t in meta.find_referenced_templates(tree) if t)


def optional_variables(tree) -> set[str]:
    """Variables a template tests with `is defined` (or `is undefined`): it says what to do without them, so a
    chain need not provide them (`{% if hint is defined and hint %}` reads `hint` only where a caller set it)."""
    return {test.node.name for test in tree.find_all(nodes.Test)
            if test.name in ("defined", "undefined") and isinstance(test.node, nodes.Name)}


def required_variables(name: str, extra_dirs: tuple[str, ...] = ()) -> set[str]:
    """Variables the template (and templates it includes) reads from its context, less those it tests with
    `is defined` (see `optional_variables`)."""
    env = environment(extra_dirs)
    _load(env, name)  # clear error for a missing template
    needed: set[str] = set()
    for current, _, tree in template_trees(env, name):
        if isinstance(tree, jinja2.TemplateNotFound):
            raise _not_found(env, name, current) from tree
        if isinstance(tree, jinja2.TemplateSyntaxError):
            raise TemplateError(f"template {current!r} line {tree.lineno}: {tree.message}") from tree
        needed |= meta.find_undeclared_variables(tree) - optional_variables(tree)
    return needed - set(env.globals)


def _where(exc: BaseException, name: str) -> str:
    """" line N" (or " (in 'other.jinja' line N)") of the innermost template frame in `exc`'s traceback."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return ""
    filename, line = found
    if filename == name or filename.endswith(("/" + name, "\\" + name)) or filename == "<template>":
        return f" line {line}"
    return f" (in {Path(filename).name!r} line {line})"


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_PRIVATE_ATTRIBUTE = re.compile(r"no attribute '_")


def render(name: str, context: dict, extra_dirs: tuple[str, ...] = ()) -> RenderedPrompt:
    """Render template `name` with `context` into text or chat messages; any failure is one TemplateError line."""
    env = environment(extra_dirs)
    template = _load(env, name)
    try:
        output = template.render(**context)
    except jinja2.UndefinedError as exc:
        if _PRIVATE_ATTRIBUTE.search(str(exc)):
            raise _refused(name, exc) from exc  # "no attribute '__mro__'" of a value the sandbox already refused
        missing = sorted(required_variables(name, extra_dirs) - set(context))
        what = (f"missing variables: {', '.join(missing)}; pass them in the context" if missing
                else f"{_one_line(exc)}: check the name in the template and the values passed")
        raise TemplateError(f"template {name!r}{_where(exc, name)}: {what}") from exc
    except SecurityError as exc:
        raise _refused(name, exc) from exc
    except jinja2.TemplateNotFound as exc:
        raise _not_found(env, name, exc.name) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {name!r} includes {exc.name!r}, which has an error on line {exc.lineno}: "
                            f"{exc.message}") from exc
    except TemplateError as exc:
        raise TemplateError(f"template {name!r}{_where(exc, name)}: {_one_line(exc)}") from exc
    except RecursionError as exc:
        raise TemplateError(f"template {name!r}: a macro or include calls itself without end") from exc
    except Exception as exc:  # noqa: BLE001 - whatever a template's expression raised, one line for the user
        raise TemplateError(f"template {name!r}{_where(exc, name)}: {type(exc).__name__}: {_one_line(exc)}; "
                            "fix that expression") from exc
    return split_turns(output, name)


def _refused(name: str, exc: BaseException) -> TemplateError:
    return TemplateError(f"template {name!r} was refused by the sandbox ({_one_line(exc)}): "
                         "templates may only read the values they are given")


def split_turns(output: str, name: str = "<string>") -> RenderedPrompt:
    """Turn rendered output into text, or into messages where `role(...)` markers are present."""
    parts = _MARKER.split(output)
    if len(parts) == 1:
        return RenderedPrompt(text=output)
    if parts[0].strip():
        raise TemplateError(f"template {name!r} has text before its first role(...) turn: move it inside a turn")
    messages = tuple((parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2))
    return RenderedPrompt(messages=messages)
