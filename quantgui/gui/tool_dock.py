"""Tools-menu views in bottom docks (Sweep, Layer sensitivity, Auto-tune): one way to add them.

Each view lives in a dock of the bottom area, tabbed with the History dock when that is shown
(a tab gets the area's whole width), with a View-menu toggle, and opens from an action in the
Tools menu. A lazy view is built the first time its action is used, so the window's launch pays
nothing for a tool most sessions never open; until then `getattr(win, attr)` is None.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QWidget


def add_tool_view(win: Any, *, name: str, title: str, action_text: str, tooltip: str,
                  make: Callable[[Any], QWidget], attr: str, height: int,
                  lazy: bool = True,
                  before_show: Optional[Callable[[QWidget], None]] = None) -> QAction:
    """Tools > `action_text` showing the view `make(win)` in a dock titled `title` (object
    names `<name>Dock`, `<name>Action`; `win.actions_by_name[name]`), set as `win.<attr>` and
    as `view.dock`. `height`: the dock's height when shown (room for its plots)."""
    def build() -> QWidget:
        view = make(win)
        dock = QDockWidget(title, win)
        dock.setObjectName(f"{name}Dock")
        dock.setWidget(view)
        win.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        win.view_menu.addAction(dock.toggleViewAction())
        dock.hide()
        view.dock = dock
        setattr(win, attr, view)
        return view

    def show() -> None:
        view = getattr(win, attr) or build()
        if before_show is not None:
            before_show(view)
        dock = view.dock
        history = win.findChild(QDockWidget, "historyDock")
        first = not dock.isVisible()
        dock.show()
        if first and history is not None and history.isVisible() \
                and dock not in win.tabifiedDockWidgets(history):
            win.tabifyDockWidget(history, dock)
        dock.raise_()
        win.resizeDocks([dock], [height], Qt.Orientation.Vertical)

    setattr(win, attr, None)
    if not lazy:
        build()
    action = QAction(action_text, win)
    action.setObjectName(f"{name}Action")
    action.setToolTip(tooltip)
    action.triggered.connect(show)
    win.actions_by_name[name] = action
    tools = next((a.menu() for a in win.menuBar().actions()
                  if a.menu() is not None and a.text().replace("&", "") == "Tools"), None)
    (tools or win.view_menu).addAction(action)
    return action
