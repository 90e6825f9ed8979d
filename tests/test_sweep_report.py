"""The sweep in the HTML + Markdown report: `quantgui-cli sweep --report DIR` on a real small
sweep, its table values and crossover text, the plots inline, strings from files escaped, and
a folder of the user's own files refused in one line."""

import html
import json
import re

import pytest

from quantgui import cli
from quantgui.core.export.sweep_report import point_cells, render_sweep_html, \
    render_sweep_markdown
from quantgui.core.results.profile import LayerProfile
from quantgui.core.results.sweep import SweepResult

MLP = "example:digits-mlp"


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """One real sweep (two batches) with its profile, written as a report."""
    import contextlib
    import io
    folder = tmp_path_factory.mktemp("sweep") / "report"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["sweep", MLP, "--recipe", "dynamic_int8", "--batch", "1,8", "--threads", "1", "--time-budget", "0.05",
                         "--profile", "--report", str(folder)])
    assert code == 0, err.getvalue()
    return folder, out.getvalue()


def test_cli_report_holds_the_table_crossovers_and_recommendation(reported):
    folder, out = reported
    assert f"wrote {folder / 'report.html'}" in out and f"wrote {folder / 'sweep.json'}" in out
    data = json.loads((folder / "sweep.json").read_text())
    sweep = SweepResult.from_json(data)
    assert len(sweep.points) == 2 and all(p.ok for p in sweep.points)
    page = (folder / "report.html").read_text()
    md = (folder / "report.md").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    for p in sweep.points:  # every table value of every point, as printed in both files
        cells = point_cells(p)
        assert f"{p.before.median_ms:.3f}" in cells and f"{p.speedup:.2f}x" in cells
        row = re.escape("<tr><td>") + r"</td><td[^>]*>".join(
            re.escape(html.escape(c, quote=False)) for c in cells) + re.escape("</td></tr>")
        assert re.search(row, page), cells
        assert "| " + " | ".join(cells) + " |" in md
    for c in sweep.crossovers:  # "dynamic_int8 pays from batch 8 at 1 thread(s)" and the like
        assert c.text in text and f"- {c.text}" in md
    t = sweep.types[0]
    assert f"Recommended: {t.recommended or 'the original'}" in text and t.reason in text
    assert page.count("<svg") == 2 and "batch size (log scale)" in page  # latency, throughput
    profile = LayerProfile.from_json(data["profile"])
    assert "Per-layer profile: dynamic_int8, batch 8" in text
    linears = [x for x in profile.layers if x.kind_before == "Linear"]
    assert linears and all(x.after_ms > 0 for x in linears)  # INT8 Linears timed, not lost
    assert f"{profile.total_before_ms:.3f}" in text
    assert "nan" not in text.lower().replace("nanoseconds", "")
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_strings_from_files_are_escaped_in_the_report(reported):
    folder, _ = reported
    data = json.loads((folder / "sweep.json").read_text())
    evil = "<script>alert(1)</script>\x1b[31m|x"
    data["source"] = evil
    for p in data["points"]:
        p["recipe"] = evil
    data["types"][0]["machine"] = evil
    for p in data["points"]:
        p["machine"] = evil
    sweep = SweepResult.from_json(data)
    page, md = render_sweep_html(sweep), render_sweep_markdown(sweep)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "\x1b" not in page and "\\x1b" in page
    assert "\x1b" not in md and "\\|x" in md  # a '|' cannot break the Markdown table


def test_report_into_a_folder_of_the_users_files_is_one_line_before_any_work(tmp_path,
                                                                             capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    code = cli.main(["sweep", MLP, "--recipe", "inference_mode", "--batch", "1", "--threads",
                     "1", "--time-budget", "0.02", "--report", str(mine)])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("quantgui-cli: error: "), err
    assert f"--report {mine}" in lines[0] or str(mine) in lines[0]
    assert "[1/1]" not in err and out == ""  # refused before measuring anything
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
