"""A sweep as a report: report.html (self-contained: inline SVG plots, or the GUI's PNGs as
`data:` URIs), report.md with the same numbers, and sweep.json (the SweepResult, plus the
per-layer profile when there is one). One table per machine type, its crossovers and its
recommended recipe; latency and throughput vs batch, one line per recipe and thread count.

Every string that came from a file or a node (recipe names, machine types, node names, error
reasons, the model's source) goes through `text.html_text` / `text.printable`; numbers that are
not finite are shown as "—", never as "nan"."""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..progress import Task, quiet_task
from ..results.profile import LayerProfile
from ..results.sweep import SweepPoint, SweepResult
from ..text import html_text, printable
from .atomic import PathLike, staged
from .report import _CSS

#: Line colours per recipe (Okabe-Ito, as the Sweep view), "before" in grey.
PALETTE = ["#0072B2", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#E69F00"]
BEFORE = "#8a94a6"
DASHES = ["", "6 4", "2 3", "8 3 2 3"]


def _h(text: Any) -> str:
    """A string from a file, safe as HTML text or an attribute value."""
    return html_text(text).replace('"', "&quot;")


def _one_line(text: Any) -> str:
    """A string from a file, on one Markdown table line (no '|' breaking the columns)."""
    return printable(text, newlines=False).replace("|", "\\|")


def _num(x: Optional[float], spec: str) -> str:
    return format(x, spec) if x is not None and math.isfinite(x) else "—"


def point_cells(p: SweepPoint) -> list[str]:
    """recipe, threads, batch, before ms, after ms, speedup, 95% CI, before/s, after/s, note:
    the table row of one point (what the Sweep view and the CLI's table show)."""
    head = [p.recipe, str(p.threads), str(p.batch)]
    if not p.ok:
        return head + ["—"] * 6 + [f"failed: {p.error or 'unknown'}"]
    note = "noisy" + (f": {p.noisy_reason}" if p.noisy_reason else "") if p.noisy else ""
    return head + [_num(p.before.median_ms, ".3f"), _num(p.after.median_ms, ".3f"),
                   _num(p.speedup, ".2f") + "x",
                   f"{_num(p.ci95[0], '.2f')}–{_num(p.ci95[1], '.2f')}",
                   _num(p.throughput("before"), ".0f"), _num(p.throughput("after"), ".0f"),
                   note]


COLUMNS = ["recipe", "threads", "batch", "before ms", "after ms", "speedup", "95% CI",
           "before /s", "after /s", "note"]


# ---- inline SVG line charts (batch on a log axis) ----------------------------------------------

def lines_for(points: list[SweepPoint], which_value: str) -> list[tuple[str, str, str, list]]:
    """(label, colour, dash, [(batch, value)]) per line of one machine type's points:
    "original" (before) and each recipe (after), per thread count. `which_value`: "latency"
    (median ms) or "throughput" (samples/s). Only finite values are drawn."""
    ok = [p for p in points if p.ok]
    recipes = list(dict.fromkeys(p.recipe for p in ok))
    threads = sorted({p.threads for p in ok})

    def value(p: SweepPoint, which: str) -> float:
        if which_value == "latency":
            return (p.before if which == "before" else p.after).median_ms
        return p.throughput(which)
    out = []
    for t_i, t in enumerate(threads):
        dash = DASHES[t_i % len(DASHES)]
        base = sorted({p.batch: p for p in ok if p.threads == t}.values(), key=lambda p: p.batch)
        series = [("original", BEFORE, base, "before")] + [
            (r, PALETTE[i % len(PALETTE)],
             sorted((p for p in ok if p.recipe == r and p.threads == t), key=lambda p: p.batch),
             "after") for i, r in enumerate(recipes)]
        for label, colour, line, which in series:
            xy = [(p.batch, value(p, which)) for p in line]
            xy = [(x, y) for x, y in xy if math.isfinite(y)]
            if xy:
                out.append((f"{label} · {t} thr", colour, dash, xy))
    return out


def svg_lines(title: str, lines: list[tuple[str, str, str, list]], ylabel: str) -> str:
    """A line chart, batch size on a log2 x axis; one polyline with dots per line."""
    xs = [x for *_, xy in lines for x, _ in xy]
    ys = [y for *_, xy in lines for _, y in xy]
    if not xs:
        return ""
    width, height, left, right, top, bottom = 460, 300, 62, 12, 28, 44
    key_h = 16 * len(lines)
    lx = [math.log2(x) for x in xs]
    x0, x1 = min(lx), max(lx)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = max(ys) * 1.08 or 1.0
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + pw * (math.log2(x) - x0) / (x1 - x0)

    def py(y: float) -> float:
        return top + ph * (1 - y / y1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + key_h}" '
             f'viewBox="0 0 {width} {height + key_h}" role="img" aria-label="{_h(title)}">',
             f'<text x="0" y="16" font-size="14" font-weight="600" fill="#222">{_h(title)}</text>',
             f'<path d="M{left} {top} V{top + ph} H{left + pw}" stroke="#888" fill="none"/>']
    for b in sorted(set(xs)):
        parts.append(f'<text x="{px(b):.1f}" y="{top + ph + 16}" font-size="11" '
                     f'text-anchor="middle" fill="#333">{b}</text>')
    for i in range(5):
        v = y1 * i / 4
        parts.append(f'<text x="{left - 6}" y="{py(v) + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="#333">{v:.3g}</text>')
        parts.append(f'<path d="M{left} {py(v):.1f} H{left + pw}" stroke="#eee"/>')
    parts.append(f'<text x="{left + pw / 2}" y="{top + ph + 34}" font-size="12" '
                 f'text-anchor="middle" fill="#333">batch size (log scale)</text>')
    parts.append(f'<text x="12" y="{top + ph / 2}" font-size="12" text-anchor="middle" '
                 f'fill="#333" transform="rotate(-90 12 {top + ph / 2})">{_h(ylabel)}</text>')
    for i, (label, colour, dash, xy) in enumerate(lines):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in xy)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline points="{pts}" stroke="{colour}" stroke-width="2" '
                     f'fill="none"{style}/>')
        parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>'
                  for x, y in xy]
        ky = height + 16 * i + 4
        parts.append(f'<path d="M{left} {ky} h24" stroke="{colour}" stroke-width="2"{style}/>')
        parts.append(f'<text x="{left + 30}" y="{ky + 4}" font-size="11" fill="#222">'
                     f'{_h(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---- the report --------------------------------------------------------------------------------

def _table(rows: list[list[str]], header: list[str], num_cols: tuple = ()) -> str:
    head = "".join(f"<th>{_h(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(
        f'<td{" class=num" if i in num_cols else ""}>{_h(c)}</td>' for i, c in enumerate(row))
        + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def profile_rows(profile: LayerProfile) -> list[list[str]]:
    rows = [[x.name or "(outside layers)", x.kind_before, x.kind_after,
             _num(x.before_ms, ".3f"), _num(x.after_ms, ".3f")] for x in profile.layers]
    return rows + [["total", "", "", _num(profile.total_before_ms, ".3f"),
                    _num(profile.total_after_ms, ".3f")]]


PROFILE_COLUMNS = ["layer", "before", "after", "before ms", "after ms"]


def render_sweep_html(sweep: SweepResult, profile: Optional[LayerProfile] = None,
                      plots: Optional[dict[str, bytes]] = None, title: str = "") -> str:
    """The report as one HTML string. `plots`: {caption: PNG bytes} (the GUI's own plots),
    shown after the inline charts."""
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    heading = title or "QuantGUI sweep"
    h = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_h(heading)}: "
         f"{_h(sweep.source or '?')}</title><style>{_CSS}</style></head><body>",
         f"<h1>{_h(heading)}</h1>",
         f"<p class=sub>{_h(sweep.source or '?')} · {len(sweep.recipes)} recipe(s) · batch "
         f"{_h(', '.join(map(str, sweep.batches)))} · threads "
         f"{_h(', '.join(map(str, sweep.threads)))} · measured on {_h(sweep.executor)} · "
         f"{_h(when)}</p>"]
    if sweep.cancelled:
        h.append(f"<p class=noisy><b>Cancelled:</b> the {len(sweep.points)} point(s) measured "
                 f"before the cancel are shown.</p>")
    if sweep.error:
        h.append(f"<p class=noisy><b>Stopped early:</b> {_h(sweep.error)}</p>")
    for t in sweep.types:
        points = [p for p in sweep.points if p.machine == t.machine]
        h.append(f"<h2>Machine type: {_h(t.machine)}</h2>")
        if t.nodes:
            h.append(f"<p class=muted>{len(t.nodes)} node(s): {_h(', '.join(t.nodes))}</p>")
        h.append(f'<div class="verdict {"faster" if t.recommended else "notfaster"}">'
                 f"Recommended: {_h(t.recommended or 'the original')}"
                 f"<ul><li>{_h(t.reason)}</li></ul></div>")
        crossings = [c.text for c in sweep.crossovers if c.machine == t.machine]
        if crossings:
            h.append("<ul>" + "".join(f"<li>{_h(c)}</li>" for c in crossings) + "</ul>")
        h.append(_table([point_cells(p) for p in points], COLUMNS, (1, 2, 3, 4, 5, 6, 7, 8)))
        charts = [svg_lines(f"Latency per call (median) · {t.machine}",
                            lines_for(points, "latency"), "ms"),
                  svg_lines(f"Throughput · {t.machine}", lines_for(points, "throughput"),
                            "samples/s")]
        charts = [c for c in charts if c]
        if charts:
            h.append('<div class="charts">' + "".join(charts) + "</div>")
        if t.environment:
            h.append("<details><summary>what this machine type is</summary>" + _table(
                [[k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)]
                 for k, v in t.environment.items()], ["", ""]) + "</details>")
    pictures = []
    for caption, png in (plots or {}).items():
        data = base64.b64encode(png).decode("ascii")
        pictures.append(f'<figure><img alt="{_h(caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{_h(caption)}</figcaption></figure>")
    if pictures:
        h.append("<h2>Plots</h2><div class=\"charts\">" + "".join(pictures) + "</div>")
    if profile is not None:
        h.append(f"<h2>Per-layer profile: {_h(profile.recipe)}, batch {profile.batch}, "
                 f"{profile.threads} thread(s)</h2><p class=muted>Mean of {profile.calls} calls "
                 f"per side; the hooks add a little to each layer.</p>")
        h.append(_table(profile_rows(profile), PROFILE_COLUMNS, (3, 4)))
    h.append("<p class=muted>Generated by QuantGUI. Each point is the interleaved before/after "
             "timer with its 95% interval; a recipe \"pays\" where the interval's lower bound is "
             "above 1x. The recommendation is about speed only: check quality with "
             "quantgui-cli run.</p></body></html>")
    return "\n".join(h)


def render_sweep_markdown(sweep: SweepResult, profile: Optional[LayerProfile] = None) -> str:
    md = ["# QuantGUI sweep", "",
          f"{_one_line(sweep.source or '?')} · batch {', '.join(map(str, sweep.batches))} · "
          f"threads {', '.join(map(str, sweep.threads))} · measured on "
          f"{_one_line(sweep.executor)}", ""]
    if sweep.cancelled:
        md += [f"> **Cancelled:** {len(sweep.points)} point(s) measured are kept.", ""]
    if sweep.error:
        md += [f"> **Stopped early:** {_one_line(sweep.error)}", ""]
    for t in sweep.types:
        md += [f"## Machine type: {_one_line(t.machine)}", ""]
        if t.nodes:
            md += [f"{len(t.nodes)} node(s): {_one_line(', '.join(t.nodes))}", ""]
        md += [f"**Recommended: {_one_line(t.recommended or 'the original')}** "
               f"({_one_line(t.reason)})", ""]
        md += [f"- {_one_line(c.text)}" for c in sweep.crossovers if c.machine == t.machine]
        md += ["", "| " + " | ".join(COLUMNS) + " |",
               "|---|" + "---:|" * (len(COLUMNS) - 2) + "---|"]
        md += ["| " + " | ".join(_one_line(c) for c in point_cells(p)) + " |"
               for p in sweep.points if p.machine == t.machine]
        md.append("")
    if profile is not None:
        md += [f"## Per-layer profile: {_one_line(profile.recipe)}, batch {profile.batch}, "
               f"{profile.threads} thread(s)", "", "| " + " | ".join(PROFILE_COLUMNS) + " |",
               "|---|---|---|---:|---:|"]
        md += ["| " + " | ".join(_one_line(c) for c in row) + " |"
               for row in profile_rows(profile)]
    return "\n".join(md) + "\n"


def sweep_text(sweep: SweepResult, fmt: str) -> str:
    """The sweep as JSON (strict: no NaN) or its table as CSV (one row per point, unknown
    numbers empty)."""
    if fmt == "json":
        return json.dumps(sweep.to_json(), indent=2, allow_nan=False) + "\n"
    import csv
    import io
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(sweep.CSV_COLUMNS)
    writer.writerows(sweep.csv_rows())
    return out.getvalue()


@dataclass
class SweepReportFiles:
    folder: Path
    html: Path
    markdown: Path
    json: Path

    def to_json(self) -> dict:
        return {"folder": str(self.folder), "html": str(self.html),
                "markdown": str(self.markdown), "json": str(self.json)}

    def lines(self) -> list[str]:
        return [f"wrote {self.html}", f"wrote {self.markdown}", f"wrote {self.json}"]


def write_sweep_report(out_dir: PathLike, sweep: Any, profile: Any = None, *,
                       plots: Optional[dict[str, bytes]] = None, title: str = "",
                       protected: Optional[list] = None,
                       task: Optional[Task] = None) -> SweepReportFiles:
    """report.html, report.md and sweep.json into `out_dir`, the whole folder at once: it is
    created, or replaces an earlier QuantGUI export there; a folder of the user's own files is
    refused before anything is written (export/folder.py). `sweep`/`profile`: the records or
    their JSON."""
    from .folder import export_folder
    task = task or quiet_task()
    if not isinstance(sweep, SweepResult):
        sweep = SweepResult.from_json(sweep)
    if profile is not None and not isinstance(profile, LayerProfile):
        profile = LayerProfile.from_json(profile)
    task.report("export", 0, 2, "writing the sweep report")
    data = sweep.to_json()
    if profile is not None:
        data["profile"] = profile.to_json()
    texts = {"report.html": render_sweep_html(sweep, profile, plots, title),
             "report.md": render_sweep_markdown(sweep, profile),
             "sweep.json": json.dumps(data, indent=2, allow_nan=False) + "\n"}
    shown = Path(out_dir).expanduser()
    need = sum(len(t.encode("utf-8")) for t in texts.values()) + 4096
    with export_folder(shown, protected, need, task) as tmp:
        with staged(task) as stage:  # a full disk is NoSpace, not a bare OSError
            for name, text in texts.items():
                stage.write_text(tmp / name, text)
    task.report("export", 2, 2, "sweep report written")
    return SweepReportFiles(shown, shown / "report.html", shown / "report.md",
                            shown / "sweep.json")
