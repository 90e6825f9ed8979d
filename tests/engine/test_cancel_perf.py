"""Cancel latency in every phase, on a real engine process (`perf`: wall-clock bounds, run
apart with `python -m pytest -q -m perf tests/engine`).

The model is a wide MLP on a large data file so that each phase (calibration, QAT training,
timing, evaluation, recommend, export) lasts many seconds: the cancel is sent as soon as the
phase's first progress arrives and must be answered "cancelled" within 1 s. torch.compile's
first call cannot be interrupted (a C++/Inductor call): there the client's rule applies — no
answer within 1 s of the cancel, kill the process — and the bound is on that whole path."""

import time

import numpy as np
import pytest
import torch
from torch import nn

from quantgui.engine import protocol as p

from .client import Engine, EngineDied

pytestmark = pytest.mark.perf

#: The UI must show "cancelled" within this many seconds of the click.
BOUND_S = 1.0
LONG = {"time_budget_s": 60.0, "max_rounds": 100_000, "warmup": 1, "min_rounds": 4}

ARCH = """
from torch import nn


def Wide():
    layers = [nn.Linear(4, 1024), nn.ReLU()]
    for _ in range(4):
        layers += [nn.Linear(1024, 1024), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(1024, 3))
"""


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """(engine, model_id, variant_id) of the wide MLP opened with 64k labeled samples."""
    d = tmp_path_factory.mktemp("wide")
    (d / "wide.py").write_text(ARCH)
    namespace: dict = {}
    exec(ARCH, namespace)
    torch.save(namespace["Wide"]().state_dict(), d / "wide.pt")
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", inputs=rng.standard_normal((64_000, 4)).astype(np.float32),
             labels=rng.integers(0, 3, 64_000))
    eng = Engine()
    opened = eng.value("open", source=str(d / "wide.pt"), arch=f"{d / 'wide.py'}:Wide",
                       input_shape=[64, 4], data=str(d / "data.npz"))
    run = eng.value("run", model_id=opened["model_id"], recipe={"steps": []},
                    options={"time_budget_s": 0.2, "min_rounds": 4, "warmup": 1, "eval_limit": 1})
    yield eng, opened["model_id"], run["result"]["variant_id"], d
    eng.close()


def _cancel_when(eng, msg_id, phase):
    """Cancel at the first progress of `phase`; seconds from the cancel to the answer."""
    eng.until(msg_id, lambda m: any(i["phase"] == phase for i in m.get("progress", ())),
              timeout=300)
    start = time.perf_counter()
    eng.cancel(msg_id)
    answer, _ = eng.until(msg_id, timeout=60)
    return time.perf_counter() - start, answer


@pytest.mark.parametrize("phase, steps, options", [
    ("calibrate", [{"name": "static_int8", "params": {"api": "fx", "batches": 1000}}], {}),
    ("train", [{"name": "qat_int8", "params": {"epochs": 100, "batch_size": 32}}], {}),
    ("time", [], LONG),
    ("evaluate", [], {"time_budget_s": 0.2, "min_rounds": 4, "warmup": 1}),
])
def test_cancel_answers_within_a_second_during_a_run(wide, phase, steps, options):
    eng, model_id, _, _ = wide
    msg_id = eng.request("run", model_id=model_id, recipe={"steps": steps}, options=options)
    seconds, answer = _cancel_when(eng, msg_id, phase)
    assert answer["type"] == p.ERROR and answer["error"]["kind"] == p.CANCELLED, answer
    print(f"cancel latency {phase}: {seconds:.3f} s")
    assert seconds <= BOUND_S, f"{phase}: cancelled after {seconds:.2f} s"


def test_cancel_answers_within_a_second_during_recommend(wide):
    eng, model_id, _, _ = wide
    msg_id = eng.request("recommend", model_id=model_id, options=LONG, max_candidates=3)
    seconds, answer = _cancel_when(eng, msg_id, "time")
    assert answer["error"]["kind"] == p.CANCELLED and "recommendation" in answer["error"]["data"]
    print(f"cancel latency recommend: {seconds:.3f} s")
    assert seconds <= BOUND_S, f"recommend: cancelled after {seconds:.2f} s"


def test_cancel_answers_within_a_second_during_export(wide):
    eng, _, variant_id, d = wide
    msg_id = eng.request("export", what="all", variant_id=variant_id, folder=str(d / "out"))
    seconds, answer = _cancel_when(eng, msg_id, "export")
    assert answer["error"]["kind"] == p.CANCELLED, answer
    print(f"cancel latency export: {seconds:.3f} s")
    assert seconds <= BOUND_S, f"export: cancelled after {seconds:.2f} s"
    assert not (d / "out").exists() or not any((d / "out").iterdir())


def test_compile_cancel_or_kill_ends_within_a_second(wide):
    """Inside torch.compile's first call the cancel is not seen: the client kills the engine
    after 1 s (what this test does); the kill itself must be immediate."""
    eng, model_id, _, _ = wide
    msg_id = eng.request("run", model_id=model_id, recipe={"steps": [{"name": "compile",
                                                                       "params": {}}]},
                         options={"time_budget_s": 0.2, "min_rounds": 4, "warmup": 1})
    eng.until(msg_id, lambda m: any(i["phase"] == "compile" for i in m.get("progress", ())),
              timeout=300)
    start = time.perf_counter()
    eng.cancel(msg_id)
    try:
        answer, _ = eng.until(msg_id, timeout=BOUND_S)
        assert answer["error"]["kind"] == p.CANCELLED, answer
        print("compile: cancelled cooperatively")
    except TimeoutError:
        print("compile: no answer within 1 s, killed")
        eng.proc.kill()
        eng.proc.wait(5)
        with pytest.raises(EngineDied):
            eng.read(timeout=5)
    print(f"cancel latency compile: {time.perf_counter() - start:.3f} s")
    assert time.perf_counter() - start <= BOUND_S + 0.2
