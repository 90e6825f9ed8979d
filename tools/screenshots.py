"""Regenerate the README's window screenshots.

Runs the demo once (`quantgui --demo`: the default example and its two demo recipes) offscreen
on throw-away settings, then grabs the window at each size in the light and the dark theme:
docs/screenshot-1024x640-light.png and so on. The window alone is saved (no desktop), as a PNG.
The user's own QuantGUI settings are neither read nor written.

    python tools/screenshots.py                       # all sizes, both themes, into docs/
    python tools/screenshots.py --out /tmp/shots --sizes 1024x640 --themes dark

docs/screenshot.png (the README's first picture) is made by the app itself:
`quantgui --demo --screenshot docs/screenshot.png`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

SIZES = ((1024, 640), (1440, 900), (2560, 1440))
THEMES = ("light", "dark")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs"),
                   help="folder for the PNGs (default: the checkout's docs/)")
    p.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES),
                   help="comma-separated WIDTHxHEIGHT list")
    p.add_argument("--themes", default=",".join(THEMES), help="comma-separated: light,dark")
    args = p.parse_args(argv)
    try:
        args.sizes = [tuple(int(n) for n in s.lower().split("x")) for s in args.sizes.split(",")]
    except ValueError:
        p.error(f"--sizes: expected WIDTHxHEIGHT[,WIDTHxHEIGHT...], got {args.sizes!r}")
    args.themes = [t for t in args.themes.split(",") if t]
    if not set(args.themes) <= set(THEMES):
        p.error(f"--themes: choose from {', '.join(THEMES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, QSize, QTimer
    from PySide6.QtWidgets import QApplication

    from quantgui.gui.app import DEMO_TIME_BUDGET_S, DEMO_TIMEOUT_S, Driver
    from quantgui.gui.main_window import MainWindow
    from quantgui.gui.settings import apply_theme

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app, "light")
    tmp = tempfile.TemporaryDirectory(prefix="quantgui-shots-")
    settings = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, run_overrides={"time_budget_s": DEMO_TIME_BUDGET_S})
    window.optimize.budget.setValue(DEMO_TIME_BUDGET_S)
    written: list[Path] = []

    def settle(width: int, height: int) -> None:
        window.resize(width, height)
        for _ in range(10):  # the dock switch, then the plots' own layout, then a paint
            app.processEvents()
        if window.size() != QSize(width, height):
            raise SystemExit(f"the window would not take {width}x{height}: got "
                             f"{window.width()}x{window.height()}")

    class Shots(Driver):
        """The demo driver, grabbing every size and theme instead of one screenshot."""

        def _finish(self, code: int) -> None:
            if code:
                print("the demo failed; no screenshots written", file=sys.stderr)
                app.exit(code)
            elif window.engine.busy:  # the engine is still answering the last request
                QTimer.singleShot(50, lambda: self._finish(0))
            else:
                self._grab_all()

        def _grab_all(self) -> None:
            for theme in args.themes:
                apply_theme(app, theme)
                for width, height in args.sizes:
                    settle(width, height)
                    path = out / f"screenshot-{width}x{height}-{theme}.png"
                    if not window.grab().save(str(path), "PNG"):
                        raise SystemExit(f"could not write {path}")
                    written.append(path)
                    print(f"{path} ({path.stat().st_size // 1024} KiB)", flush=True)
            window.close()
            app.exit(0)

    Shots(window, demo=True, screenshot=None, recipe=None)
    window.resize(*args.sizes[0])
    window.show()
    QTimer.singleShot(0, lambda: window.open_source(None))
    QTimer.singleShot(DEMO_TIMEOUT_S * 1000, lambda: app.exit(1))
    code = app.exec()
    tmp.cleanup()
    return code or (0 if written else 1)


if __name__ == "__main__":
    sys.exit(main())
