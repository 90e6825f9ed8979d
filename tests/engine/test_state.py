"""What the engine process holds (in-process: no subprocess needed): variants by id, the newest
kept; models kept while a kept variant needs them; the memory estimate and the peak RSS."""

import pytest

from quantgui.core import RunResult, UserError
from quantgui.engine.state import (MemoryRefused, PeakMemory, Store, check_memory,
                                   estimate_run_bytes, module_bytes)
from tests import real_runs


@pytest.fixture(scope="module")
def loaded():
    return real_runs.loaded("digits-mlp")


def test_only_the_newest_variants_are_kept_and_evictions_are_named(loaded, real_result):
    store = Store(keep=2)
    model_id = store.add_model(loaded)
    results = [real_result("digits-mlp") for _ in range(3)]
    ids = []
    for r in results:
        variant_id, evicted = store.add_variant(model_id, r, "none")
        assert r.variant_id == variant_id  # the result names its variant from now on
        ids.append((variant_id, evicted))
    assert [e for _, e in ids] == [[], [], [ids[0][0]]]
    assert [v["variant_id"] for v in store.variants()] == [ids[2][0], ids[1][0]]
    assert store.variant(ids[2][0]).result is results[2]
    with pytest.raises(UserError, match="no longer in the engine"):
        store.variant(ids[0][0])


def test_a_model_stays_while_a_kept_variant_came_from_it(loaded, real_result):
    store = Store(keep=1)
    first = store.add_model(loaded)
    store.add_variant(first, real_result("digits-mlp"), "a")
    second = store.add_model(loaded)
    assert store.model(first) is loaded  # its variant still needs it
    store.add_variant(second, real_result("digits-mlp"), "b")  # evicts the first's variant
    with pytest.raises(UserError, match="not open in the engine"):
        store.model(first)
    assert store.model(second) is loaded
    assert store.forget(model_id=second) and not store.forget(model_id=second)


def test_the_memory_estimate_counts_weights_copies_and_the_input(loaded):
    weights = module_bytes(loaded.module)
    assert weights == sum(p.numel() * 4 for p in loaded.module.parameters())
    small = estimate_run_bytes(loaded, None)
    assert small > 3 * weights
    assert estimate_run_bytes(loaded, 10**6) > small
    with pytest.raises(MemoryRefused) as err:
        check_memory(estimate_run_bytes(loaded, 10**12), "this run")
    assert err.value.need_bytes > err.value.available_bytes
    assert "not started" in str(err.value)
    check_memory(small, "this run")  # a normal run fits


def test_peak_memory_sees_an_allocation_made_inside_the_block():
    import torch

    from quantgui.engine.state import rss_bytes
    start = rss_bytes()
    with PeakMemory() as peak:
        block = torch.ones(64 * 2**20, dtype=torch.uint8)  # 64 MiB, touched
        del block  # given back: the resident size falls again, the peak stays
    assert peak.peak >= start + 60 * 2**20


def test_peak_rss_travels_in_the_result_json(real_result):
    r = real_result("digits-mlp")
    r.peak_rss_bytes = 123_456_789
    again = RunResult.from_json(r.to_json())
    assert again.peak_rss_bytes == 123_456_789 and again.to_json() == r.to_json()
    data = r.to_json()
    del data["peak_rss_bytes"]  # written before it existed: unknown
    assert RunResult.from_json(data).peak_rss_bytes is None
