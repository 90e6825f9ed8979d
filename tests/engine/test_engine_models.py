"""The engine process with the user's own files: questions the GUI must ask come back as typed
error kinds with the data to ask them; user code that prints cannot corrupt the stream; a forward
that aborts takes only the engine process down (the client sees it die and restarts it)."""

import signal

import pytest
import torch
from torch import nn

from quantgui.core import ModelInfo, RunResult
from quantgui.engine import protocol as p
from tests.hostile import corpus

from .client import Engine, EngineDied
from .conftest import FAST

ARCH = """
import os, sys, warnings
import torch
from torch import nn
CALLS = [0]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        CALLS[0] += 1
{body}
        return self.fc(x)
"""

BODIES = {
    "plain": "",
    "prints": ("        print('forward says hello', CALLS[0])\n"
               "        os.write(1, b'raw bytes on fd 1\\n')\n"
               "        sys.stdout.write('no newline yet ')\n"
               "        warnings.warn('forward warns')\n"),
    "aborts": "        if CALLS[0] >= 3:\n            os.abort()\n",
    "exits": "        if CALLS[0] >= 3:\n            os._exit(3)\n",
}


def write_model(folder, behaviour):
    """(weights file, arch spec) of a 4 -> 3 model whose forward does `behaviour`."""
    arch = folder / f"{behaviour}.py"
    arch.write_text(ARCH.format(body=BODIES[behaviour]))
    weights = folder / "w.pt"
    torch.save({f"fc.{k}": v for k, v in nn.Linear(4, 3).state_dict().items()}, weights)
    return weights, f"{arch}:Net"


def _error(answer):
    assert answer["type"] == p.ERROR, answer
    return p.ErrorInfo.from_json(answer["error"])


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    assert eng.close() == 0


def test_a_file_that_would_run_code_asks_for_trust(engine, tmp_path):
    canary = tmp_path / "canary"
    case = corpus.pt_evil_pickle(tmp_path, canary)
    answer, _ = engine.call("open", source=str(case.named), input_shape=[2, 4])
    err = _error(answer)
    assert err.kind == p.TRUST and err.data == {"source": str(case.named)}
    assert str(case.named) in err.message and not canary.exists()


def test_a_model_without_example_input_asks_for_one_with_what_the_dialog_needs(engine, tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.script(corpus.Tiny()).save(str(path))
    answer, _ = engine.call("open", source=str(path))
    err = _error(answer)
    assert err.kind == p.EXAMPLE_INPUT and "no example input" in err.message
    info = ModelInfo.from_json(err.data["info"])
    assert info.format == "torchscript" and info.layer_counts == {"Linear": 1}
    assert err.data["kinds"] == ["file", "shape", "data"]
    # inspection needs none; running such a model is refused with the reason
    inspected = engine.value("inspect", source=str(path))
    assert inspected["info"]["example_input"] is None
    answer, _ = engine.call("run", model_id=inspected["model_id"], recipe={"steps": []})
    assert _error(answer).kind == p.USER
    opened = engine.value("open", source=str(path), input_shape=[2, 4])
    assert opened["info"]["example_input"] == "(2, 4) float32"


def test_weights_alone_ask_for_the_architecture_and_classes_lists_a_file(engine, tmp_path):
    weights, arch = write_model(tmp_path, "plain")
    answer, _ = engine.call("open", source=str(weights), input_shape=[2, 4])
    err = _error(answer)
    assert err.kind == p.ARCHITECTURE and err.data == {"source": str(weights)}
    assert engine.value("classes", path=arch.split(":")[0]) == {"classes": ["Net"]}


def test_user_code_that_prints_does_not_corrupt_the_stream(engine, tmp_path):
    weights, arch = write_model(tmp_path, "prints")
    opened = engine.value("open", source=str(weights), arch=arch, input_shape=[2, 4])
    answer, events = engine.call("run", model_id=opened["model_id"], recipe={"steps": []},
                                 options=FAST)
    # every line parsed as a message (client.read decodes each): nothing else reached stdout
    result = RunResult.from_json(answer["value"]["result"])
    assert result.variant_id
    printed = [m["message"] for m in events if m.get("event") == p.LOG and m["level"] == "output"]
    assert any(m.endswith("forward says hello 3") for m in printed)
    assert printed[-1] == "no newline yet "  # an unfinished line is sent as the request ends
    assert all("raw bytes" not in m["message"] for m in engine.seen if m.get("event") == p.LOG)
    warned = [m["message"] for m in events if m.get("event") == p.LOG and m["level"] == "warning"]
    assert warned == ["UserWarning: forward warns"]  # once per request, however many calls


def test_a_forward_that_aborts_kills_only_the_engine_process(tmp_path):
    weights, arch = write_model(tmp_path, "aborts")
    eng = Engine()
    try:
        opened = eng.value("open", source=str(weights), arch=arch, input_shape=[2, 4])
        eng.request("run", model_id=opened["model_id"], recipe={"steps": []}, options=FAST)
        with pytest.raises(EngineDied):
            while True:
                eng.read()
        assert eng.proc.wait(60) == -signal.SIGABRT
    finally:
        eng.close()


def test_a_forward_that_calls_os_exit_ends_the_engine_with_its_status(tmp_path):
    weights, arch = write_model(tmp_path, "exits")
    eng = Engine()
    try:
        opened = eng.value("open", source=str(weights), arch=arch, input_shape=[2, 4])
        eng.request("run", model_id=opened["model_id"], recipe={"steps": []}, options=FAST)
        with pytest.raises(EngineDied):
            while True:
                eng.read()
        assert eng.proc.wait(60) == 3
    finally:
        eng.close()
