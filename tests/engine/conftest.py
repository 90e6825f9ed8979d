import pytest

from .client import Engine

#: Short measurements: these tests check behaviour, not numbers.
FAST = {"time_budget_s": 0.2, "min_rounds": 4, "max_rounds": 20, "warmup": 1, "eval_limit": 2}
CNN = "example:digits-cnn"


@pytest.fixture(scope="module")
def engine():
    """One engine process for a test module, with the default example opened (`engine.model`)
    and one dynamic_int8 run made (`engine.run_answer`, `engine.run_events`)."""
    eng = Engine()
    eng.opened = eng.value("open", source=CNN)
    eng.model = eng.opened["model_id"]
    eng.run_answer, eng.run_events = eng.call(
        "run", model_id=eng.model, recipe={"steps": [{"name": "dynamic_int8", "params": {}}]},
        options=FAST)
    yield eng
    assert eng.close() == 0
