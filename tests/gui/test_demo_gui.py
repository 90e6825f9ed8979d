"""The demo driver runs what quantgui.core.examples.demo chose for this CPU, in that order, and the
history labels the run expected not to be faster as such."""

import pytest

from quantgui.core.examples.demo import NOT_FASTER, demo_runs
from quantgui.gui.app import Driver

TIMEOUT_MS = 300_000


@pytest.mark.slow
def test_demo_runs_the_cpu_aware_choice_with_one_labelled_loss(make_window, qtbot):
    w = make_window()
    driver = Driver(w, demo=True, screenshot=None, recipe=None)
    with qtbot.waitSignal(w.modelLoaded, timeout=TIMEOUT_MS):
        w.open_source(None)
    from quantgui.core import DEFAULT_EXAMPLE, open_model
    expected = demo_runs(open_model(f"example:{DEFAULT_EXAMPLE}"))  # here, with torch
    qtbot.waitUntil(lambda: len(w.history) == len(expected) and not w.engine.busy,
                    timeout=TIMEOUT_MS)
    assert driver.exit_code == 0 and not driver.queue
    labels = [text for text, _ in w.history]
    assert labels == [d.recipe.describe() + (f" ({d.note})" if d.note else "") for d in expected]
    assert len(expected) == 3 and [d.note for d in expected] == [NOT_FASTER, "", ""]
    assert labels[0].endswith("(expected: not faster on this CPU)")
    for (_, result), run in zip(w.history, expected):
        assert [s.name for s in result.recipe.steps] == [s.name for s in run.recipe.steps]
    table = w.history_view.table
    shown = {table.item(row, col).text() for row in range(table.rowCount())
             for col in range(table.columnCount()) if table.item(row, col)}
    assert labels[0] in shown  # the history row carries the label
