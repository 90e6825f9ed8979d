"""How the docks share the main window at every size.

Wide windows keep the Model dock on the left and the Optimize dock on the right, sized in
proportion to the window. Below COMPACT_BELOW px the two go into one tabbed column on the right
(Optimize in front), so the plots and the history keep a usable width down to 1024x640; when the
window is wide again the Model dock goes back to the left. Only the arrangement made here is
undone: docks the user floated, closed or moved elsewhere are left alone.

Every minimum size in the window is kept small (plots, panels, the history) because a top-level
window cannot be resized below the sum of its parts' minimums; that sum, not this switch, is
what once made a 1024x640 request come out as 1207x721.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QTabWidget, QWidget

#: Window widths (px) below which Model and Optimize share one tabbed column.
COMPACT_BELOW = 1300
LEFT, RIGHT = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea


def _clamp(value: float, lo: int, hi: int) -> int:
    return int(max(lo, min(hi, value)))


def side_widths(width: int) -> tuple[int, int]:
    """(Model, Optimize) dock widths for a wide window `width` px wide."""
    return _clamp(0.2 * width, 260, 380), _clamp(0.28 * width, 340, 480)


def history_height(height: int) -> int:
    return _clamp(0.3 * height, 170, 340)


def scrolled(widget: QWidget, min_width: int) -> QScrollArea:
    """`widget` in a vertical scroll area: its height no longer sets the window's minimum."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    area.setMinimumWidth(min_width)
    return area


class DockLayout(QObject):
    """Watches the window's width and switches between the wide and the compact arrangement."""

    def __init__(self, win: QMainWindow, model: QDockWidget, optimize: QDockWidget,
                 history: QDockWidget) -> None:
        super().__init__(win)
        self.win, self.model, self.optimize, self.history = win, model, optimize, history
        self.compact = False
        #: Size the docks for the window's real size when it is first shown (False when the
        #: user's own dock sizes were restored from the settings).
        self.fresh = True
        win.setTabPosition(RIGHT, QTabWidget.TabPosition.North)
        win.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.win and event.type() == QEvent.Type.Resize:
            self.update(self.win.width(), self.win.height())
        elif obj is self.win and event.type() == QEvent.Type.Show and self.fresh:
            self.fresh = False
            self.size_docks(self.win.width(), self.win.height())
        return False

    def size_docks(self, width: int, height: int) -> None:
        w = self.win
        if self.compact:
            w.resizeDocks([self.optimize], [_clamp(0.35 * width, 350, 400)],
                          Qt.Orientation.Horizontal)
        else:
            w.resizeDocks([self.model, self.optimize], list(side_widths(width)),
                          Qt.Orientation.Horizontal)
        w.resizeDocks([self.history], [history_height(height)], Qt.Orientation.Vertical)

    def update(self, width: int, height: int) -> None:
        compact = width < COMPACT_BELOW
        if compact == self.compact:
            return
        self.compact = compact
        if compact:
            self._to_compact()
        else:
            self._to_wide()
        self.size_docks(width, height)

    def tabbed(self) -> bool:
        """Model and Optimize share the right column as tabs."""
        return (self.model in self.win.tabifiedDockWidgets(self.optimize)
                and self.win.dockWidgetArea(self.model) == RIGHT)

    def _movable(self) -> bool:
        # A dock behind another tab is hidden too, but its toggle stays on; a closed one's is off.
        return all(not d.isFloating() and d.toggleViewAction().isChecked()
                   for d in (self.model, self.optimize))

    def _to_compact(self) -> None:
        w = self.win
        if (self._movable() and w.dockWidgetArea(self.model) == LEFT
                and w.dockWidgetArea(self.optimize) == RIGHT):
            w.tabifyDockWidget(self.optimize, self.model)
            self.optimize.raise_()
            for dock in (self.model, self.optimize):
                dock.setTitleBarWidget(QWidget())  # the tab names it: no second title line

    def _to_wide(self) -> None:
        if self._movable() and self.tabbed():
            for dock in (self.model, self.optimize):
                dock.setTitleBarWidget(None)
            self.win.addDockWidget(LEFT, self.model)
            self.model.show()
