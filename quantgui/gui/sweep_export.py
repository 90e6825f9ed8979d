"""The Sweep view's exports: the table as CSV, the sweep as JSON, and the report (the engine's
`sweep_report`: report.html with the tables, crossovers, recommendation per machine type and
the view's own plots, report.md, sweep.json) into a new folder."""

from __future__ import annotations

import base64
from typing import Any

from PySide6.QtWidgets import QFileDialog

from .export_actions import png_bytes


def ask_export(view: Any, fmt: str) -> None:
    """The save dialog (opened, never exec'd); `fmt` "csv", "json" or "report" (a folder)."""
    report = fmt == "report"
    dialog = QFileDialog(view, "Export the sweep report into a new folder" if report
                         else f"Export the sweep as {fmt.upper()}")
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    if not report:
        dialog.setNameFilter(f"{fmt.upper()} (*.{fmt})")
        dialog.setDefaultSuffix(fmt)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog)  # the same dialog everywhere
    dialog.setObjectName("sweepReportDialog" if report else "sweepExportDialog")
    dialog.fileSelected.connect(lambda path: export_report(view, path) if report
                                else export_to(view, path, fmt))
    dialog.open()


def export_to(view: Any, path: str, fmt: str) -> bool:
    """The sweep as JSON or its table as CSV, written by the engine (atomically: whole or not
    at all); the answer or the reason in the status line."""
    return _submit(view, {"what": fmt, "path": path}, f"Exported {path}",
                   "Could not export")


def plot_pngs(view: Any) -> dict[str, bytes]:
    plots = {"Latency vs batch": view.latency_plot,
             "Throughput vs batch": view.throughput_plot}
    if view.profile.bars:
        plots["Per-layer profile"] = view.profile.plot
    return {name: png_bytes(widget) for name, widget in plots.items()}


def export_report(view: Any, folder: str) -> bool:
    """The report through the engine (it writes the folder whole); the answer or the reason
    in the status line, and `view.reported` with the engine's answer."""
    profile = view.profile.result
    return _submit(view, {
        "what": "report", "folder": folder,
        "profile": profile.to_json() if profile is not None else None,
        "plots": {k: base64.b64encode(v).decode("ascii") for k, v in plot_pngs(view).items()}},
        None, "Could not write the report")


def _submit(view: Any, params: dict, done_text: Any, fail_text: str) -> bool:
    win = view.win
    if view.result is None or win.engine.busy:
        view.status.setText("Busy: wait for the current work to finish." if win.engine.busy
                            else "Run a sweep first.")
        return False
    req = win.engine.submit("sweep_report", {**params, "sweep": view.result.to_json()},
                            kind="export")

    def done(value: dict) -> None:
        view.status.setText(done_text or f"Report written: {value.get('path', '')}")
        view.reported.emit(value)

    def failed(err: Any) -> None:
        view.status.setText(f"{fail_text}: {err.text}")
        view.failed.emit(err.text)
    req.finished.connect(done)
    req.failed.connect(failed)
    req.cancelled.connect(lambda _t: view.status.setText("Export cancelled: nothing written."))
    view.status.setText("Writing…")
    req.start()
    return True
