import os

# Before any QApplication exists: Qt must run headless in CI and in tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The examples' weights ship with the package; a test that makes one train caches it here,
# outside the user's own cache.
os.environ.setdefault("QUANTGUI_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "quantgui-tests"))

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests see the same examples on every run (CI failures reproduce) and write no
# example database into the checkout.
settings.register_profile("quantgui", derandomize=True, database=None, deadline=None)
settings.load_profile("quantgui")

# Two cores: keep every test on the same thread count the measurements assume.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def digits():
    """{name: (model, train, test)} for all built-in examples (their shipped weights)."""
    from quantgui.core import examples
    return {name: examples.build(name) for name in examples.EXAMPLES}


@pytest.fixture(scope="session")
def real_result():
    """`real_result(example, *steps, labels=True)` -> a fresh RunResult of a real run, made
    once per session (tests/real_runs.py)."""
    from tests.real_runs import real_result
    return real_result
