"""User-facing errors.

Every failure a user can cause (a bad model name, a missing template variable, a broken task file) is raised
as an `EngineError` whose message is one line naming the bad thing and how to fix it. The CLI prints that line
and exits 2 instead of a traceback; library users catch `EngineError`.
"""


class EngineError(Exception):
    """A mistake in what the user asked for, with a one-line message that says how to fix it."""


class ModelError(EngineError):
    """The model could not be found, converted or loaded."""


class BackendUnavailable(EngineError):
    """A backend library (vLLM, transformers) is not installed or cannot start here."""


class TemplateError(EngineError):
    """A prompt template is missing, broken, unsafe, or lacks a variable."""


class TaskError(EngineError):
    """A task file or its data is malformed."""


class ChainError(EngineError):
    """A chain is wired wrongly (for example a step reads a value nothing produced)."""


def first_problem(exc) -> tuple[str, str]:
    """(where, what) of the first error in a pydantic ValidationError, worded for a one-line message."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        return where, "unknown key (check the spelling)"
    return where, first["msg"].removeprefix("Value error, ")
