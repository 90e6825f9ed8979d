"""Exceptions the engine raises on purpose.

`UserError` is a problem with what the user gave us (a file, a recipe, a parameter): the CLI
turns it into exit code 2 and one line, the GUI into a dialog. Anything else is a bug (exit 1).
"""


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


class TrustRequired(UserError):
    """The file can only be opened by running code from it (unpickling); the user must agree."""
