"""Per-layer sensitivity (issue 12): a deliberately sensitive layer ranks first and falling it
back restores fidelity; partial results on cancel; the cache; the report's exact JSON round
trip; the CLI's table, JSON and one-line errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

from quantgui.cli import main
from quantgui.core.data.dataset import Dataset
from quantgui.core.errors import UserError
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe, Step
from quantgui.core.results.sensitivity import SensitivityReport, fallback_skip, rank
from quantgui.core.run import optimize
from quantgui.core.sensitivity import cache_path, sensitivity, units_of
from tests import sensitive_model as sm

INT8 = {"api": "torch.ao", "engine": "x86"}  # fixed: no engine timing in tests
FIDELITY_THRESHOLD = 0.999


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTGUI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def report():
    return sensitivity(sm.loaded(), "dynamic_int8", INT8, use_cache=False)


def cosine_with(skip: list[str]) -> float:
    loaded = sm.loaded()
    variant, _ = optimize(loaded, Recipe([Step("dynamic_int8", dict(INT8, skip=skip))]))
    with torch.no_grad():
        ref = loaded.module(*loaded.example.args)
    out = variant(loaded.example)
    return float(torch.nn.functional.cosine_similarity(out, ref, dim=1).mean())


def test_the_sensitive_layer_ranks_first_and_falling_it_back_restores_fidelity(report):
    assert [u.name for u in report.units] == list(sm.LAYERS)  # model order
    assert rank(report)[0] == "sensitive"
    sensitive = report.unit("sensitive")
    assert sensitive.only.fidelity.cosine < 0.98          # it alone wrecks the output
    assert sensitive.all_but.fidelity.cosine > FIDELITY_THRESHOLD  # the rest costs little
    assert report.full.fidelity.cosine < 0.98
    for other in ("fc1", "fc2", "head"):
        assert report.unit(other).only.fidelity.cosine > FIDELITY_THRESHOLD
    assert fallback_skip(report, 1) == ["sensitive"]
    assert fallback_skip(report, 0) == []
    assert cosine_with(fallback_skip(report, 1)) > FIDELITY_THRESHOLD
    assert cosine_with([]) < 0.98
    assert report.metric == "fidelity" and report.complete and not report.cached
    assert {k: report.params[k] for k in ("engine", "api", "per_channel", "embeddings")} == \
        {"engine": "x86", "api": "torch.ao", "per_channel": True, "embeddings": False}
    assert report.data == "the example input (32 samples)"
    # each unit's share of the parameters and of the time per call, before and after
    total = sum(p.numel() for p in sm.build().parameters())
    assert sensitive.params == 33 * 32 + 32 and sensitive.params_share == sensitive.params / total
    assert all(0 < u.time_share_before < 1 and 0 < u.time_share_after < 1 for u in report.units)


def test_report_json_round_trips_exactly(report):
    data = report.to_json()
    assert data["schema"] == 1 and data["kind"] == "sensitivity"
    text = json.dumps(data, allow_nan=False)
    assert SensitivityReport.from_json(json.loads(text)).to_json() == data
    with pytest.raises(UserError, match="newer QuantGUI"):
        SensitivityReport.from_json(dict(data, schema=2))


def test_labels_give_the_accuracy_change_with_its_paired_interval():
    loaded = sm.loaded()
    x = torch.randn(96, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        labels = loaded.module(x).argmax(-1)
    loaded.test = Dataset(x, labels, "labeled digits")
    result = sensitivity(loaded, "dynamic_int8", INT8, samples=64, use_cache=False)
    assert result.metric == "accuracy" and result.data == "labeled digits (64 samples)"
    change = result.unit("sensitive").only.accuracy
    assert change.samples == 64 and change.ci95[0] <= change.change <= change.ci95[1]
    assert change.change < 0  # the wrecked layer costs accuracy
    assert rank(result)[0] == "sensitive"


def test_cancel_mid_way_returns_the_units_measured_so_far(cache):
    token = CancelToken()
    seen = []

    def on_unit(unit):
        seen.append(unit.name)
        token.cancel()  # the user presses Cancel as the first unit comes in
    partial = sensitivity(sm.loaded(), "dynamic_int8", INT8, task=Task(None, token),
                          on_unit=on_unit)
    assert partial.cancelled and not partial.complete
    assert [u.name for u in partial.units] == seen == ["fc1"] and partial.total_units == 4
    assert not (cache / "sensitivity").exists()  # an incomplete report is never cached


def test_the_cache_is_hit_the_second_time_and_missed_for_other_weights(cache):
    first = sensitivity(sm.loaded(), "weight_only_int8")
    files = list((cache / "sensitivity").glob("*.json"))
    assert not first.cached and len(files) == 1
    second = sensitivity(sm.loaded(), "weight_only_int8")
    assert second.cached and any(n.startswith("cache: read from") for n in second.notes)
    assert [u.to_json() for u in second.units] == [u.to_json() for u in first.units]
    changed = sm.loaded()
    with torch.no_grad():
        changed.module.head.bias.add_(1.0)
    assert not sensitivity(changed, "weight_only_int8").cached
    assert not sensitivity(sm.loaded(), "weight_only_int8", {"group_size": 32}).cached
    assert len(list((cache / "sensitivity").glob("*.json"))) == 3
    files[0].write_text("{not json")  # a damaged cache file is measured again, not an error
    assert not sensitivity(sm.loaded(), "weight_only_int8").cached


def test_transformer_blocks_are_one_unit_unless_expanded():
    layers = ["embeddings.word", "encoder.layer.0.attention.query", "encoder.layer.0.output",
              "encoder.layer.1.attention.query", "model.layers.12.mlp", "h.3.attn", "pooler",
              "classifier"]
    assert units_of(layers) == {
        "embeddings.word": ["embeddings.word"],
        "encoder.layer.0": ["encoder.layer.0.attention.query", "encoder.layer.0.output"],
        "encoder.layer.1": ["encoder.layer.1.attention.query"],
        "model.layers.12": ["model.layers.12.mlp"], "h.3": ["h.3.attn"],
        "pooler": ["pooler"], "classifier": ["classifier"]}
    assert list(units_of(layers, expand=True)) == layers


def test_cli_prints_the_table_and_json_and_one_line_errors(capsys):
    assert main(["sensitivity", "example:digits-mlp", "--format", "weight_only_int8",
                 "--samples", "32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sensitivity of example:digits-mlp to weight_only_int8 (group_size=0)")
    assert "quality on digits-mlp test split (32 samples)" in out
    assert "rank unit" in out and "only this converted" in out and "  1. net." in out
    assert main(["sensitivity", "example:digits-mlp", "--format", "weight_only_int8",
                 "--samples", "32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cached"] is True and len(data["units"]) == 4
    for argv, line in [
        (["--params", "skip=net.1"], "quantgui-cli: error: example:digits-mlp: --params: "
         "sensitivity chooses the skip list itself (each unit alone, each unit left out); "
         "leave 'skip' and 'bf16' out"),
        (["--params", "group=3", "--format", "weight_only_int8"],
         "quantgui-cli: error: example:digits-mlp: --params (weight_only_int8): unknown "
         "parameter(s) group; known: group_size, skip"),
        (["--samples", "0"], "quantgui-cli: error: --samples: must be at least 1, got 0")]:
        assert main(["sensitivity", "example:digits-mlp", *argv]) == 2
        err = capsys.readouterr().err
        assert err.strip() == line and err.count("\n") == 1
