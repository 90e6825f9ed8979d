"""First launch: the default example opens from its shipped weights (no training), and when an
example must be trained after all, the status bar shows a real, advancing progress bar."""

from quantgui.core import examples

LOAD_TIMEOUT_MS = 120_000


def test_first_window_opens_the_example_without_training(make_window, qtbot, monkeypatch,
                                                          tmp_path):
    monkeypatch.setenv("QUANTGUI_CACHE", str(tmp_path / "empty-cache"))  # the engine's too
    w = make_window(engine_patches={"refuse_training": True})
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS) as blocker:
        w.open_source(None)  # what the app does at launch
    assert blocker.args[0].info.source == f"example:{examples.DEFAULT_EXAMPLE}"
    assert w.summary.fields["source"].text() == f"DigitsCNN — example:{examples.DEFAULT_EXAMPLE}"
    assert w.phase.text() == "Ready: DigitsCNN (example)."
    assert not (tmp_path / "empty-cache").exists()
    qtbot.waitUntil(lambda: not w.engine.busy)


def test_training_when_needed_shows_a_determinate_progress_bar(make_window, qtbot, monkeypatch,
                                                              tmp_path):
    monkeypatch.setenv("QUANTGUI_CACHE", str(tmp_path / "cache"))  # the engine's too
    w = make_window(engine_patches={"shipped_folder": str(tmp_path / "no-shipped-weights")})
    values, texts = [], []
    w.progress.valueChanged.connect(lambda v: (values.append((w.progress.maximum(), v)),
                                               texts.append(w.phase.text())))
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.open_source("example:digits-cnn")
    training = [(m, v) for (m, v), t in zip(values, texts) if t.startswith("training digits-cnn")]
    assert len(training) >= 3, texts  # drawn at ~30 Hz while it trains for seconds
    assert {m for m, _ in training} == {1000}  # determinate, not the busy indicator
    shown = [v for _, v in training]
    assert shown == sorted(shown) and shown[-1] > shown[0]
    assert any("(no trained weights shipped for it), epoch" in t for t in texts)
    assert (tmp_path / "cache" / f"digits-cnn-v{examples.TRAINING_VERSION}.pt").is_file()
    qtbot.waitUntil(lambda: not w.engine.busy)
    assert not w.progress.isVisible()
