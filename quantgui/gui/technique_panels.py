"""Optimization panels generated from each technique's `TechniqueSpec` (the engine's data).

No technique has GUI code of its own: each `ParamSpec` gives name, type, default, range, step,
choices and help, and a small type -> widget map turns each into an editor (spin boxes
with ranges and steps, combos for choices, "auto" for optional values, check boxes, line edits),
with the help text as tooltip. One collapsible panel per technique, with an enable check box,
its one-line summary, and the engine's reason when it does not apply to the open model.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from .float_edit import FloatSpinBox, float_text, is_log_range
from .safe_text import plain

AUTO = "auto"
_BIG = 2_000_000_000


class Editor:
    """A widget for one parameter plus how to read it, write it and hear it change."""

    def __init__(self, spec: Any, widget: QWidget, get: Callable[[], Any],
                 set_: Callable[[Any], None], changed: Any) -> None:
        self.spec, self.widget, self.get, self.set, self.changed = spec, widget, get, set_, changed


def make_editor(spec: Any) -> Editor:
    """The type -> widget map. `spec` is a `quantgui.core.params.ParamSpec`."""
    default = (AUTO if spec.default is None else float_text(spec.default)
               if spec.type is float else spec.default)
    if spec.type is list:
        default = ", ".join(spec.default or []) or "none"
    tip = spec.help + f"\nDefault: {default}"
    if spec.choices:
        w = QComboBox()
        # Long choices are elided rather than widening the dock past a small window.
        w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        w.setMinimumContentsLength(10)
        items = ([AUTO] if spec.optional and AUTO not in map(str, spec.choices) else [])
        items += [str(c) for c in spec.choices]
        w.addItems(items)
        values = {str(c): c for c in spec.choices}

        def get() -> Any:
            text = w.currentText()
            return None if text == AUTO and text not in values else values.get(text, text)

        def set_(v: Any) -> None:
            idx = w.findText(AUTO if v is None else str(v))
            if idx < 0:
                raise ValueError(f"{spec.name}: {v!r} is not one of {', '.join(items)}")
            w.setCurrentIndex(idx)
        editor = Editor(spec, w, get, set_, w.currentIndexChanged)
    elif spec.type is bool:
        w = QCheckBox()
        editor = Editor(spec, w, w.isChecked, lambda v: w.setChecked(bool(v)), w.toggled)
    elif spec.type in (int, float):
        editor = _number_editor(spec)
        w = editor.widget
    elif spec.type is list:  # e.g. a skip list: comma-separated patterns
        w = QLineEdit()
        w.setPlaceholderText("none (comma-separated)")
        editor = Editor(spec, w, lambda: [p.strip() for p in w.text().split(",") if p.strip()],
                        lambda v: w.setText(", ".join(v) if isinstance(v, (list, tuple))
                                            else "" if v is None else str(v)), w.textChanged)
    else:
        w = QLineEdit()
        if spec.optional:
            w.setPlaceholderText(AUTO)
        editor = Editor(spec, w, lambda: (w.text() or None) if spec.optional else w.text(),
                        lambda v: w.setText("" if v is None else str(v)), w.textChanged)
    w.setToolTip(tip)
    w.setObjectName(f"param_{spec.name}")
    editor.set(spec.default)
    return editor


def _number_editor(spec: Any) -> Editor:
    is_int = spec.type is int
    step = spec.step or 1
    if not is_int and not spec.step and spec.min is not None and spec.max is not None \
            and spec.max > spec.min:  # a tenth of the range, rounded down to a power of ten
        step = 10.0 ** math.floor(math.log10((spec.max - spec.min) / 10))
    lo = spec.min if spec.min is not None else -_BIG
    hi = spec.max if spec.max is not None else _BIG
    if is_int:
        w = QSpinBox()
        step = max(1, int(step))
    else:  # shows and keeps the exact value (1e-4, not 0.00); decades step 1-2-5
        w = FloatSpinBox(log=spec.step is None and is_log_range(spec.min, spec.max))
    # An optional number gets one extra value below the minimum, shown as "auto".
    auto_value = (lo - step) if spec.optional else None
    w.setRange(auto_value if spec.optional else lo, hi)
    w.setSingleStep(step)
    if spec.optional:
        w.setSpecialValueText(AUTO)
    w.setKeyboardTracking(False)
    w.setAlignment(Qt.AlignmentFlag.AlignRight)

    def get() -> Any:
        v = w.value()
        if spec.optional and v == w.minimum():
            return None
        return int(v) if is_int else float(v)

    def set_(v: Any) -> None:
        if v is None:
            w.setValue(w.minimum())
        else:
            v = int(v) if is_int else float(v)
            if not lo <= v <= hi:
                raise ValueError(f"{spec.name}: {v} is outside {lo}..{hi}")
            w.setValue(v)
    return Editor(spec, w, get, set_, w.valueChanged)


class TechniquePanel(QFrame):
    """Collapsible panel: enable check box, summary, reason it does not apply, parameters."""

    changed = Signal()

    def __init__(self, technique: Any, parent: Optional[QWidget] = None) -> None:
        """`technique`: its `TechniqueSpec` (name, title, summary, stage, group, params)."""
        super().__init__(parent)
        self.technique = technique
        self.name = technique.name
        self.setObjectName(f"panel_{self.name}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._reason: Optional[str] = None

        self.arrow = QToolButton()
        self.arrow.setArrowType(Qt.ArrowType.RightArrow)
        self.arrow.setAutoRaise(True)
        self.arrow.setToolTip("Show or hide the parameters")
        self.arrow.clicked.connect(lambda: self.set_expanded(not self.expanded))
        self.check = QCheckBox(technique.title)
        self.check.setObjectName(f"enable_{self.name}")
        font = self.check.font()
        font.setBold(True)
        self.check.setFont(font)
        self.check.setToolTip(f"Add '{self.name}' to the recipe.\n{technique.summary}")
        self.check.toggled.connect(self._on_toggled)
        stage = QLabel(f"stage {technique.stage}")
        stage.setToolTip("Recipes run steps in stage order"
                         + (f"; one '{technique.group}' step per recipe" if technique.group
                            else "") + ".")
        stage.setEnabled(False)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.arrow)
        head.addWidget(self.check, 1)
        head.addWidget(stage)

        self.summary = QLabel(technique.summary)
        self.summary.setWordWrap(True)
        self.summary.setToolTip(technique.summary)
        self.summary.setMinimumWidth(240)  # wraps instead of widening the dock
        self.reason = plain(QLabel())
        self.reason.setWordWrap(True)
        self.reason.setObjectName("reason")
        self.reason.setStyleSheet("color: #b3541e;")
        self.reason.setMinimumWidth(240)
        self.reason.hide()

        self.body = QWidget()
        form = QFormLayout(self.body)
        form.setContentsMargins(22, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.editors: dict[str, Editor] = {}
        for spec in technique.params:
            editor = make_editor(spec)
            editor.changed.connect(self._on_param_changed)
            label = QLabel(spec.title)
            label.setToolTip(spec.help)
            form.addRow(label, editor.widget)
            self.editors[spec.name] = editor
        if not self.editors:
            none = QLabel("No parameters.")
            none.setEnabled(False)
            form.addRow(none)
        self.body.hide()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        lay.setSpacing(2)
        lay.addLayout(head)
        lay.addWidget(self.summary)
        lay.addWidget(self.reason)
        lay.addWidget(self.body)

    # -- state ------------------------------------------------------------------------------
    @property
    def expanded(self) -> bool:
        return not self.body.isHidden()

    def set_expanded(self, on: bool) -> None:
        self.body.setVisible(on)
        self.arrow.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    @property
    def enabled(self) -> bool:
        return self.check.isChecked()

    def set_enabled(self, on: bool) -> None:
        if on and self._reason:
            raise ValueError(f"{self.name} does not apply to this model: {self._reason}")
        self.check.setChecked(on)

    def set_applicability(self, reason: Optional[str]) -> None:
        """None: the technique applies; else disable the panel and show the engine's reason."""
        self._reason = reason
        if reason:
            self.check.setChecked(False)
        self.check.setEnabled(not reason)
        self.body.setEnabled(not reason)
        self.reason.setText(f"Not available for this model: {reason}" if reason else "")
        self.reason.setToolTip(reason or "")
        self.reason.setVisible(bool(reason))

    @property
    def applicable(self) -> bool:
        return not self._reason

    def values(self, only_changed: bool = True) -> dict[str, Any]:
        out = {}
        for name, ed in self.editors.items():
            v = ed.get()
            if not only_changed or v != ed.spec.default:
                out[name] = v
        return out

    def set_value(self, field: str, value: Any) -> None:
        if field not in self.editors:
            known = ", ".join(self.editors) or "none"
            raise ValueError(f"{self.name} has no parameter '{field}' (known: {known})")
        self.editors[field].set(value)

    def reset(self) -> None:
        for ed in self.editors.values():
            ed.set(ed.spec.default)

    def _on_toggled(self, on: bool) -> None:
        if on and self.editors:
            self.set_expanded(True)
        self.changed.emit()

    def _on_param_changed(self, *_: Any) -> None:
        self.changed.emit()


class TechniquePanels(QWidget):
    """All panels, in the registry's order (which is stage order); builds the recipe."""

    changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None,
                 specs: Optional[dict] = None, build: bool = True) -> None:
        """`specs`: name -> TechniqueSpec as the engine's hello lists them; None: read the
        registry here (imports torch: only for panels built without an engine process).
        `build=False`: no panel yet; `build_next` adds them one at a time."""
        super().__init__(parent)
        if specs is None:
            from quantgui.core import technique_specs
            specs = technique_specs()
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(4, 4, 4, 4)
        self._lay.setSpacing(6)
        self._lay.addStretch(1)
        self.panels: dict[str, TechniquePanel] = {}
        #: technique -> the reason it does not apply to the open model (None: it applies)
        self.applicability: dict[str, Optional[str]] = {}
        self._todo = list(specs.items())
        if build:
            self.build_rest()

    @property
    def complete(self) -> bool:
        return not self._todo

    def build_next(self) -> bool:
        """Add the next panel (registry order); False when none is left to add. One panel is
        a few ms: the window builds them one per event-loop turn while the engine starts."""
        if self._todo:
            name, tech = self._todo.pop(0)
            panel = TechniquePanel(tech, self)
            panel.changed.connect(self.changed)
            self._lay.insertWidget(self._lay.count() - 1, panel)  # before the stretch
            self.panels[name] = panel
        return bool(self._todo)

    def build_rest(self) -> None:
        while self.build_next():
            pass

    def panel(self, name: str) -> TechniquePanel:
        if name not in self.panels:
            raise KeyError(f"no technique '{name}'; known: {', '.join(self.panels)}")
        return self.panels[name]

    @property
    def specs(self) -> dict[str, Any]:
        """The `TechniqueSpec`s the panels were built from (what preflight checks against)."""
        return {name: panel.technique for name, panel in self.panels.items()}

    def set_applicability(self, applicability: dict[str, Optional[str]]) -> None:
        self.applicability = dict(applicability)
        self.blockSignals(True)
        try:
            for name, panel in self.panels.items():
                panel.set_applicability(applicability.get(name))
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def recipe(self) -> Any:
        from quantgui.core import Recipe, Step
        steps = [Step(p.name, p.values()) for p in self.panels.values() if p.enabled]
        steps.sort(key=lambda s: self.panels[s.name].technique.stage)  # stable: registry order
        return Recipe(steps)

    def set_recipe(self, recipe: Any) -> list[str]:
        """Show a recipe in the panels; returns why parts of it could not be shown (preflight's
        unknown techniques, inapplicable steps, bad parameter values)."""
        from quantgui.core import preflight
        found = [p for p in preflight(None, recipe, techniques=self.specs,
                                      applicability=self.applicability)
                 if p.kind in ("unknown", "duplicate", "not_applicable", "params")]
        skipped = {p.step for p in found if p.kind != "params"}
        bad = {(p.step, p.param) for p in found if p.kind == "params"}
        problems = [p.text() for p in found]
        self.blockSignals(True)
        try:
            for panel in self.panels.values():
                panel.check.setChecked(False)
                panel.set_expanded(False)
                panel.reset()
            for i, step in enumerate(recipe.steps):
                if i in skipped:
                    continue
                panel = self.panels[step.name]
                for field, value in step.params.items():
                    if (i, field) in bad or field not in panel.editors:
                        continue  # said in `problems`
                    try:
                        panel.set_value(field, value)
                    except (ValueError, TypeError) as exc:
                        problems.append(str(exc))
                panel.check.setChecked(True)
        finally:
            self.blockSignals(False)
        self.changed.emit()
        return problems

    def clear(self) -> None:
        self.set_recipe(type(self.recipe())([]))
