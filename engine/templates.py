"""The project's single Jinja environment: sandboxed, strict, rooted at `prompts/` plus user folders.

Templates are user input, so they render in Jinja's sandbox (no access to Python internals) with
StrictUndefined (a missing variable is an error that names it, never an empty string).

A template produces either plain text or chat messages. Chat turns are opened with `{{ role("user") }}`,
`{{ role("system") }}` or `{{ role("assistant") }}`; everything up to the next `role(...)` is that turn's
content. The marker carries a per-process random nonce, so text coming from data can never forge a turn.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from engine.errors import TemplateError
from engine.generation import ROLES

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
_NONCE = secrets.token_hex(8)
_MARKER = re.compile(r"\x00turn:(system|user|assistant):" + _NONCE + r"\x00")


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
    """A fresh sandboxed environment whose loader searches `extra_dirs` first, then `prompts/`."""
    search = [str(Path(d)) for d in extra_dirs] + [str(PROMPTS_DIR)]
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals["role"] = _role
    env.filters["numbered"] = _numbered
    return env


@lru_cache(maxsize=8)
def environment(extra_dirs: tuple[str, ...] = ()) -> jinja2.Environment:
    return build_environment(extra_dirs)


def _load(env: jinja2.Environment, name: str) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        where = ", ".join(env.loader.searchpath)
        raise TemplateError(f"template {name!r} not found (looked in {where}): check the name or add its folder") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {name!r} line {exc.lineno}: {exc.message}") from exc


def required_variables(name: str, extra_dirs: tuple[str, ...] = ()) -> set[str]:
    """Variables the template (and templates it includes) reads from its context."""
    env = environment(extra_dirs)
    _load(env, name)  # clear error for a missing template
    seen: set[str] = set()
    needed: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        source = env.loader.get_source(env, current)[0]
        tree = env.parse(source)
        needed |= meta.find_undeclared_variables(tree)
        pending.extend(t for t in meta.find_referenced_templates(tree) if t)
    return needed - set(env.globals)


def render(name: str, context: dict, extra_dirs: tuple[str, ...] = ()) -> RenderedPrompt:
    """Render template `name` with `context` into text or chat messages."""
    env = environment(extra_dirs)
    template = _load(env, name)
    try:
        output = template.render(**context)
    except jinja2.UndefinedError as exc:
        missing = sorted(required_variables(name, extra_dirs) - set(context))
        what = f"missing variables: {', '.join(missing)}" if missing else str(exc)
        raise TemplateError(f"template {name!r}: {what}; pass them in the context") from exc
    except SecurityError as exc:
        raise TemplateError(f"template {name!r} was refused by the sandbox ({exc}): templates may only read the values they are given") from exc
    return split_turns(output, name)


def split_turns(output: str, name: str = "<string>") -> RenderedPrompt:
    """Turn rendered output into text, or into messages where `role(...)` markers are present."""
    parts = _MARKER.split(output)
    if len(parts) == 1:
        return RenderedPrompt(text=output)
    if parts[0].strip():
        raise TemplateError(f"template {name!r} has text before its first role(...) turn: move it inside a turn")
    messages = tuple((parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2))
    return RenderedPrompt(messages=messages)
