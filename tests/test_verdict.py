"""The verdict never misleads: the label follows the confidence interval (inconclusive when it
cannot decide), quality sits beside the speed in the same words everywhere (CLI, JSON, report).

Runs here are real (`run_recipe`, the CLI) on a model whose forward advances a fake clock the
timer reads: 2 ms per call in FP32, 1 ms in BF16, so the speedups and intervals are exact.
"""

from __future__ import annotations

import json
import math
import re
import textwrap

from hypothesis import given, strategies as st
import pytest
import torch

from quantgui import cli
from quantgui.core.export import render_html, render_markdown
from quantgui.core.measure import latency
from quantgui.core.opening.loading import open_model
from quantgui.core.recipe import Recipe
from quantgui.core.run import RunOptions, format_result, run_recipe
from quantgui.core.results import RunResult
from quantgui.core.verdict_words import (FASTER_ABOVE, MIN_DECISIVE_ROUNDS, NEGLIGIBLE_GAIN,
                                         assess_quality, compose, label_for)

TIMED = textwrap.dedent("""
    import torch
    from quantgui.core.measure import latency


    class Timed(torch.nn.Module):
        '''2 ms per call on the test's fake clock in FP32, 1 ms in BF16.'''

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            if hasattr(latency.clock, "now"):
                latency.clock.now += 0.002 if self.fc.weight.dtype == torch.float32 else 0.001
            return self.fc(x)
""")


class FakeClock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timed(tmp_path, monkeypatch):
    """(weights file, arch spec) of the fake-timed model; the timer reads the fake clock."""
    monkeypatch.setattr(latency, "clock", FakeClock())
    arch = tmp_path / "timed.py"
    arch.write_text(TIMED)
    torch.manual_seed(0)
    weights = tmp_path / "timed.pt"
    torch.save({"fc.weight": torch.randn(3, 4), "fc.bias": torch.randn(3)}, weights)
    return str(weights), f"{arch}:Timed"


def _open(timed):
    weights, arch = timed
    return open_model(weights, arch=arch, input_shape=(8, 4))


# --- the label table ----------------------------------------------------------------------------

@pytest.mark.parametrize("ci,rounds,reliable,steps,label", [
    ((1.10, 1.30), 20, True, True, "faster"),          # the whole interval clears 1.03
    ((1.10, 1.30), 20, False, True, "faster"),         # noisy, yet still clear of it
    ((0.80, 0.95), 20, True, True, "slower"),
    ((0.98, 1.04), 20, True, True, "not faster"),      # rules out any gain above 5%
    ((0.90, 1.02), 20, True, True, "not faster"),      # could be slower, cannot be faster
    ((0.98, 1.04), 20, False, True, "inconclusive"),   # same interval from a noisy timing
    ((1.01, 6.39), 20, True, True, "inconclusive"),    # the issue's "not faster, 3.45x"
    ((1.01, 1.30), 20, True, True, "inconclusive"),
    ((0.70, 1.20), 20, True, True, "inconclusive"),
    ((1.50, 1.70), 5, True, True, "inconclusive"),     # 5 rounds: no 95% claim possible
    ((1.50, 1.70), 6, True, True, "faster"),
    ((0.70, 1.20), 2, False, False, "not faster"),     # no steps: the same model, by design
    ((float("nan"), 1.2), 20, True, True, "inconclusive"),
])
def test_label_from_the_interval(ci, rounds, reliable, steps, label):
    assert label_for(ci, rounds, reliable, has_steps=steps) == label


@given(st.floats(0.01, 20), st.floats(0, 5), st.floats(0, 1), st.integers(0, 300),
       st.booleans())
def test_not_faster_never_pairs_with_a_real_point_gain(lo, width, where, rounds, reliable):
    hi = lo + width
    point = lo + where * width  # the point estimate lies inside its interval
    label = label_for((lo, hi), rounds, reliable)
    if label == "not faster":
        assert point <= NEGLIGIBLE_GAIN
    if label in ("faster", "slower", "not faster"):
        assert rounds >= MIN_DECISIVE_ROUNDS  # a decision needs rounds enough for 95%
    if label == "faster":
        assert lo > FASTER_ABOVE


# --- quality words ------------------------------------------------------------------------------

def test_quality_joins_the_speed_verdict():
    cos = assess_quality(None, None, 0.952, 0.935)
    assert cos.degraded and cos.summary == "outputs diverge (cosine 0.952)"
    assert compose("faster", cos.summary) == "faster, but outputs diverge (cosine 0.952)"
    acc = assess_quality(0.97, 0.949, 0.999)
    assert compose("slower", acc.summary) == "slower, and accuracy dropped 2.1 points"
    assert compose("not faster", acc.summary, upper=True) == \
        "NOT FASTER, and accuracy dropped 2.1 points"
    nan = assess_quality(None, None, float("nan"), nonfinite=12)
    assert nan.summary == "outputs hold 12 NaN/Inf values"  # no cosine computed from NaN
    assert "nan" not in " ".join(nan.reasons).lower().replace("nan/inf", "")
    ok = assess_quality(0.97, 0.965, 0.999)
    assert not ok.degraded and compose("faster", ok.summary) == "faster"


def test_the_issue_encoder_case_is_headlined_with_its_loss(real_result):
    # dynamic INT8 on a sentence encoder: 1.39x, cosine 0.952 (min 0.935), no labels
    r = real_result("digits-mlp", "inference_mode", labels=False)
    r.timing.speedup, r.timing.ci95 = 1.39, (1.30, 1.48)
    r.verdict.label = "faster"
    r.verdict.quality = assess_quality(None, None, 0.952, 0.935)
    assert r.headline() == ("faster, but outputs diverge (cosine 0.952) — speedup 1.39x "
                            "(95% CI 1.30–1.48x)")
    assert RunResult.from_json(r.to_json()).headline() == r.headline()
    assert r.to_json()["verdict"]["headline"] == r.headline()


def _as_saved_before_inconclusive(result, ci, rounds):
    """The JSON an older QuantGUI wrote: no quality in the verdict, no schema, and a wide
    interval called "not faster"."""
    data = result.to_json()
    del data["schema"], data["verdict"]["quality"]
    data["verdict"]["label"] = "not faster"
    data["speedup"]["ci95"], data["speedup"]["rounds"] = ci, rounds
    data["noisy"], data["speedup"]["few_rounds"] = False, None  # a quiet, full timing
    return data


def test_results_saved_before_inconclusive_existed_are_judged_again(real_result):
    base = real_result("digits-mlp", "inference_mode")  # identical outputs: quality ok
    old = RunResult.from_json(_as_saved_before_inconclusive(base, [1.01, 6.39], 12))
    assert old.verdict.label == "inconclusive"
    assert old.summary(upper=True) == "INCONCLUSIVE"
    assert old.verdict.quality.status == "ok"  # judged again from its numbers
    narrow = RunResult.from_json(_as_saved_before_inconclusive(base, [0.99, 1.02], 40))
    assert narrow.verdict.label == "not faster"
    # Read once, the result is typed: writing and reading it again changes nothing.
    assert RunResult.from_json(old.to_json()).to_json() == old.to_json()


# --- real runs ----------------------------------------------------------------------------------

def test_a_short_timing_is_inconclusive_with_a_budget_to_try(timed):
    loaded = _open(timed)
    # 2 + 1 ms per call, one re-warm call each: 6 ms a round; 8 ms of budget gives 2 rounds
    result = run_recipe(loaded, Recipe.of("bf16"), RunOptions(time_budget_s=0.008))
    v = result.verdict
    assert result.timing.rounds == 2 and result.timing.speedup == pytest.approx(2.0)
    assert v.label == "inconclusive" and v.reasons == []  # its 2x is no excuse to explain
    assert v.suggested_budget_s == 1.0  # ceil(10 rounds x 6 ms x 1.2), at least 1 s
    assert v.inconclusive_reason == (
        "too few rounds: only 2 were timed in the 0.008 s time budget, and fewer than 6 "
        "cannot support a 95% claim, whatever they show; measure longer: a 1 s time budget")
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))  # strict JSON round trip
    assert data["verdict"]["label"] == "inconclusive"
    assert data["verdict"]["inconclusive_reason"] == v.inconclusive_reason
    assert data["verdict"]["suggested_budget_s"] == 1.0
    assert data["verdict"]["quality"] == {"status": "ok", "summary": None, "reasons": []}
    assert data["verdict"]["headline"] == "inconclusive — speedup 2.00x (95% CI 2.00–2.00x)"
    assert data["speedup"]["budget_s"] == 0.008
    banner = re.search(r'<div class="verdict (\w+)">(.*?)</div>', render_html(data), re.S)
    assert banner.group(1) == "inconclusive"
    head = "INCONCLUSIVE — speedup 2.00x (95% CI 2.00–2.00x), size ×"
    assert banner.group(2).startswith(head)
    assert banner.group(2).endswith(f"<ul><li>{v.inconclusive_reason}</li></ul>")
    assert f"> - {v.inconclusive_reason}" in render_markdown(data)
    text = format_result(result)
    assert "verdict: INCONCLUSIVE\n  ? too few rounds: only 2 were timed" in text
    assert text.count("(run again with --time-budget 1)") == 1
    # measured longer, the same recipe decides
    longer = run_recipe(loaded, Recipe.of("bf16"), RunOptions(time_budget_s=1.0))
    assert longer.verdict.label == "faster" and longer.verdict.inconclusive_reason is None


def test_a_quality_loss_is_in_the_verdict_json_report_and_cli(timed, tmp_path, capsys):
    loaded = _open(timed)
    result = run_recipe(loaded, Recipe.of(("prune", {"amount": 0.9}), "bf16"),
                        RunOptions(time_budget_s=0.2))
    v = result.verdict
    assert v.label == "faster" and result.timing.speedup == pytest.approx(2.0)
    cos = result.fidelity.cosine
    assert cos < 0.99 and v.quality.degraded
    assert v.summary == f"faster, but outputs diverge (cosine {cos:.3f})"
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert data["verdict"]["quality"]["status"] == "degraded"
    assert data["verdict"]["quality"]["summary"] == f"outputs diverge (cosine {cos:.3f})"
    assert data["verdict"]["headline"].startswith(v.summary + " — speedup 2.00x")
    page = render_html(data)
    banner = re.search(r'<div class="verdict (\w+)">(.*?)</div>', page, re.S)
    assert banner.group(1) == "degraded"
    assert banner.group(2).startswith(f"FASTER, but outputs diverge (cosine {cos:.3f}) — "
                                      f"speedup 2.00x (95% CI 2.00–2.00x)")
    assert "outputs diverge from the original: mean cosine" in banner.group(2)
    assert page.count("outputs diverge from the original") == 1  # not again under Warnings
    md = render_markdown(data)
    assert f"**FASTER, but outputs diverge (cosine {cos:.3f}) — speedup 2.00x" in md
    # the CLI's verdict line says the same
    weights, arch = timed
    code = cli.main(["run", weights, "--arch", arch, "--input-shape", "8,4", "--step",
                     "prune:amount=0.9", "--step", "bf16", "--time-budget", "0.2"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"\nverdict: FASTER, but outputs diverge (cosine {cos:.3f})\n" in out
    assert "  ! outputs diverge from the original: mean cosine" in out


def test_cli_prints_an_inconclusive_verdict_with_the_budget_to_use(timed, capsys):
    weights, arch = timed
    code = cli.main(["run", weights, "--arch", arch, "--input-shape", "8,4", "--step", "bf16",
                     "--time-budget", "0.008"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    i = lines.index("verdict: INCONCLUSIVE")
    assert lines[i - 2] == "speedup: 2.00x (95% CI 2.00-2.00)"
    assert lines[i + 1] == ("  ? too few rounds: only 2 were timed in the 0.008 s time budget, "
                            "and fewer than 6 cannot support a 95% claim, whatever they show; "
                            "measure longer: a 1 s time budget (run again with --time-budget 1)")


def test_headline_of_a_run_without_labels_or_loss_is_the_label_alone(timed):
    loaded = _open(timed)
    result = run_recipe(loaded, Recipe.of("inference_mode"), RunOptions(time_budget_s=0.2))
    assert result.verdict.label == "not faster"  # exactly 1.00x with a zero-width interval
    assert result.verdict.summary == "not faster"
    assert math.isclose(result.timing.speedup, 1.0)
    assert result.headline() == "not faster — speedup 1.00x (95% CI 1.00–1.00x)"
    assert RunResult.from_json(result.to_json()).headline() == result.headline()


def test_an_undecided_no_gain_gives_specific_causes_only(timed, monkeypatch):
    """Inconclusive at about 1x: the technique's own reasons, never the catch-all 'no faster
    than FP32', which would claim what the measurement could not show."""
    from quantgui.core.techniques import get
    loaded = _open(timed)
    result = run_recipe(loaded, Recipe.of("inference_mode"), RunOptions(time_budget_s=0.008))
    v = result.verdict
    assert v.label == "inconclusive" and result.timing.speedup == pytest.approx(1.0)
    assert any("call mode" in r for r in v.reasons)  # the technique's own reason
    # a technique with nothing to say: the verdict says nothing rather than "no faster"
    monkeypatch.setattr(type(get("inference_mode")), "why_not_faster", lambda self, ctx: [])
    result = run_recipe(loaded, Recipe.of("inference_mode"), RunOptions(time_budget_s=0.008))
    assert result.verdict.label == "inconclusive" and result.verdict.reasons == []
    longer = run_recipe(loaded, Recipe.of("inference_mode"), RunOptions(time_budget_s=1.0))
    assert longer.verdict.label == "not faster"
    assert any("no specific cause" in r for r in longer.verdict.reasons)  # decided: it may say
