"""The wire protocol alone (no engine process): every message survives encode/decode, and every
malformed line is a ProtocolError that names the problem and keeps the id when it can."""

import json
import subprocess
import sys

import pytest

from quantgui.engine import protocol as p
from quantgui.engine.protocol import ErrorInfo, ProtocolError, VersionMismatch

MESSAGES = [
    p.request(1, "open", {"source": "example:digits-cnn", "input_shape": [2, 4]}),
    p.request(2, "variants"),
    p.cancel(3),
    p.hello({"version": "0.1.0", "protocol": p.PROTOCOL_VERSION, "techniques": []}),
    p.progress_event(4, [{"phase": "time", "done": 1, "total": 2, "message": "timing before",
                          "values": {"which": "before", "latency_ms": 0.25}}]),
    p.log_event(5, "warning", "UserWarning: careful \u2028 with \n lines"),
    p.log_event(None, "output", "printed outside any request"),
    p.partial_event(6, {"trial": {"recipe": "bf16"}}),
    p.result(7, {"result": {"speedup": {"median": 1.5}}}),
    p.error(8, ErrorInfo(p.EXAMPLE_INPUT, "m.pt: no example input", "no example input",
                         "", {"kinds": ["file", "shape"]})),
    p.error(None, ErrorInfo(p.PROTOCOL, "not a JSON message")),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: f"{m['type']}-{m.get('id')}")
def test_every_message_round_trips_on_one_ascii_line(msg):
    line = p.encode(msg)
    assert "\n" not in line and "\u2028" not in line and line.isascii()
    assert p.decode(line) == msg
    assert p.decode(line.encode()) == msg


def test_error_info_round_trips_and_reads_as_the_dialog_text():
    info = ErrorInfo(p.USER, "f.pt: bad; give --input-shape", "f.pt: bad", "tb", {"a": 1})
    again = ErrorInfo.from_json(p.decode(p.encode(p.error(1, info)))["error"])
    assert again == info and again.text == "f.pt: bad"
    assert ErrorInfo(p.USER, "only the message").text == "only the message"


def test_progress_round_trips_through_json_with_non_finite_values_as_none():
    from quantgui.core import Progress
    prog = Progress("evaluate", 2, 6, "evaluating after",
                    {"which": "after", "accuracy": float("nan"), "agreement": 0.5})
    data = p.progress_json(prog)
    assert json.loads(p.encode(p.progress_event(1, [data])))["progress"][0] == data
    back = p.progress_from_json(data)
    assert (back.phase, back.done, back.total, back.message) == ("evaluate", 2, 6,
                                                                 "evaluating after")
    assert back.values == {"which": "after", "accuracy": None, "agreement": 0.5}


def test_nan_cannot_be_encoded():
    with pytest.raises(ValueError):
        p.encode(p.result(1, {"x": float("nan")}))


@pytest.mark.parametrize("line, fragment, msg_id", [
    ("not json", "not a JSON message", None),
    ("[1, 2]", "must be a JSON object", None),
    ('{"v": 1, "type": "request", "id": 1, "method": "run", "params": {"x": NaN}}',
     "not a JSON message", None),
    ('{"type": "request", "id": 4, "method": "run"}', "protocol version None", 4),
    ('{"v": 1, "type": "shout", "id": 5}', "unknown message type 'shout'", 5),
    ('{"v": 1, "type": "request", "id": 6, "method": "rm -rf"}', "unknown method 'rm -rf'", 6),
    ('{"v": 1, "type": "request", "id": "7", "method": "run"}', "\"id\" must be an integer",
     None),
    ('{"v": 1, "type": "request", "id": true, "method": "run"}', "\"id\" must be an integer",
     None),
    ('{"v": 1, "type": "request", "id": 8, "method": "run", "params": [1]}',
     "\"params\" must be a JSON object", 8),
    ('{"v": 1, "type": "cancel"}', "\"id\" must be an integer", None),
    (b'{"v": 1, "type": "cancel", "id": 9, "x": "\xff"}', "not UTF-8", None),
])
def test_malformed_lines_are_protocol_errors_naming_the_problem(line, fragment, msg_id):
    with pytest.raises(ProtocolError) as err:
        p.decode(line, p.CLIENT_TYPES)
    assert fragment in str(err.value)
    assert err.value.id == msg_id


def test_another_version_is_refused_with_both_versions_named():
    line = p.encode({**p.request(3, "open"), "v": 2})
    with pytest.raises(VersionMismatch) as err:
        p.decode(line)
    assert err.value.id == 3
    assert "version 2 is not supported" in str(err.value) and "speaks version 1" in str(err.value)


def test_each_side_accepts_only_the_other_sides_types():
    with pytest.raises(ProtocolError, match="unknown message type 'result'"):
        p.decode(p.encode(p.result(1, {})), p.CLIENT_TYPES)
    with pytest.raises(ProtocolError, match="unknown message type 'request'"):
        p.decode(p.encode(p.request(1, "run")), p.ENGINE_TYPES)
    with pytest.raises(ProtocolError, match="known \"kind\""):
        p.decode('{"v": 1, "type": "error", "id": 1, "error": {"kind": "oops"}}')


def test_a_line_over_the_limit_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(p, "MAX_LINE", 100)
    with pytest.raises(ProtocolError, match="too long"):
        p.decode(p.encode(p.request(1, "open", {"source": "x" * 200})))


def test_check_hello_refuses_a_first_line_that_is_not_hello():
    with pytest.raises(ProtocolError, match="did not start with hello"):
        p.check_hello(p.result(1, {}))
    assert p.check_hello(p.hello({"pid": 1})) == {"pid": 1}


def test_coalesce_keeps_every_plotted_sample_and_the_last_of_each_phase():
    items = ([{"phase": "apply", "values": {}}] * 3 + [{"phase": "calibrate", "done": i,
                                                        "values": {}} for i in range(5)]
             + [{"phase": "time", "values": {"latency_ms": float(i)}} for i in range(40)]
             + [{"phase": "export", "done": i, "values": {}} for i in range(3)])
    out = p.coalesce(items)
    assert [x["phase"] for x in out] == ["apply", "calibrate"] + ["time"] * 40 + ["export"]
    assert out[1]["done"] == 4 and out[-1]["done"] == 2
    assert [x["values"]["latency_ms"] for x in out if x["phase"] == "time"] == \
        [float(i) for i in range(40)]
    assert set(p.KEEP_ALL) >= {"latency_ms", "accuracy", "agreement", "loss", "step"}


def test_the_protocol_is_torch_free():
    code = ("import sys\nfrom quantgui.engine import protocol as p\n"
            "p.decode(p.encode(p.request(1, 'run', {})))\n"
            "p.progress_from_json({'phase': 'x'})\n"
            "assert 'torch' not in sys.modules and 'PySide6' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
