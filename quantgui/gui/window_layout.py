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
        self._shown = False
        self._tabbed_here = False  # Model was tabbed onto Optimize by this class
        self._targets: dict = {}  # dock -> the width last asked for
        win.setTabPosition(RIGHT, QTabWidget.TabPosition.North)
        win.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.win and event.type() == QEvent.Type.Resize:
            width, height = self.win.width(), self.win.height()
            if not self.update(width, height) and self._untouched():
                self.size_docks(width, height)  # keep the proportions the user has not changed
        elif obj is self.win and event.type() == QEvent.Type.Show and not self._shown:
            # Before the first show the docks count as closed and are left alone: arrange
            # them now, for the size the window really opens at.
            self._shown = True
            self.compact = self.win.width() < COMPACT_BELOW
            self._apply()
            if self.fresh:
                self.size_docks(self.win.width(), self.win.height())
                self.win.resizeDocks([self.history], [history_height(self.win.height())],
                                     Qt.Orientation.Vertical)
            self.fresh = False
        return False

    def size_docks(self, width: int, height: int) -> None:
        if self.compact:
            targets = {self.optimize: _clamp(0.35 * width, 350, 400)}
        else:
            targets = dict(zip((self.model, self.optimize), side_widths(width)))
        self.win.resizeDocks(list(targets), list(targets.values()), Qt.Orientation.Horizontal)
        self._targets = targets

    def _untouched(self) -> bool:
        """The side docks still have the widths this class gave them (the user did not drag
        a separator since, and no settings were restored)."""
        return bool(self._targets) and all(
            dock.isVisible() and abs(dock.width() - target) <= 4
            for dock, target in self._targets.items())

    def update(self, width: int, height: int) -> bool:
        """Switch between the wide and the compact arrangement; True when it switched."""
        compact = width < COMPACT_BELOW
        if compact == self.compact:
            return False
        self.compact = compact
        if self._shown:
            self._apply()
            self.size_docks(width, height)
            self.win.resizeDocks([self.history], [history_height(height)],
                                 Qt.Orientation.Vertical)
        return True

    def tabbed(self) -> bool:
        """Model and Optimize share the right column as tabs."""
        return (self.model in self.win.tabifiedDockWidgets(self.optimize)
                and self.win.dockWidgetArea(self.model) == RIGHT)

    def _movable(self) -> bool:
        # A dock behind another tab is hidden too, but its toggle stays on; a closed one's is off.
        return all(not d.isFloating() and d.toggleViewAction().isChecked()
                   for d in (self.model, self.optimize))

    def _apply(self) -> None:
        w = self.win
        if self.compact:
            if (self._movable() and w.dockWidgetArea(self.model) == LEFT
                    and w.dockWidgetArea(self.optimize) == RIGHT):
                w.tabifyDockWidget(self.optimize, self.model)
                self.optimize.raise_()
            elif not self.tabbed():
                return
            # Tabbed now (or restored tabbed from a small window last time): this arrangement
            # is the compact one, undone when the window is wide again.
            for dock in (self.model, self.optimize):
                dock.setTitleBarWidget(QWidget())  # the tab names it: no second title
            self._tabbed_here = True
        elif self._tabbed_here:
            self._tabbed_here = False
            if self._movable() and self.tabbed():
                for dock in (self.model, self.optimize):
                    dock.setTitleBarWidget(None)
                w.addDockWidget(LEFT, self.model)
                self.model.show()


class TabBarTips(QObject):
    """Tooltips for the scroll arrows of the tab bars QMainWindow makes for tabbed docks (Qt
    gives them none; every control here says what it does)."""

    def __init__(self, win: QMainWindow) -> None:
        super().__init__(win)
        self.win = win
        win.installEventFilter(self)
        self.apply()

    def apply(self) -> None:
        from PySide6.QtWidgets import QTabBar, QToolButton
        for bar in self.win.findChildren(QTabBar):
            for button in bar.findChildren(QToolButton):
                if not button.toolTip():
                    left = "Left" in button.objectName()
                    button.setToolTip(f"Scroll the tabs {'left' if left else 'right'}")

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.win and event.type() in (QEvent.Type.ChildPolished,
                                                 QEvent.Type.LayoutRequest):
            self.apply()
        return False
