"""The engine process's wire protocol: one JSON object per line, UTF-8, both ways.

Torch-free and Qt-free: the engine (`quantgui.engine.server`) and every client (the GUI's
`engine_client`, tests, `quantgui-cli serve` users) import it. JSON is written with
`allow_nan=False` and `ensure_ascii=True`, so a line never holds NaN nor any line separator.

Every message has `"v": PROTOCOL_VERSION` and a `"type"`:

Client -> engine
    {"v": 1, "type": "request", "id": 7, "method": "open", "params": {...}}
    {"v": 1, "type": "cancel", "id": 7}
Engine -> client
    {"v": 1, "type": "hello", "engine": {...}}                     first line, unasked
    {"v": 1, "type": "event", "id": 7, "event": "progress", "progress": [P, ...]}
    {"v": 1, "type": "event", "id": 7, "event": "log", "level": L, "message": "..."}
    {"v": 1, "type": "event", "id": 7, "event": "partial", "value": {...}}
    {"v": 1, "type": "result", "id": 7, "value": {...}}
    {"v": 1, "type": "error", "id": 7, "error": {"kind": K, "message": "...", "gui_text": ...,
                                                 "details": "...", "data": {...}}}

Ids are the client's integers; each request ends with exactly one `result` or `error` carrying
its id. An error about a line that could not be read at all has `"id": null`.

Progress: P = {"phase", "done", "total", "message", "values"} (`progress_json`; the values are
those of docs/architecture.md "Progress values the GUI plots live"). The engine sends at most
~30 progress events a second per request, each a list of P in order: bare counters are
coalesced, but every P whose values hold a key of `KEEP_ALL` (each latency sample, each
accuracy, loss, size and step) is kept, so plots get every sample (`coalesce`).

Log: level "warning" (a Python warning raised by the work), "output" (a line the work printed
with Python's print; the engine's fd 1 goes to its stderr, so output from C/C++ arrives on the
engine's stderr instead, which the client shows as log lines too) or "info".

Error kinds (`ERROR_KINDS`); the client dispatches on kind, never on exception names:
    user           bad input (a file, a recipe, a parameter): show message; `gui_text` is the
                   same without command-line advice where a dialog asks the question itself
    trust          opening the file runs its code; data {"source"}; ask, then open with trust
    architecture   weights only; data {"source"}; ask for an architecture (see "classes")
    example_input  nothing says what to feed the model; data {"info": ModelInfo | null,
                   "kinds": ["file", "shape", "data", "text"...]}
    cancelled      the request was cancelled (a queued one is dropped unrun); for recommend
                   data {"recommendation": Recommendation} (the best found so far)
    memory         refused before starting: data {"need_bytes", "available_bytes"}
    internal       a bug: `details` holds the traceback
    protocol       the line was not a valid message (bad JSON, version, type, method, params)

Methods: "params" -> "value" (records are the typed objects' to_json; read them back with
`RunResult.from_json`, `ModelInfo.from_json`, ...):
    hello          {} -> ENGINE (the hello line's "engine": version, protocol, pid, python, torch,
                   cpu_capabilities, threads, techniques: [TechniqueSpec], examples:
                   [{name, description, suggested}], default_example, keep_variants)
    open           {source, arch, arch_kwargs, trust, example_input, input_shape, input_dtype,
                   example_text, data (a path or DataSpec JSON), task, fashion_mnist (the
                   folder of Fashion-MNIST files for example:fashion-cnn)} (all optional but
                   source; source "" or missing:
                   the default example) -> OPENED = {model_id, info: ModelInfo,
                   data: {"test": DataInfo | null, "train": DataInfo | null},
                   source: {...} (what a ProjectEntry names the model by),
                   input_kinds: [...], cpu_capabilities: [...]}; progress phase "load"
    inspect        same params -> OPENED without needing an example input (info only; "run"
                   on such a model is a "user" error)
    drop_labels    {model_id} -> OPENED of a new model_id: the same model, its data without
                   labels (accuracy is not measured, fidelity is the quality measure)
    classes        {path} -> {"classes": [names]} (the nn.Module classes an architecture file
                   defines; imports it)
    run            {model_id, recipe: Recipe.to_json(), options: {batch_size, threads,
                   time_budget_s, eval_limit, min_rounds, max_rounds, warmup, seed}} ->
                   {"result": RunResult (variant_id set, peak_rss_bytes), "evicted": [ids]}
    recommend      {model_id, options, max_accuracy_drop, min_cosine, max_candidates,
                   include_compile, budget: QualityBudget.to_json() (over the two legacy
                   bounds, whose accuracy drop is a fraction)} -> partial events {"trial": Trial} (each with a result
                   keeps a variant: its result's variant_id), then {"recommendation":
                   Recommendation, "evicted": [ids]}
    sweep          {model_id, recipes: [Recipe.to_json()], batches: [int], threads: [int],
                   time_budget_s, cluster: "local" (default) | "auto" | "ray://HOST:PORT"}
                   -> partial events {"point": SweepPoint} as each point is measured, then
                   {"sweep": SweepResult}; cancelled: data {"sweep": SweepResult so far}
    profile        {model_id, recipe: Recipe.to_json(), batch, threads, calls (default 20)}
                   -> {"profile": LayerProfile} (per-layer time before vs after); progress
                   phase "profile"
    sweep_report   {what: "report" (default) | "json" | "csv", folder (report), path
                   (json/csv), sweep: SweepResult JSON, profile: LayerProfile JSON | null,
                   plots: {name: base64 PNG}} -> {"path": report.html or the file, "text",
                   "export": {folder, html, markdown, json} (the folder written whole,
                   export/folder.py) or {path}}
    sensitivity    {model_id, format, params: {k: v}, expand, samples, batch_size,
                   use_cache} -> partial events {"unit": UnitSensitivity} as each unit is
                   measured, then {"sensitivity": SensitivityReport}; cancelled: data
                   {"sensitivity": SensitivityReport so far}
    tune           {model_id, options, budget: QualityBudget.to_json(), max_candidates,
                   include_compile, time_limit_s, samples, log, resume} -> partial events
                   {"trial": TuneTrial} as each trial ends (each with a result keeps a
                   variant), then {"tune": TuneResult, "evicted": [ids]}; cancelled: data
                   {"tune": TuneResult so far} (its best is the best so far)
    export         {what: "model" | "script" | "report" | "recipe" | "all", variant_id,
                   result (RunResult JSON: report/recipe of a row without a variant),
                   model_id (its files are protected), folder (model/script/report/all),
                   path (recipe), plots: {name: base64 PNG} (report/all), fmt}
                   -> {"what", "path": main file or folder, "text": lines for people,
                   "export": the to_json of what was written (ExportResult for model/all,
                   ScriptExport, ReportFiles, or {"path"} for recipe)}
    save_project   {path, entries: [ProjectEntry.to_json()]} -> {"path"}
    load_project   {path} -> {"project": Project.to_json()} (entries: label, created, source,
                   recipe, result | null)
    variants       {} -> {"variants": [{variant_id, model_id, label, source}], "keep": N}
                   (newest first; any id not listed can no longer export a model or script)
    forget         {variant_id} or {model_id} -> {"forgotten": bool}
    shutdown       {} -> {} then the engine exits 0 (running and queued work is cancelled)

Work runs in order on one thread; "hello", "variants" and "cancel" are answered at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

PROTOCOL_VERSION = 1

REQUEST, CANCEL = "request", "cancel"
HELLO, EVENT, RESULT, ERROR = "hello", "event", "result", "error"
CLIENT_TYPES = (REQUEST, CANCEL)
ENGINE_TYPES = (HELLO, EVENT, RESULT, ERROR)

PROGRESS, LOG, PARTIAL = "progress", "log", "partial"
EVENTS = (PROGRESS, LOG, PARTIAL)

METHODS = ("hello", "open", "inspect", "drop_labels", "classes", "run", "recommend", "sweep",
           "profile", "sweep_report", "sensitivity", "tune", "export", "save_project",
           "load_project", "variants", "forget", "shutdown")
#: Export targets ("all": model, script, report and recipe into one folder).
EXPORT_WHAT = ("model", "script", "report", "recipe", "all")

USER, TRUST, ARCHITECTURE, EXAMPLE_INPUT = "user", "trust", "architecture", "example_input"
CANCELLED, MEMORY, INTERNAL, PROTOCOL = "cancelled", "memory", "internal", "protocol"
ERROR_KINDS = (USER, TRUST, ARCHITECTURE, EXAMPLE_INPUT, CANCELLED, MEMORY, INTERNAL, PROTOCOL)

#: Progress values the plots want sample by sample (never coalesced away).
KEEP_ALL = ("latency_ms", "accuracy", "agreement", "loss", "before_bytes", "step")
#: Longest line either side accepts (a Recommendation with every trial's result fits easily).
MAX_LINE = 32 * 2**20


class ProtocolError(ValueError):
    """A line that is not a valid message; `id` is the request's id when it could be read."""

    def __init__(self, message: str, id: Optional[int] = None) -> None:
        super().__init__(message)
        self.id = id


class VersionMismatch(ProtocolError):
    """The other side speaks another protocol version."""


@dataclass
class ErrorInfo:
    """The payload of an "error" message."""

    kind: str
    message: str
    gui_text: Optional[str] = None
    details: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """What a dialog shows: the message without command-line advice when there is one."""
        return self.gui_text or self.message

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "gui_text": self.gui_text,
                "details": self.details, "data": self.data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ErrorInfo":
        gui = data.get("gui_text")
        extra = data.get("data")
        return cls(str(data.get("kind")), str(data.get("message", "")),
                   gui if isinstance(gui, str) else None, str(data.get("details") or ""),
                   extra if isinstance(extra, dict) else {})


# --- building messages --------------------------------------------------------------------------

def _msg(type_: str, **fields: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "type": type_, **fields}


def request(id: int, method: str, params: Optional[dict] = None) -> dict[str, Any]:
    return _msg(REQUEST, id=id, method=method, params=dict(params or {}))


def cancel(id: int) -> dict[str, Any]:
    return _msg(CANCEL, id=id)


def hello(engine: dict[str, Any]) -> dict[str, Any]:
    return _msg(HELLO, engine=engine)


def progress_event(id: int, items: Iterable[dict]) -> dict[str, Any]:
    return _msg(EVENT, id=id, event=PROGRESS, progress=list(items))


def log_event(id: Optional[int], level: str, message: str) -> dict[str, Any]:
    return _msg(EVENT, id=id, event=LOG, level=level, message=message)


def partial_event(id: int, value: dict[str, Any]) -> dict[str, Any]:
    return _msg(EVENT, id=id, event=PARTIAL, value=value)


def result(id: int, value: Optional[dict] = None) -> dict[str, Any]:
    return _msg(RESULT, id=id, value=dict(value or {}))


def error(id: Optional[int], info: ErrorInfo) -> dict[str, Any]:
    return _msg(ERROR, id=id, error=info.to_json())


def progress_json(p: Any) -> dict[str, Any]:
    """A `core.progress.Progress` (or anything with its fields) as JSON-safe data."""
    return {"phase": str(p.phase), "done": int(p.done),
            "total": None if p.total is None else int(p.total),
            "message": str(p.message or ""), "values": json_safe(dict(p.values or {}))}


def progress_from_json(data: dict[str, Any]) -> Any:
    """A P dict back as a `core.progress.Progress` (torch-free)."""
    from quantgui.core.progress import Progress
    values = data.get("values")
    return Progress(str(data.get("phase", "")), int(data.get("done") or 0), data.get("total"),
                    str(data.get("message") or ""), values if isinstance(values, dict) else {})


def coalesce(items: list) -> list:
    """Keep every progress that carries plot values (`KEEP_ALL`); of bare counters keep only
    the newest, and the last of each phase so phase changes are never lost. Items are
    Progress objects or P dicts."""
    def get(p: Any, name: str) -> Any:
        return p.get(name) if isinstance(p, dict) else getattr(p, name, None)
    out = []
    for i, p in enumerate(items):
        values = get(p, "values") or {}
        if any(k in values for k in KEEP_ALL) or i == len(items) - 1:
            out.append(p)
        elif get(items[i + 1], "phase") != get(p, "phase"):
            out.append(p)
    return out


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats as None, tuples as lists and unknown objects as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    item = getattr(value, "item", None)  # a numpy / torch scalar
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


# --- the wire -----------------------------------------------------------------------------------

def encode(msg: dict[str, Any]) -> str:
    """One line of JSON, without its newline (ValueError for NaN or what JSON cannot hold)."""
    return json.dumps(msg, allow_nan=False, ensure_ascii=True, separators=(",", ":"))


def _id(data: dict, allow_none: bool) -> Optional[int]:
    value = data.get("id")
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"\"id\" must be an integer, got {value!r:.40}")
    return value


def decode(line: str | bytes, expect: Iterable[str] = CLIENT_TYPES + ENGINE_TYPES) -> dict:
    """The message on one line, checked: ProtocolError (VersionMismatch for another "v")
    naming what is wrong; the error's `id` is the request's id when it could be read.
    `expect`: the types this side accepts (CLIENT_TYPES in the engine, ENGINE_TYPES in a
    client)."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE:
            raise ProtocolError(f"message too long ({len(line):,} bytes; at most {MAX_LINE:,})")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("message is not UTF-8") from None
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message too long ({len(line):,} characters; at most {MAX_LINE:,})")
    try:
        data = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not a JSON message: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    msg_id = data.get("id") if isinstance(data.get("id"), int) and \
        not isinstance(data.get("id"), bool) else None
    version = data.get("v")
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(f"protocol version {version!r:.20} is not supported (this side "
                              f"speaks version {PROTOCOL_VERSION}; run the engine of the same "
                              f"QuantGUI installation)", msg_id)
    kind = data.get("type")
    expect = tuple(expect)
    if kind not in expect:
        raise ProtocolError(f"unknown message type {kind!r:.40} (expected one of "
                            f"{', '.join(expect)})", msg_id)
    try:
        _check(kind, data)
    except ProtocolError as exc:
        exc.id = msg_id
        raise
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check(kind: str, data: dict) -> None:
    if kind == REQUEST:
        _id(data, False)
        if data.get("method") not in METHODS:
            raise ProtocolError(f"unknown method {data.get('method')!r:.40} (methods: "
                                f"{', '.join(METHODS)})")
        data.setdefault("params", {})
        if not isinstance(data["params"], dict):
            raise ProtocolError("\"params\" must be a JSON object")
    elif kind == CANCEL:
        _id(data, False)
    elif kind == HELLO:
        if not isinstance(data.get("engine"), dict):
            raise ProtocolError("hello without an \"engine\" object")
    elif kind == EVENT:
        _id(data, True)
        if data.get("event") not in EVENTS:
            raise ProtocolError(f"unknown event {data.get('event')!r:.40}")
    elif kind == RESULT:
        _id(data, False)
        if not isinstance(data.get("value"), dict):
            raise ProtocolError("result without a \"value\" object")
    elif kind == ERROR:
        _id(data, True)
        err = data.get("error")
        if not isinstance(err, dict) or err.get("kind") not in ERROR_KINDS:
            raise ProtocolError("error without a known \"kind\"")


def check_hello(msg: dict[str, Any]) -> dict[str, Any]:
    """The engine description of a decoded hello line; ProtocolError when it is not one."""
    if msg.get("type") != HELLO:
        raise ProtocolError(f"the engine did not start with hello (got {msg.get('type')!r:.40})")
    return msg["engine"]
