"""Exceptions the engine raises on purpose.

`UserError` is a problem with what the user gave us (a file, a recipe, a parameter): the CLI
turns it into exit code 2 and one line, the GUI into a dialog. Anything else is a bug (exit 1).
"""

import re


class UserError(Exception):
    """Bad input: a missing or corrupt file, an invalid recipe, mismatched data."""

    #: The message without its command-line advice ("give --input-shape ..."), set where a
    #: GUI dialog asks that question itself; None: the message reads right in both faces.
    gui_text = None

    def for_gui(self, text: str) -> "UserError":
        self.gui_text = text
        return self


class Cancelled(Exception):
    """Raised by a cancel check; the work in flight is abandoned and nothing is kept."""


class TooSlow(Exception):
    """A variant timed with a slow cap (recommend's candidates) was already `ratio` times
    slower than the original after `calls` calls: timing it further would only spend the
    user's minutes on a candidate that cannot win."""

    def __init__(self, ratio: float, calls: int, cap: float) -> None:
        super().__init__(f"{cap:g}x slower after {calls} call{'s' if calls != 1 else ''} "
                         f"({ratio:.1f}x the original's time per call); dropped")
        self.ratio, self.calls, self.cap = ratio, calls, cap


class TrustRequired(UserError):
    """The file can only be opened by running code from it (unpickling); the user must agree."""


# --- how an unexpected exception reads ----------------------------------------------------------

#: PyTorch's boilerplate: addressed to PyTorch developers, not to someone optimizing a model.
_BOILERPLATE = re.compile(
    r"\s*\(?Could this error message be improved\?.*?(enhancement request to PyTorch\.\)?|$)"
    r"|\s*(If you want to |Set TORCH_LOGS|Set TORCHDYNAMO_VERBOSE|For even more developer "
    r"context|You can suppress this exception|from user code:|Exception raised from )[\s\S]*",
    re.S)


def clean_message(exc: object) -> str:
    """An exception's text without PyTorch's developer boilerplate, on one line."""
    text = _BOILERPLATE.sub("", str(exc))
    return " ".join(text.split())


def internal_error_text(exc: BaseException) -> str:
    """One line for an exception nobody planned for: what it was, and that it is a bug rather
    than the user's input. A step that crashed (run.StepError, which names the step) is most
    often a corner of PyTorch the technique does not handle: trying another technique helps."""
    if getattr(exc, "step", None):
        return (f"{clean_message(exc)} — an unexpected failure inside this step (QuantGUI or "
                f"PyTorch), not a problem with your files: try another technique for this "
                f"model, and please report it")
    what = clean_message(exc)
    what = f"{type(exc).__name__}: {what}" if what else type(exc).__name__
    return f"{what} — a bug in QuantGUI, not a problem with your files; please report it"
