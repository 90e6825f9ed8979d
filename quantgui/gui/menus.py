"""Menus, toolbar and shortcuts of the main window (desktop conventions, explicit shortcuts:
offscreen and some Linux desktops give no standard key for Quit)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QStyle, QToolBar


def _action(win: Any, text: str, slot: Callable, shortcut: Optional[str] = None,
            tip: str = "", icon: Optional[QStyle.StandardPixmap] = None,
            name: str = "") -> QAction:
    act = QAction(text, win)
    if shortcut:
        act.setShortcut(QKeySequence(shortcut))
    tip = tip or text.replace("&", "").rstrip("…")
    act.setToolTip(tip + (f" ({shortcut})" if shortcut else ""))
    act.setStatusTip(tip)
    if icon is not None:
        act.setIcon(win.style().standardIcon(icon))
    if name:
        act.setObjectName(name)
    act.triggered.connect(lambda *_: slot())
    return act


def build(win: Any) -> dict[str, QAction]:
    """Create the menu bar and toolbar of `win` (a MainWindow); returns the actions by name."""
    SP = QStyle.StandardPixmap
    a = {
        "open": _action(win, "&Open Model…", win.ask_open, "Ctrl+O",
                        "Open a model file (TorchScript, torch.export, state_dict, pickled)",
                        SP.SP_DialogOpenButton, "actOpen"),
        "open_folder": _action(win, "Open Model &Folder…", win.ask_open_folder, "Ctrl+Shift+O",
                               "Open a Hugging Face model folder", SP.SP_DirOpenIcon),
        "example_input": _action(win, "Example &Input…", win.open_flow.ask_example, None,
                                 "Choose the input the model is timed on (a shape, a file, "
                                 "a data file or, for a text model, sentences)",
                                 name="actExampleInput"),
        "load_recipe": _action(win, "&Load Recipe…", win.ask_load_recipe, "Ctrl+L",
                               "Load a recipe (JSON) into the panels"),
        "save_recipe": _action(win, "&Save Recipe…", win.ask_save_recipe, "Ctrl+S",
                               "Save the enabled steps as a recipe (JSON)",
                               SP.SP_DialogSaveButton, "actSaveRecipe"),
        "export": _action(win, "&Export Results…", win.ask_export_results, "Ctrl+E",
                          "Export every run of this session as CSV or JSON",
                          SP.SP_FileDialogDetailedView, "actExport"),
        "export_plots": _action(win, "Export &Plots…", win.ask_export_plots, None,
                                "Save the plots as PNG or SVG"),
        "export_model": _action(win, "Optimized &Model…", win.exports.ask_export_model, None,
                                "Save the selected run's optimized model (verified by reloading)",
                                name="actExportModel"),
        "export_recipe": _action(win, "&Recipe JSON…", win.exports.ask_export_recipe, None,
                                 "Save the selected run's recipe with its measured results"),
        "export_script": _action(win, "&Standalone Script…", win.exports.ask_export_script, None,
                                 "Write a Python script that rebuilds the optimized model",
                                 name="actExportScript"),
        "export_report": _action(win, "Report (&HTML + Markdown)…", win.exports.ask_export_report,
                                 None, "Write report.html, report.md and recipe.json"),
        "save_project": _action(win, "Save Pro&ject…", win.exports.ask_save_project, None,
                                "Save the session history as a project file (no models)"),
        "open_project": _action(win, "Open Projec&t…", win.exports.ask_open_project, None,
                                "Reopen a project: its runs fill the session history"),
        "suggest": _action(win, "&Suggest a Recipe", win.suggest.start, None,
                           "Measure likely candidates and apply the best recipe",
                           name="actSuggest"),
        "quit": _action(win, "&Quit", win.close, "Ctrl+Q", "Quit QuantGUI", name="actQuit"),
        "run": _action(win, "&Run", win.run, "Ctrl+R", "Optimize and measure",
                       SP.SP_MediaPlay, "actRun"),
        "cancel": _action(win, "&Cancel", win.cancel, "Esc", "Stop the run", SP.SP_MediaStop,
                          "actCancel"),
        "fullscreen": _action(win, "&Full Screen", win.toggle_full_screen, "F11",
                              "Toggle full screen"),
        "about": _action(win, "&About QuantGUI", win.show_about, None,
                         "Versions and CPU capabilities"),
    }
    a["fullscreen"].setCheckable(True)

    bar = win.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addAction(a["open"])
    file_menu.addAction(a["open_folder"])
    win.examples_menu = file_menu.addMenu("E&xamples")
    win.examples_menu.setObjectName("examplesMenu")
    win.examples_menu.setToolTipsVisible(True)
    win.recent_menu = file_menu.addMenu("Open &Recent")
    win.recent_menu.setObjectName("recentMenu")
    win.recent_menu.aboutToShow.connect(win.fill_recent_menu)
    file_menu.addAction(a["example_input"])
    file_menu.addSeparator()
    file_menu.addAction(a["load_recipe"])
    file_menu.addAction(a["save_recipe"])
    file_menu.addSeparator()
    file_menu.addAction(a["open_project"])
    file_menu.addAction(a["save_project"])
    file_menu.addSeparator()
    file_menu.addAction(a["export"])
    file_menu.addAction(a["export_plots"])
    win.export_menu = file_menu.addMenu("Expor&t")
    win.export_menu.setObjectName("exportMenu")
    win.export_menu.setToolTipsVisible(True)
    for key in ("export_model", "export_recipe", "export_script", "export_report"):
        win.export_menu.addAction(a[key])
    file_menu.addSeparator()
    file_menu.addAction(a["quit"])

    run_menu = bar.addMenu("&Run")
    run_menu.addAction(a["run"])
    run_menu.addAction(a["cancel"])

    tools_menu = bar.addMenu("&Tools")
    tools_menu.addAction(a["suggest"])

    win.view_menu = bar.addMenu("&View")
    win.view_menu.addAction(a["fullscreen"])
    theme_menu = win.view_menu.addMenu("&Theme")
    group = QActionGroup(win)
    for key, label in (("auto", "Follow System"), ("light", "Light"), ("dark", "Dark")):
        act = QAction(label, win, checkable=True)
        act.setChecked(win.app_settings.theme() == key)
        act.setToolTip(f"{label} colours")
        act.triggered.connect(lambda _=False, k=key: win.set_theme(k))
        group.addAction(act)
        theme_menu.addAction(act)
    win.view_menu.addSeparator()

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(a["about"])

    tb = QToolBar("Main")
    tb.setObjectName("mainToolBar")
    tb.setMovable(True)
    tb.addAction(a["open"])
    examples_button = win.examples_menu.menuAction()
    examples_button.setToolTip("Open a built-in example model")
    tb.addAction(examples_button)
    tb.addSeparator()
    tb.addAction(a["run"])
    tb.addAction(a["cancel"])
    tb.addSeparator()
    tb.addAction(a["save_recipe"])
    tb.addAction(a["export"])
    win.addToolBar(tb)
    win.view_menu.addAction(tb.toggleViewAction())
    win.toolbar = tb
    return a


def fill_examples(menu: QMenu, examples: list[tuple[str, str]], open_fn: Callable) -> None:
    menu.clear()
    for name, description in examples:
        act = menu.addAction(name)
        act.setToolTip(description)
        act.setStatusTip(description)
        act.setObjectName(f"example_{name}")
        act.triggered.connect(lambda _=False, n=name: open_fn(f"example:{n}"))
