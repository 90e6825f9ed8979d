"""A run as a report: one self-contained HTML file (report.html) and the same numbers as
Markdown (report.md), plus the recipe as the engine's JSON with environment and results.

The engine never imports Qt, so its charts are small inline SVGs drawn here; the GUI may pass
its own plots as PNG bytes, which are embedded as base64 `data:` URIs. Nothing in the HTML
refers to another file or the network.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..progress import Task, quiet_task
from ..results import RunResult, json_safe
from ..units import human_bytes
from ..verdict_words import FASTER, INCONCLUSIVE, SLOWER
from .atomic import PathLike, ensure_writable_dir, staged


def as_result(result: Any) -> RunResult:
    """A `RunResult`; JSON (a result read from a file) is read with `RunResult.from_json`."""
    return result if isinstance(result, RunResult) else RunResult.from_json(result)


def _fin(x: Optional[float]) -> Optional[float]:
    """A finite number, or None: what a report may print as a number."""
    return x if x is not None and math.isfinite(x) else None


def _ms(x: Optional[float]) -> str:
    x = _fin(x)
    return "—" if x is None else (f"{x:.3g} ms" if x < 100 else f"{x:.0f} ms")


def _pct(x: Optional[float]) -> str:
    return "—" if _fin(x) is None else f"{100 * x:.2f}%"


def _ratio(a: Optional[float], b: Optional[float]) -> str:
    a, b = _fin(a), _fin(b)
    return f"{a / b:.3f}x" if a is not None and b else "—"


def rows(r: RunResult) -> list[tuple[str, str, str, str]]:
    """(quantity, before, after, after/before) for the before/after table."""
    b, a = r.before, r.after
    lb, la = b.latency, a.latency
    out = [("size as saved", human_bytes(b.size_bytes), human_bytes(a.size_bytes),
            _ratio(a.size_bytes, b.size_bytes)),
           ("weights in memory", human_bytes(b.memory_bytes), human_bytes(a.memory_bytes),
            _ratio(a.memory_bytes, b.memory_bytes)),
           ("latency (median)", _ms(lb.median_ms), _ms(la.median_ms),
            _ratio(la.median_ms, lb.median_ms)),
           ("latency p10–p90", f"{_ms(lb.p10_ms)} – {_ms(lb.p90_ms)}",
            f"{_ms(la.p10_ms)} – {_ms(la.p90_ms)}", "")]
    if la.first_call_ms is not None or lb.first_call_ms is not None:
        out.append(("first call", _ms(lb.first_call_ms), _ms(la.first_call_ms), ""))
    if b.accuracy is not None or a.accuracy is not None:
        diff = (f"{100 * (a.accuracy - b.accuracy):+.2f} pts"
                if a.accuracy is not None and b.accuracy is not None else "")
        out.append(("accuracy", _pct(b.accuracy), _pct(a.accuracy), diff))
    return out


def headline(r: RunResult) -> str:
    """The banner: the verdict with its quality, the speed it rests on, the size."""
    text = r.headline(upper=True)
    if _fin(r.size_ratio) is not None:
        text += f", size ×{r.size_ratio:.3f}"
    return text


def banner_notes(r: RunResult) -> list[str]:
    """What the banner says under the headline: why an interval cannot decide, what quality
    was lost."""
    notes = []
    if r.verdict.label == INCONCLUSIVE:
        reason = r.verdict.inconclusive_reason
        notes.append(reason if reason else "the speedup's 95% confidence interval is too "
                     "wide to decide; measure again with a longer time budget")
    notes += r.quality.reasons
    return notes


def other_warnings(r: RunResult) -> list[str]:
    """The verdict's warnings the banner did not already say."""
    said = set(banner_notes(r))
    return [w for w in r.verdict.warnings if w not in said]


def banner_class(r: RunResult) -> str:
    label = r.verdict.label
    if label == FASTER:
        return "degraded" if r.quality.degraded else "faster"
    return {SLOWER: "slower", INCONCLUSIVE: "inconclusive"}.get(label, "notfaster")


def fidelity_rows(r: RunResult) -> list[tuple[str, str]]:
    f = r.fidelity

    def num(x: Optional[float], fmt: str) -> str:
        return "—" if _fin(x) is None else format(x, fmt)
    sqnr = ("identical (∞)" if f.identical else
            num(f.sqnr_db, ".1f") + (" dB" if _fin(f.sqnr_db) is not None else ""))
    return [("top-1 agreement with the original", _pct(f.top1_agreement)),
            ("cosine similarity (mean / min)",
             f"{num(f.cosine, '.5f')} / {num(f.cosine_min, '.5f')}"),
            ("max abs error", num(f.max_abs_error, ".3g")),
            ("SQNR", sqnr),
            ("samples compared", str(f.samples) if f.samples else "—"),
            ("non-finite outputs", str(f.nonfinite))]


# ---- inline SVG bar charts ---------------------------------------------------------------------

def svg_bars(title: str, bars: list[tuple[str, float, Optional[tuple[float, float]]]],
             unit: str, fmt=lambda v: f"{v:.3g}") -> str:
    """A horizontal bar chart; bars are (label, value, optional (low, high) whisker)."""
    bars = [(lbl, v, w) for lbl, v, w in bars if v is not None]
    if not bars:
        return ""
    width, left, bar_h, gap, top = 520, 70, 26, 12, 30
    height = top + len(bars) * (bar_h + gap) + 6
    scale_max = max(max(v, (w[1] if w else 0)) for _, v, w in bars) or 1.0
    span = width - left - 110
    colors = ("#8a94a6", "#2f7dd1")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="0" y="18" font-size="14" font-weight="600" fill="#222">'
             f'{html.escape(title)}</text>']
    for i, (label, value, whisker) in enumerate(bars):
        y = top + i * (bar_h + gap)
        w = max(1.0, span * value / scale_max)
        parts.append(f'<text x="{left - 8}" y="{y + bar_h * 0.68:.1f}" font-size="13" '
                     f'text-anchor="end" fill="#333">{html.escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" '
                     f'fill="{colors[i % 2]}"/>')
        end = w
        if whisker:
            x0, x1 = left + span * whisker[0] / scale_max, left + span * whisker[1] / scale_max
            mid = y + bar_h / 2
            parts.append(f'<path d="M{x0:.1f} {mid} H{x1:.1f} M{x0:.1f} {mid - 6} V{mid + 6} '
                         f'M{x1:.1f} {mid - 6} V{mid + 6}" stroke="#222" stroke-width="1.5" '
                         f'fill="none"/>')
            end = max(end, x1 - left)
        parts.append(f'<text x="{left + end + 6:.1f}" y="{y + bar_h * 0.68:.1f}" font-size="13" '
                     f'fill="#222">{html.escape(fmt(value))} {html.escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charts(r: RunResult) -> list[str]:
    b, a = r.before, r.after
    lb, la = b.latency, a.latency
    out = []
    mb = 1024 * 1024
    if b.size_bytes is not None:
        out.append(svg_bars("Size as saved", [("before", b.size_bytes / mb, None),
                                              ("after", (a.size_bytes or 0) / mb, None)],
                            "MB"))
    if _fin(lb.median_ms) is not None:
        def wh(s: Any) -> Optional[tuple[float, float]]:
            return (s.p10_ms, s.p90_ms) if _fin(s.p10_ms) is not None and _fin(s.p90_ms) \
                else None
        out.append(svg_bars("Latency per call (median, p10–p90)",
                            [("before", lb.median_ms, wh(lb)),
                             ("after", _fin(la.median_ms), wh(la))], "ms"))
    if b.accuracy is not None and a.accuracy is not None:
        out.append(svg_bars("Accuracy", [("before", 100 * b.accuracy, None),
                                          ("after", 100 * a.accuracy, None)], "%",
                            lambda v: f"{v:.2f}"))
    return [c for c in out if c]


# ---- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1000px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px
solid #ddd;padding-bottom:.2em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.3em .7em;
text-align:left;vertical-align:top}th{background:#f4f6f8}td.num{text-align:right;
font-variant-numeric:tabular-nums}
.verdict{padding:.8em 1em;border-radius:6px;margin:1em 0;font-size:1.1em;font-weight:600}
.faster{background:#e3f4e6;border:1px solid #7cc48a}.slower{background:#fbe4e4;border:1px solid
#e08a8a}.notfaster{background:#fff4d6;border:1px solid #e5c261}.degraded{background:#ffe8cc;
border:1px solid #e0a050}.inconclusive{background:#eef0f4;border:1px dashed #8a94a6}
.verdict ul{font-size:.85em;font-weight:400;margin:.4em 0 0}
.noisy{background:#fff4d6;border:1px solid #e5c261;padding:.5em .8em;border-radius:4px}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}.charts svg,.charts img{max-width:100%}
code,pre{background:#f4f6f8;border-radius:3px;font-size:.92em}pre{padding:.6em;overflow-x:auto}
ul{margin:.3em 0}.muted{color:#666}figure{margin:0}figure img{border:1px solid #ddd}
figcaption{color:#555;font-size:.9em}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _table(header: Optional[list[str]], body: list[list[str]], num_cols: tuple = ()) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header or [])
    rows_ = "".join("<tr>" + "".join(
        f'<td{" class=num" if i in num_cols else ""}>{_esc(c)}</td>' for i, c in enumerate(row))
        + "</tr>" for row in body)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{rows_}</table>"


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>" if items else ""


def render_html(result: Any, plots: Optional[dict[str, bytes]] = None,
                exports: Optional[list[str]] = None, title: str = "") -> str:
    """The report as one HTML string. `plots`: {caption: PNG bytes}; `exports`: lines saying
    what else was exported (saved model, script)."""
    r = as_result(result)
    verdict = r.verdict
    source = r.source or "?"
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    h = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
         f"<title>{_esc(title or 'QuantGUI report: ' + source)}</title><style>{_CSS}</style>"
         f"</head><body>",
         f"<h1>{_esc(title or 'QuantGUI report')}</h1>",
         f"<p class=sub>{_esc(source)} · recipe <code>{_esc(r.recipe.describe())}</code> · "
         f"batch {_esc(r.batch_size or '?')}, {_esc(r.threads or '?')} thread(s) · "
         f"{_esc(when)}</p>",
         f'<div class="verdict {banner_class(r)}">{_esc(headline(r))}'
         f'{_list(banner_notes(r))}</div>']
    if r.noisy:
        h.append(f'<p class=noisy><b>Noisy measurement:</b> {_esc(r.noisy_reason or "")}'
                 f" — treat the speed numbers with care.</p>")
    if verdict.reasons:
        h.append("<h2>Why (likely reasons)</h2>" + _list(verdict.reasons))
    if other_warnings(r):
        h.append("<h2>Warnings</h2>" + _list(other_warnings(r)))
    h.append("<h2>Before and after</h2>")
    h.append(_table(["", "before", "after", "after / before"],
                    [list(row) for row in rows(r)], (1, 2, 3)))
    h.append(f"<p class=muted>Before is the original model in eval mode under torch.no_grad(), "
             f"FP32, timed interleaved with after in {_esc(r.timing.rounds or '?')} rounds on "
             f"the same batch and thread count.</p>")
    pictures = charts(r)
    for caption, png in (plots or {}).items():
        data = base64.b64encode(png).decode("ascii")
        pictures.append(f'<figure><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{_esc(caption)}</figcaption></figure>")
    if pictures:
        h.append('<div class="charts">' + "".join(pictures) + "</div>")
    h.append("<h2>Fidelity (optimized vs original outputs)</h2>")
    h.append(_table(["measure", "value"], [list(x) for x in fidelity_rows(r)], (1,)))
    h.append("<h2>Recipe and steps</h2>")
    for i, s in enumerate(r.steps, 1):
        params = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                           for k, v in s.params.items() if v != []) or "defaults"
        h.append(f"<h3>{i}. {_esc(s.name)} <span class=muted>({_esc(params)}; "
                 f"{s.seconds:.1f} s)</span></h3>")
        h.append(_list(s.notes))
        if s.metrics:
            h.append(_table(["metric", "value"],
                            [[k, json.dumps(json_safe(v))] for k, v in s.metrics.items()]))
    h.append(f"<details><summary>recipe JSON</summary><pre>"
             f"{_esc(json.dumps(r.recipe.to_json(), indent=2))}</pre></details>")
    if exports:
        h.append("<h2>Exported</h2>" + _list(exports))
    h.append("<h2>Environment</h2>")
    h.append(_table(None, [[k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)]
                           for k, v in r.environment.items()]))
    h.append("<p class=muted>Generated by QuantGUI. Speedups hold for this CPU, batch size and "
             "thread count; measure again elsewhere.</p></body></html>")
    return "\n".join(h)


def render_markdown(result: Any, exports: Optional[list[str]] = None) -> str:
    r = as_result(result)
    md = ["# QuantGUI report", "",
          f"{r.source or '?'} · recipe `{r.recipe.describe()}` · "
          f"batch {r.batch_size or '?'}, {r.threads or '?'} thread(s)", "",
          f"**{headline(r)}**", ""]
    md += [f"> - {note}" for note in banner_notes(r)] + ([""] if banner_notes(r) else [])
    if r.noisy:
        md += [f"> **Noisy measurement:** {r.noisy_reason or ''}", ""]
    for heading, items in (("Why (likely reasons)", r.verdict.reasons),
                           ("Warnings", other_warnings(r))):
        if items:
            md += [f"## {heading}", ""] + [f"- {x}" for x in items] + [""]
    md += ["## Before and after", "", "| | before | after | after / before |",
           "|---|---:|---:|---:|"]
    md += [f"| {q} | {b} | {a} | {ratio} |" for q, b, a, ratio in rows(r)]
    md += ["", "## Fidelity", "", "| measure | value |", "|---|---:|"]
    md += [f"| {k} | {v} |" for k, v in fidelity_rows(r)]
    md += ["", "## Steps", ""]
    for i, s in enumerate(r.steps, 1):
        params = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                           for k, v in s.params.items() if v != []) or "defaults"
        md.append(f"{i}. **{s.name}** ({params}; {s.seconds:.1f} s)")
        md += [f"   - {n}" for n in s.notes]
        md += [f"   - {k}: `{json.dumps(json_safe(v))}`" for k, v in s.metrics.items()]
    if exports:
        md += ["", "## Exported", ""] + [f"- {x}" for x in exports]
    md += ["", "## Environment", "", "| | |", "|---|---|"]
    md += [f"| {k} | {', '.join(map(str, v)) if isinstance(v, list) else v} |"
           for k, v in r.environment.items()]
    return "\n".join(md) + "\n"


def recipe_json(result: Any) -> dict:
    """The recipe as the engine's JSON, with the environment and the measured results; it
    still loads with `Recipe.load` (which reads 'steps')."""
    r = as_result(result)
    data = r.recipe.to_json()
    data["environment"] = json_safe(r.environment)
    data["result"] = r.to_json()
    return data


def write_recipe(out_dir: PathLike, result: Any, *, protected: Optional[list] = None,
                 task: Optional[Task] = None) -> Path:
    """recipe.json alone (what `--save` ships beside the model and the script)."""
    out_dir = ensure_writable_dir(out_dir)
    path = out_dir / "recipe.json"
    with staged(task or quiet_task(), protected) as stage:
        stage.write_text(path, json.dumps(recipe_json(result), indent=2, allow_nan=False) + "\n")
    return path


@dataclass
class ReportFiles:
    html: Path
    markdown: Path
    recipe: Path

    def to_json(self) -> dict:
        return {"html": str(self.html), "markdown": str(self.markdown), "recipe": str(self.recipe)}


def write_report(out_dir: PathLike, result: Any, *, plots: Optional[dict[str, bytes]] = None,
                 exports: Optional[list[str]] = None, title: str = "",
                 protected: Optional[list] = None, task: Optional[Task] = None) -> ReportFiles:
    """report.html + report.md + recipe.json, written together (all or nothing)."""
    task = task or quiet_task()
    out_dir = ensure_writable_dir(out_dir)
    task.report("export", 0, 2, "writing the report")
    files = ReportFiles(out_dir / "report.html", out_dir / "report.md", out_dir / "recipe.json")
    html_text = render_html(result, plots, exports, title)
    md_text = render_markdown(result, exports)
    recipe_text = json.dumps(recipe_json(result), indent=2, allow_nan=False) + "\n"
    with staged(task, protected) as stage:
        stage.write_text(files.html, html_text)
        stage.write_text(files.markdown, md_text)
        stage.write_text(files.recipe, recipe_text)
        task.report("export", 1, 2, "report written")
    return files
