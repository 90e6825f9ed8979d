"""Examples > fashion-cnn: opens the Fashion-MNIST example when its files are known (the folder
is remembered in the settings), else explains how to get them and lets the user choose the
folder (examples/fashion.py trains the model once in the engine, with progress and cancel)."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

SETTING = "data/fashion_mnist"


def add_entry(win: Any, menu: QMenu) -> None:
    from quantgui.core import fashion_info as fashion
    menu.addSeparator()
    act = menu.addAction(fashion.NAME)
    act.setObjectName(f"example_{fashion.NAME}")
    act.setToolTip(fashion.DESCRIPTION)
    act.setStatusTip(fashion.DESCRIPTION)
    act.triggered.connect(lambda _=False: open_fashion(win))


def _use(win: Any, folder: str) -> bool:
    from quantgui.core import fashion_info as fashion
    if not fashion.available(folder):
        return False
    win.app_settings.q.setValue(SETTING, folder)
    # the engine process trains/opens it: the folder travels with the open request
    win.open_source(f"example:{fashion.NAME}", fashion_mnist=folder)
    return True


def open_fashion(win: Any) -> None:
    from quantgui.core import fashion_info as fashion
    folder = str(win.app_settings.q.value(SETTING, "") or os.environ.get(fashion.ENV, ""))
    if folder and _use(win, folder):
        return
    box = QMessageBox(win)
    box.setObjectName("fashionHowTo")
    box.setWindowTitle("Fashion-MNIST files needed")
    box.setText(fashion.HOW_TO_GET_GUI)
    choose = box.addButton("Choose folder…", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Close)

    def chosen() -> None:
        if box.clickedButton() is not choose:
            return
        path = QFileDialog.getExistingDirectory(win, "Fashion-MNIST folder",
                                                win.app_settings.last_dir())
        if path and not _use(win, path):
            win.show_error("No Fashion-MNIST files there",
                           f"{path}: no training and t10k IDX files here or in its raw/ or "
                           f"FashionMNIST/raw/ folders")
    box.finished.connect(lambda _: chosen())
    win.dialog = box
    box.open()
