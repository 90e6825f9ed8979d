"""The Optimize dock: technique panels, measurement options, the recipe in step order, the
reason a recipe cannot run (shown before Run, with Run disabled), and Run / Cancel.

A recipe that breaks a rule (two numeric formats, a step that does not apply) is explained in
red. A state the user has not got to yet (no model, no technique ticked) is a neutral hint,
and only turns red when the user asks to run anyway.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout,
                               QLabel, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                               QVBoxLayout, QWidget)

from quantgui.core import usable_cpus  # torch-free
from .budget_box import BudgetBox
from .float_edit import float_text
from .technique_panels import TechniquePanels

from .safe_text import plain

ENGINE_STARTING = "The engine is starting…"
NO_MODEL = "Open a model first (File > Open, or an example)."
NO_STEPS = "Enable at least one technique."
#: Not mistakes: what is still to do.
HINTS = (ENGINE_STARTING, NO_MODEL, NO_STEPS)
ERROR_STYLE = "color: #c0392b;"
#: Technique panels are built one per event-loop turn; a real timer (a 0 ms single shot is a
#: posted event: the whole chain would run in one pass, as one stall).
BUILD_TURN_MS = 1


def _shown(value: Any) -> str:
    """A parameter value as its editor shows it (3e-5, not 3e-05)."""
    if isinstance(value, list):  # a list parameter, as its line edit shows it
        return ", ".join(map(str, value))
    return float_text(value) if isinstance(value, float) else str(value)


class OptimizePanel(QWidget):
    runRequested = Signal()
    cancelRequested = Signal()
    suggestRequested = Signal()
    recipeChanged = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("optimizePanel")
        self.techniques: Optional[TechniquePanels] = None
        self.specs: Optional[dict] = None  # the engine's TechniqueSpecs (its hello)
        self._loaded: Any = None
        self._data: tuple = (None, None)  # (train, test) DataInfo of the open model
        self._running = False
        self._error: Optional[str] = ENGINE_STARTING
        self._flagged = False  # the user asked to run although a hint was showing

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        waiting = QLabel("Loading the optimization techniques…")
        waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        waiting.setEnabled(False)
        self.scroll.setWidget(waiting)

        self.batch = QSpinBox()
        self.batch.setObjectName("batchSize")
        self.batch.setRange(0, 65536)
        self.batch.setSpecialValueText("auto (example batch)")
        self.batch.setToolTip("Batch size both models are timed at; auto uses the example "
                              "input's batch. Speedups depend strongly on it.")
        self.threads = QSpinBox()
        self.threads.setObjectName("threads")
        self.threads.setRange(0, usable_cpus())  # more only oversubscribes the CPUs
        self.threads.setSpecialValueText("auto")
        self.threads.setToolTip("torch threads for before and after alike; auto keeps "
                                "torch's setting")
        self.budget = QDoubleSpinBox()
        self.budget.setObjectName("timeBudget")
        self.budget.setRange(0.1, 120.0)
        self.budget.setSingleStep(0.5)
        self.budget.setDecimals(1)
        self.budget.setSuffix(" s")
        self.budget.setValue(3.0)
        self.budget.setToolTip("Seconds spent timing before and after (interleaved). Longer "
                               "gives a tighter confidence interval.")
        #: The window shows this next to the data chooser (it is about how things are measured).
        self.measure_box = measure = QGroupBox("Measurement")
        measure.setObjectName("measurementBox")
        form = QFormLayout(measure)
        form.addRow("Batch size:", self.batch)
        form.addRow("Threads:", self.threads)
        form.addRow("Time budget:", self.budget)

        #: The quality budget: part of the recipe (runs are judged by it, Suggest keeps to it).
        self.quality_budget = BudgetBox()
        self.quality_budget.changed.connect(self._on_changed)

        self.recipe_label = QLabel()
        self.recipe_label.setObjectName("recipeText")
        self.recipe_label.setWordWrap(True)
        self.recipe_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.recipe_label.setToolTip("The steps in the order they run (stage order)")
        self.recipe_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.problem = plain(QLabel())
        self.problem.setObjectName("recipeProblem")
        self.problem.setWordWrap(True)
        self.problem.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        recipe_box = QGroupBox("Recipe (step order)")
        rl = QVBoxLayout(recipe_box)
        rl.addWidget(self.recipe_label)
        rl.addWidget(self.problem)

        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setDefault(True)
        self.run_button.setToolTip("Optimize a copy of the model and measure it against the "
                                   "original (Ctrl+R)")
        self.run_button.clicked.connect(self.runRequested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the run; nothing is kept (Esc)")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.suggest_button = QPushButton("Suggest a recipe")
        self.suggest_button.setObjectName("suggestButton")
        self.suggest_button.setToolTip("Try the candidate recipes likely to pay on this model "
                                       "and CPU, measure each and apply the best")
        self.suggest_button.clicked.connect(self.suggestRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.suggest_button, 2)
        buttons.addWidget(self.run_button, 2)
        buttons.addWidget(self.cancel_button, 1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.scroll, 1)
        lay.addWidget(self.quality_budget)
        lay.addWidget(recipe_box)
        lay.addLayout(buttons)
        self.refresh()

    # -- building ---------------------------------------------------------------------------
    def ensure_techniques(self) -> TechniquePanels:
        """The panels, all built now (from the engine's specs; without them, the registry
        here, which imports torch)."""
        if self.techniques is None:
            self._install(TechniquePanels(specs=self.specs))
        elif not self.techniques.complete:
            self.techniques.build_rest()
            self._built()
        return self.techniques

    def build_techniques_in_turns(self) -> None:
        """The engine listed its techniques: build their panels one per event-loop turn (all
        at once held the window ~70 ms when the first model opened); `ensure_techniques`
        finishes them at once when they are needed before."""
        if self.techniques is None and self.specs is not None:
            self._install(TechniquePanels(specs=self.specs, build=False))
            self._build_turn()

    def _build_turn(self) -> None:
        if self.techniques.complete:
            return  # (ensure_techniques finished them)
        if self.techniques.build_next():
            QTimer.singleShot(BUILD_TURN_MS, self, self._build_turn)
        else:
            self._built()

    def _install(self, panels: TechniquePanels) -> None:
        self.techniques = panels
        panels.setObjectName("techniquePanels")
        panels.changed.connect(self._on_changed)
        self.scroll.setWidget(panels)
        if panels.complete:
            self._built()

    def _built(self) -> None:
        # Narrow enough for the compact window (the summaries wrap).
        self.scroll.setMinimumWidth(min(290, self.techniques.sizeHint().width() + 16))
        self.refresh()

    def set_model(self, loaded: Any) -> None:
        """The open model (session_model.OpenedModel: its ModelInfo and DataInfos)."""
        self._loaded = loaded
        self._data = (loaded.train, loaded.test) if loaded is not None else (None, None)
        self._flagged = False
        panels = self.ensure_techniques()
        panels.set_applicability(dict(loaded.info.applicability) if loaded is not None else {})
        self.refresh()

    def set_running(self, running: bool) -> None:
        self._running = running
        self.refresh()

    # -- recipe -----------------------------------------------------------------------------
    def recipe(self) -> Any:
        if self.techniques is None:
            from quantgui.core import Recipe
            recipe = Recipe([])
        else:
            recipe = self.techniques.recipe()
        recipe.budget = self.quality_budget.budget()
        return recipe

    def set_recipe(self, recipe: Any) -> list[str]:
        """Show a recipe: its steps in the technique panels, its budget (when it has one) in
        the budget box; returns what could not be applied."""
        problems = self.ensure_techniques().set_recipe(recipe)
        if getattr(recipe, "budget", None) is not None:
            self.quality_budget.set_budget(recipe.budget)
        return problems

    def options(self, **overrides: Any) -> dict:
        """The run options as the engine's "run" takes them (RunOptions' fields; unset ones
        are left out)."""
        opts = {"batch_size": self.batch.value() or None, "threads": self.threads.value() or None,
                "time_budget_s": float(self.budget.value()), **overrides}
        return {k: v for k, v in opts.items() if v is not None}

    def problem_text(self) -> Optional[str]:
        return self._error

    def _validate(self) -> Optional[str]:
        """Why the current recipe cannot run, or None: the engine's preflight on the open
        model's facts (ModelInfo, DataInfo) and the technique specs the panels show."""
        if self.techniques is None or not self.techniques.complete:
            return ENGINE_STARTING
        if self._loaded is None:
            return NO_MODEL
        recipe = self.recipe()
        if not recipe.steps:
            return NO_STEPS
        from quantgui.core import preflight
        train, test = self._data
        problems = preflight(self._loaded.info, recipe, train=train, test=test,
                             techniques=self.techniques.specs)
        return problems[0].text() if problems else None

    def refresh(self) -> None:
        self._error = self._validate()
        recipe = self.recipe()
        if recipe.steps:
            panels = self.techniques.panels
            lines = [f"{i}. {panels[s.name].technique.title}"
                     + (f" ({', '.join(f'{k}={_shown(v)}' for k, v in s.params.items())})"
                        if s.params else "")
                     for i, s in enumerate(recipe.steps, 1)]
            self.recipe_label.setText("<br>".join(lines))
        else:
            self.recipe_label.setText("<i>No steps: enable a technique above.</i>")
        self.problem.setText(self._error or "")
        self.problem.setVisible(bool(self._error))
        self.problem.setStyleSheet(ERROR_STYLE if self.problem_is_error() else "")
        self.run_button.setEnabled(not self._running and self._error is None)
        self.run_button.setToolTip(self._error or "Optimize a copy of the model and measure it "
                                   "against the original (Ctrl+R)")
        self.cancel_button.setEnabled(self._running)

    def problem_is_error(self) -> bool:
        """The reason Run is disabled is a mistake (red), not a hint of what to do next."""
        return bool(self._error) and (self._flagged or self._error not in HINTS)

    def flag_problem(self) -> None:
        """The user asked to run: the hint becomes an error until the recipe changes."""
        self._flagged = True
        self.refresh()

    def _on_changed(self) -> None:
        self._flagged = False
        self.refresh()
        self.recipeChanged.emit()
