"""`quantgui`: the desktop app's entry point.

The window is shown first; torch and the model load in the engine process behind it (the GUI
process never imports torch). `--demo` opens the default example and runs
what `quantgui.core.examples.demo` chooses for this CPU: one recipe expected not to be faster here
(labelled so in the history), then two likely winners, the best last (so the history and the
Pareto plot have three points); `--screenshot PATH` saves the window when that is done and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Optional

_T0 = time.perf_counter()

DEMO_TIME_BUDGET_S = 1.5
DEMO_TIMEOUT_S = 600


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="quantgui", description="QuantGUI desktop workbench")
    p.add_argument("model", nargs="?", help="model file or folder, or example:NAME "
                   "(default: the built-in example)")
    p.add_argument("--arch", help="file.py:Factory that builds the model of a state_dict")
    p.add_argument("--arch-kwargs", default=None, help="JSON keyword arguments for --arch")
    p.add_argument("--data", help="data file (.npz/.pt with inputs and optional labels)")
    p.add_argument("--recipe", help="recipe JSON to load into the panels")
    p.add_argument("--demo", action="store_true",
                   help="open the default example and run a suitable recipe automatically")
    p.add_argument("--screenshot", metavar="PATH",
                   help="save the window to PATH when the demo (or loading) ends, then exit")
    p.add_argument("--theme", choices=("auto", "light", "dark"), help="colour theme")
    args = p.parse_args(argv)
    if args.arch_kwargs:
        try:
            args.arch_kwargs = json.loads(args.arch_kwargs)
        except json.JSONDecodeError as exc:
            p.error(f"--arch-kwargs is not valid JSON: {exc}")
        if not isinstance(args.arch_kwargs, dict):
            p.error("--arch-kwargs must be a JSON object")
    return args


class Driver:
    """Runs the demo variants one after the other and saves the screenshot at the end."""

    def __init__(self, window: Any, demo: bool, screenshot: Optional[str],
                 recipe: Optional[str]) -> None:
        self.window, self.demo, self.screenshot, self.recipe = window, demo, screenshot, recipe
        self.queue: list = []  # quantgui.core.examples.demo.DemoRun, in the order they run
        self.exit_code = 0
        window.modelLoaded.connect(self._on_loaded)
        window.modelFailed.connect(lambda _: self._failed())
        window.runFinished.connect(lambda _: self._next())
        window.runFailed.connect(lambda _: self._failed())
        window.runCancelled.connect(self._failed)

    def _on_loaded(self, loaded: Any) -> None:
        self.window.modelLoaded.disconnect(self._on_loaded)
        if self.recipe:
            self.window.load_recipe(self.recipe)
        if not self.demo:
            if self.screenshot:
                self._finish(0)
            return
        # Chosen for this CPU by quantgui.core.examples.demo, which needs torch: asked of a
        # short-lived process (the engine protocol has no method for it yet).
        from PySide6.QtCore import QProcess
        proc = QProcess(self.window)
        proc.finished.connect(lambda code, _status: self._demo_chosen(proc, code))
        proc.start(sys.executable, ["-m", "quantgui.core.examples.demo"])
        self._demo_proc = proc

    def _demo_chosen(self, proc: Any, code: int) -> None:
        from types import SimpleNamespace

        from quantgui.core.results.run import recipe_from_json  # torch-free, not validated:
        # the recipes come from quantgui's own demo choice (validating imports the registry)
        lines = bytes(proc.readAllStandardOutput().data()).decode("utf-8", "replace")
        proc.deleteLater()
        try:
            self.queue = [SimpleNamespace(recipe=recipe_from_json(d["recipe"]), note=d["note"])
                          for d in map(json.loads, lines.splitlines()) if code == 0]
        except (ValueError, KeyError, TypeError):
            self.queue = []
        if not self.queue:
            self.window.show_error("The demo could not start", "Choosing the demo's recipes "
                                   f"failed (exit code {code}).")
            self._failed()
            return
        self._next()

    def _failed(self) -> None:
        """A model that did not open, a failed or a cancelled run: the user saw it and the
        session goes on (exit 0). Only an unattended run (--demo, --screenshot) fails with it."""
        if self.demo or self.screenshot:
            self._finish(1)

    def _next(self) -> None:
        from PySide6.QtCore import QTimer
        if not self.demo:
            return
        if not self.queue:
            self._finish(0)
            return
        demo = self.queue.pop(0)
        self.window.set_recipe(demo.recipe)
        # Start on a later event-loop turn: the previous run's result is drawn first (a real
        # timer: a 0 ms single shot is a posted event, run in the same pass as the result).
        QTimer.singleShot(1, lambda: self.window.run(note=demo.note))

    def _finish(self, code: int) -> None:
        from PySide6.QtCore import QTimer
        self.exit_code = code or self.exit_code
        if not self.screenshot:
            return
        # Give the plots their paints after the last result before grabbing (the event loop
        # does them; processing events here would hold it for all of them at once).
        QTimer.singleShot(250, self._grab_and_quit)

    def _grab_and_quit(self) -> None:
        from PySide6.QtWidgets import QApplication
        ok = self.window.grab().save(self.screenshot)
        print(f"screenshot {'saved to' if ok else 'FAILED:'} {self.screenshot} after "
              f"{len(self.window.history)} run(s)", flush=True)
        self.exit_code = self.exit_code or (0 if ok else 1)
        self.window.close()
        QApplication.instance().exit(self.exit_code)


def install_excepthook(window: Any, driver: Driver) -> None:
    """A bug in a slot shows the error dialog (the app stays usable); unattended runs stop."""
    import traceback

    def hook(kind: type, exc: BaseException, tb: Any) -> None:
        details = "".join(traceback.format_exception(kind, exc, tb))
        sys.__stderr__.write(details)
        try:
            from quantgui.core import internal_error_text
            window.show_error("Unexpected error", internal_error_text(exc), details)
        except Exception:  # noqa: BLE001 - the window itself may be the problem
            pass
        if driver.screenshot:
            driver._finish(1)
    sys.excepthook = hook


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .settings import AppSettings, apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("QuantGUI")
    app.setOrganizationName("QuantGUI")
    app.setApplicationDisplayName("QuantGUI")
    settings = AppSettings()
    theme = args.theme or settings.theme()
    apply_theme(app, theme)
    # "Follow System": switch palettes when the desktop does.
    app.styleHints().colorSchemeChanged.connect(
        lambda *_: apply_theme(app, "auto") if settings.theme() == "auto" and not args.theme
        else None)
    overrides = {"time_budget_s": DEMO_TIME_BUDGET_S} if args.demo else {}
    window = MainWindow(settings.q, run_overrides=overrides)
    if args.demo:
        window.optimize.budget.setValue(DEMO_TIME_BUDGET_S)
    if args.screenshot:
        # A fixed size, whatever geometry an earlier session saved: screenshots are comparable
        # and every plot gets room for its labels.
        window.resize(1600, 1000)
    driver = Driver(window, args.demo, args.screenshot, args.recipe)
    install_excepthook(window, driver)
    # Render once while still hidden: fonts, glyph caches and the plots' first layout are paid
    # here, not in the first frame the user sees (that frame then takes a few ms, not 100s).
    window.grab()
    window.show()
    if os.environ.get("QUANTGUI_TIMING"):
        print(f"window shown after {time.perf_counter() - _T0:.2f} s", file=sys.stderr, flush=True)
    source = None if args.demo else args.model
    # Paint the first frame before the worker starts importing torch: the import holds the
    # GIL for long stretches and would stretch that paint to hundreds of ms.
    app.processEvents()
    QTimer.singleShot(0, lambda: window.open_source(source, arch=args.arch,
                                                    arch_kwargs=args.arch_kwargs,
                                                    data=args.data))
    if args.screenshot:  # never hang an unattended run
        QTimer.singleShot(DEMO_TIMEOUT_S * 1000, lambda: driver._finish(1))
    code = app.exec()
    return driver.exit_code or code


if __name__ == "__main__":
    sys.exit(main())
