"""The questions opening a model can raise, answered with the mouse: trust (a file that runs
code), the architecture (a state_dict) and the example input (a model that carries none).

The engine refuses with an error of kind "trust", "architecture" or "example_input" (the
engine protocol's kinds, quantgui.engine.protocol); the window routes a failed load here and
this dispatches on the kind.
A dialog's answer re-opens the model with the arguments it was opened with plus the answer
(trust stays given: nobody is asked twice); while that runs the dialog stays open, and when it
fails the error shows in the dialog, fields filled. Only success closes it. An architecture that
is right but leaves the model without an input hands over to the example-input dialog.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QObject
from shiboken6 import isValid

from . import model_dialogs
from .example_dialog import ExampleInputDialog

#: Formats whose model carries its own example input (a chosen one would not be used).
CARRIES_INPUT = ("example", "exported")


def _text(err: Any) -> str:
    """The engine's message without command-line advice when it has such a form (the dialog
    asks the question itself)."""
    return err.gui_text or err.message


class OpenFlow(QObject):
    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        #: The dialog whose answer is being tried (its load is running), else None.
        self.retrying: Optional[Any] = None

    # -- the window's hooks -----------------------------------------------------------------
    def on_load_failed(self, err: Any, args: dict) -> Optional[str]:
        """Route a failed load; returns the status line when a question took it over, None when
        the window should show the error as usual."""
        kind = err.kind
        dlg, self.retrying = self.retrying, None
        if dlg is not None and isValid(dlg) and dlg.isVisible():
            if kind == "example_input" and not isinstance(dlg, ExampleInputDialog):
                dlg.accept()  # the architecture was right; what is missing now is the input
                return self._ask_example(args, err)
            dlg.show_error(_text(err))  # stays open, fields as the user left them
            return "The model did not open: see the dialog."
        if kind == "trust":
            box = model_dialogs.trust_box(self.win, args["source"], err.message)
            box.accepted.connect(lambda: self.win.open_source(**{**args, "trust": True}))
            self.win.show_dialog(box)
            return "Waiting for your decision on trusting the file."
        if kind == "architecture":
            arch = model_dialogs.ArchitectureDialog(self.win, args["source"], _text(err),
                                                    args.get("arch") or "",
                                                    args.get("arch_kwargs"))
            arch.chosen.connect(lambda a, kw, shape: self._retry(
                arch, {**args, "arch": a, "arch_kwargs": kw, "input_shape": shape}))
            arch.listRequested.connect(lambda path: self._list_classes(arch, path))
            self._open(arch)
            return "Waiting for the model's architecture."
        if kind == "example_input":
            return self._ask_example(args, err)
        return None

    def on_loaded(self) -> None:
        dlg, self.retrying = self.retrying, None
        if dlg is not None and isValid(dlg):
            dlg.accept()

    def on_load_cancelled(self) -> None:
        dlg, self.retrying = self.retrying, None
        if dlg is not None and isValid(dlg) and dlg.isVisible():
            dlg.set_busy(False)

    # -- the example input of the open model (File > Example Input…) ------------------------
    def example_problem(self) -> Optional[str]:
        """Why the open model's example input cannot be changed, or None."""
        loaded = self.win.loaded
        if loaded is None:
            return "Open a model first."
        if loaded.info.format in CARRIES_INPUT:
            return "This model carries its own example input."
        return None

    def ask_example(self) -> None:
        problem = self.example_problem()
        if problem:
            self.win.show_error("Cannot change the example input", problem, warning=True)
            return
        model = self.win.loaded
        info = model.info
        args = dict(self.win.loaded_args)
        dlg = ExampleInputDialog(self.win, args.get("source") or info.source, "",
                                 model.input_kinds or ("file", "shape", "data"), info,
                                 current=info.example_input)
        dlg.chosen.connect(lambda answer: self._retry(dlg, {**self._without_example(args),
                                                            **answer}))
        self._open(dlg)

    # -- plumbing ---------------------------------------------------------------------------
    @staticmethod
    def _without_example(args: dict) -> dict:
        # A new answer replaces the old one (the engine takes one example input at a time).
        drop = ("example_input", "input_shape", "input_dtype", "example_text")
        return {k: v for k, v in args.items() if k not in drop}

    def _ask_example(self, args: dict, err: Any) -> str:
        from quantgui.core import ModelInfo
        data = err.data or {}
        info = ModelInfo.from_json(data["info"]) if data.get("info") else None
        dlg = ExampleInputDialog(self.win, args["source"], "",
                                 data.get("kinds") or ("file", "shape", "data"), info)
        dlg.chosen.connect(lambda answer: self._retry(dlg, {**self._without_example(args),
                                                            **answer}))
        self._open(dlg)
        return "Waiting for an example input."

    def _open(self, dlg: Any) -> None:
        dlg.rejected.connect(lambda: self._rejected(dlg))
        self.win.show_dialog(dlg)

    def _retry(self, dlg: Any, args: dict) -> None:
        if not self.win.open_source(**args):
            dlg.show_error("Busy: wait for the current work to finish, or cancel it.")
            return
        self.retrying = dlg
        dlg.set_busy(True)

    def _rejected(self, dlg: Any) -> None:
        """Cancel in a dialog whose answer is being tried stops that attempt."""
        if self.retrying is dlg:
            self.retrying = None
            self.win.engine.cancel_all()

    def _list_classes(self, dlg: Any, path: str) -> None:
        if self.win.engine.busy:
            dlg.list_failed("Busy: wait for the current work to finish, then Browse again.")
            return
        req = self.win.engine.submit("classes", {"path": path})  # the engine imports the file
        # The dialog may have been closed (and deleted) while the file was imported.
        req.finished.connect(lambda v: isValid(dlg) and dlg.set_classes(path, list(v["classes"])))
        req.failed.connect(lambda err: isValid(dlg) and dlg.list_failed(_text(err)))
        req.cancelled.connect(lambda _t: isValid(dlg) and dlg.list_failed(
            "Listing the classes was cancelled."))
        req.start()
