"""Opening models in the engine process, the questions that can raise (open_flow.py), the data
in use, and what the window does when the engine starts, restarts or re-opens the model.

Mixed into MainWindow (uses its engine, session, summary, optimize, results, history_view,
phase, open_flow and signals); slots run on the GUI thread.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtWidgets import QFileDialog

from . import menus, model_dialogs
from .engine_client import CRASHED, EngineError
from .model_panel import DATA_BUILTIN, DATA_CUSTOM, DATA_FILE, DATA_NONE
from .session_model import OpenedModel


def open_params(args: dict) -> dict:
    """The engine's open params of the window's open arguments (JSON: shapes as lists)."""
    params = {k: v for k, v in args.items() if v is not None and v is not False}
    if hasattr(params.get("data"), "to_json"):  # a DataSpec (Your data…): sent as JSON
        params["data"] = params["data"].to_json()
    if "input_shape" in params:
        params["input_shape"] = [int(d) for d in params["input_shape"]]
    params.setdefault("source", "")
    return params


class ModelActions:
    # -- opening models ---------------------------------------------------------------------
    def open_source(self, source: Optional[str] = None, arch: Optional[str] = None,
                    arch_kwargs: Optional[dict] = None, trust: bool = False,
                    input_shape: Optional[tuple] = None, data: Optional[str] = None,
                    **example: Any) -> bool:
        """Open a model (path, folder or 'example:NAME'; None: the default example) in the
        engine process; `example` is open_model's example_input / input_dtype / example_text.
        Returns False when refused because engine work is running."""
        if self.engine.busy:
            self.phase.setText("Busy: wait for the current work to finish, or cancel it.")
            return False
        self._load_args = dict(source=source, arch=arch, arch_kwargs=arch_kwargs, trust=trust,
                               input_shape=input_shape, data=data, **example)
        self.summary.set_loading(f"Opening {model_dialogs.describe_source(source or 'default example')}…")
        req = self.engine.submit("open", open_params(self._load_args))
        req.progress.connect(self.show_progress)
        req.finished.connect(lambda value: self._on_loaded(OpenedModel.from_json(value)))
        req.failed.connect(self._on_load_failed)
        req.cancelled.connect(lambda _text: self._on_load_cancelled())
        req.warned.connect(self.add_warning)
        self._load = req
        req.start()
        return True

    def _on_loaded(self, model: OpenedModel, args: Optional[dict] = None,
                   no_data: bool = False) -> None:
        self._fill_examples()
        self._no_data = no_data
        self.session.set_model(model, self._load_args if args is None else args)
        source = self.loaded_args.get("source") or model.info.source
        if not str(source).startswith("example:") and args is None:
            self.app_settings.add_recent(str(source))
        self.summary.show_model(model, self._cpu())
        self._show_data_mode()
        self.optimize.set_model(model)
        self.results.set_open_model(model.info.source)
        self.history_view.set_current_model(model.info.source)
        self.setWindowTitle(f"QuantGUI — {model_dialogs.describe_source(model.info.source)}")
        self.phase.setText(f"Ready: {model.info.name} ({model.info.format}).")
        self.open_flow.on_loaded()
        self.modelLoaded.emit(model)

    def _on_load_failed(self, err: EngineError) -> None:
        self._fill_examples()
        self.optimize.ensure_techniques()
        self.optimize.refresh()
        # Trust, the architecture or the example input: a dialog asks (open_flow.py).
        waiting = self.open_flow.on_load_failed(err, dict(self._load_args))
        if waiting:
            self.phase.setText(waiting)
        else:
            # (without command-line advice where the engine gave a form for dialogs)
            self.show_error("Could not open the model", err.text, err.details)
            self.modelFailed.emit(err.message)
        if self.loaded is not None:
            self.summary.show_model(self.loaded, self._cpu())
        else:
            self.summary.set_loading(waiting or "No model open: " + err.message.splitlines()[0])
        self._show_data_mode()  # what is in effect, not what the failed load asked for

    def _on_load_cancelled(self) -> None:
        self.phase.setText("Opening cancelled.")
        self.open_flow.on_load_cancelled()
        if self.loaded is not None:
            self.summary.show_model(self.loaded, self._cpu())
        self._show_data_mode()

    def _fill_examples(self) -> None:
        examples = self.engine.info.get("examples")
        if self._examples_filled or not examples:
            return
        menus.fill_examples(self.examples_menu, [(str(e.get("name")), str(e.get(
            "description", ""))) for e in examples], self.open_source)
        from .fashion_action import add_entry
        add_entry(self, self.examples_menu)
        self._examples_filled = True

    # -- the engine process -----------------------------------------------------------------
    def _on_engine_ready(self, info: dict) -> None:
        from quantgui.core import TechniqueSpec
        self.session.keep_variants = int(info.get("keep_variants") or 8)
        if self.optimize.specs is None:
            specs = [TechniqueSpec.from_json(t) for t in info.get("techniques") or []]
            self.optimize.specs = {s.name: s for s in specs}
        self.optimize.build_techniques_in_turns()
        self._fill_examples()

    def _on_engine_failed(self, text: str) -> None:
        self.show_error("The engine could not start", text)

    def _on_engine_restarted(self, why: str) -> None:
        self.session.evicted(None)  # a fresh engine holds no variants
        self.add_warning(why)
        if self._run is None:
            self.phase.setText(why)

    def _on_reopened(self, value: dict) -> None:
        """The engine restarted and opened the model again: same model, new id, and the same
        data mode (the client dropped the labels again where the user had chosen "None")."""
        self._on_loaded(OpenedModel.from_json(value), self.loaded_args,
                        no_data=self.engine.labels_dropped)
        self.phase.setText(f"The engine was restarted; {self.loaded.info.name} is open again.")

    def _on_data_chosen(self, mode: str) -> None:
        if self.loaded is None:
            self._show_data_mode()
            return
        args = dict(self.loaded_args)
        if mode == DATA_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Data file", self.app_settings.last_dir(),
                                                  model_dialogs.DATA_FILTER)
            if path and self.open_source(**{**args, "data": path}):
                self.data_chooser.set_mode(DATA_FILE, path)  # until the load says otherwise
                return
        elif mode == DATA_BUILTIN and (args.get("data") or self._no_data):
            if self.open_source(**{**args, "data": None}):
                return
        elif mode == DATA_NONE:
            self.use_no_data()  # the chooser shows "None" until the engine says otherwise
        elif mode == DATA_CUSTOM:
            from .data_dialog import choose_own_data
            choose_own_data(self, args)
            return
        self._show_data_mode()

    def _show_data_mode(self) -> None:
        """The data chooser shows the data really in use by the open model."""
        data = self.loaded_args.get("data") if self.loaded is not None else None
        custom = data is not None and not isinstance(data, str)
        mode = (DATA_NONE if self._no_data else DATA_CUSTOM if custom else
                DATA_FILE if data else DATA_BUILTIN)
        self.data_chooser.set_mode(mode, data.describe() if custom else data or "", self.loaded)

    def use_no_data(self) -> None:
        """Drop the labels: accuracy is not measured, fidelity is the quality measure."""
        req = self.engine.submit("drop_labels", {"model_id": self.loaded.model_id})
        args = dict(self.loaded_args)

        def done(value: dict) -> None:
            model = OpenedModel.from_json(value)
            self.session.set_model(model, args)
            self._no_data = True
            self.summary.show_model(model, self._cpu())
            self.optimize.set_model(model)
            self._show_data_mode()
            self.modelLoaded.emit(model)
        req.finished.connect(done)
        req.failed.connect(self._drop_failed)
        req.start()

    def _drop_failed(self, err: EngineError) -> None:
        self._show_data_mode()
        if err.kind != CRASHED:  # a crash: the restart says so, and its re-open drops them
            self.show_error("Could not drop the labels", err.message, err.details)

    def _cpu(self) -> list[str]:
        if self.loaded is not None and self.loaded.cpu:
            return list(self.loaded.cpu)
        return list(self.engine.info.get("cpu_capabilities") or [])
