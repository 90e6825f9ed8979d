"""A corpus of hostile files, generated at test time (nothing crafted is committed).

Each maker writes one file (or folder) into a directory and returns a `Case`: the CLI arguments
that feed it to QuantGUI, the file that must be named in the one-line error, and fragments the
line must contain. Payloads try to create `canary` (a file outside the corpus); a test fails if
it ever exists. Every case is also a control: `payload_is_live` shows, for the pickles, that an
unguarded load really would run the payload.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn


class Payload:
    """Unpickling this calls os.system to create the canary file."""

    def __init__(self, canary: Path) -> None:
        self.canary = str(canary)

    def __reduce__(self):
        return (os.system, (f"touch '{self.canary}'",))


def evil_pickle(canary: Path) -> bytes:
    return pickle.dumps(Payload(canary), protocol=2)


def evil_torch_save(canary: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"x": Payload(canary)}, buf)
    return buf.getvalue()


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _exported(path: Path) -> None:
    torch.manual_seed(0)
    program = torch.export.export(Tiny().eval(), (torch.randn(2, 4),))
    torch.export.save(program, str(path))


def _rewrite_zip(src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None],
                 extra: dict[str, bytes] | None = None) -> None:
    """Copy a zip, passing each member through `edit` (None drops it), adding `extra`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)


@dataclass
class Case:
    name: str
    args: list[str]               # CLI arguments after the subcommand's MODEL slot
    named: Path                   # the file the error line must name
    fragments: tuple[str, ...] = ()
    inputs: list[Path] = field(default_factory=list)   # hashed before/after


# --- .pt2 ----------------------------------------------------------------------------------------

def pt2_pickled_weight(d: Path, canary: Path) -> Case:
    good, bad = d / "good.pt2", d / "pickled_weight.pt2"
    _exported(good)

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            for meta in config["config"].values():
                if meta["path_name"] == "weight_0":
                    meta["use_pickle"] = True
            return json.dumps(config).encode()
        if name.endswith("/weights/weight_0"):
            return evil_pickle(canary)
        return data
    _rewrite_zip(good, bad, edit)
    good.unlink()
    return Case("pt2: weight stored as a pickle", [str(bad)], bad, ("refused", "runs code"),
                [bad])


def pt2_pickled_sample_input(d: Path, canary: Path) -> Case:
    good, bad = d / "good.pt2", d / "pickled_sample.pt2"
    _exported(good)

    def edit(name: str, data: bytes) -> bytes:
        return evil_torch_save(canary) if "/sample_inputs/" in name else data
    _rewrite_zip(good, bad, edit)
    good.unlink()
    return Case("pt2: sample input that only unpickles", [str(bad)], bad,
                ("refused", "runs code"), [bad])


def pt2_pickled_constant(d: Path, canary: Path) -> Case:
    good, bad = d / "good.pt2", d / "opaque_constant.pt2"
    _exported(good)

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("model_constants_config.json"):
            return json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "is_param": False,
                                                "use_pickle": True, "tensor_meta": None}}}
                              ).encode()
        return data
    prefix = "good/data/constants/"
    _rewrite_zip(good, bad, edit, {prefix + "opaque_obj_0": evil_pickle(canary)})
    good.unlink()
    return Case("pt2: opaque constant (a raw pickle)", [str(bad)], bad, ("refused",), [bad])


def pt2_native_code(d: Path, canary: Path) -> Case:
    good, bad = d / "good.pt2", d / "aoti.pt2"
    _exported(good)
    _rewrite_zip(good, bad, lambda n, b: b,
                 {"good/data/aotinductor/model/model.so": b"\x7fELF" + b"\0" * 64})
    good.unlink()
    return Case("pt2: AOTInductor native code", [str(bad)], bad, ("refused", "native code"),
                [bad])


def pt2_file_op_graph(d: Path, canary: Path) -> Case:
    class Reads(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.ops.aten.from_file(str(canary), False, 1).sum()
    path = d / "from_file.pt2"
    canary.parent.mkdir(parents=True, exist_ok=True)
    try:
        program = torch.export.export(Reads(), (torch.randn(2, 4),))
        torch.export.save(program, str(path))
    except Exception:
        # If this torch cannot export the operator, splice its name into a good graph.
        good = d / "good.pt2"
        _exported(good)
        _rewrite_zip(good, path, lambda n, b: b.replace(b"torch.ops.aten.linear.default",
                                                        b"torch.ops.aten.from_file.default")
                     if n.endswith("models/model.json") else b)
        good.unlink()
    return Case("pt2: graph calls from_file", [str(path)], path, ("refused", "from_file"),
                [path])


# --- TorchScript -----------------------------------------------------------------------------------

def torchscript_file_op(d: Path, canary: Path) -> Case:
    class Writes(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            torch.save(x, "/tmp/quantgui-canary-never")
            return x
    path = d / "writes.torchscript.pt"
    torch.jit.save(torch.jit.script(Writes()), str(path))
    return Case("TorchScript: code writes files", [str(path), "--input-shape", "2,4"], path,
                ("refused", "torch.save"), [path])


def torchscript_evil_constants(d: Path, canary: Path) -> Case:
    good, bad = d / "good.torchscript.pt", d / "evil_constants.torchscript.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(good))

    def edit(name: str, data: bytes) -> bytes:
        return evil_pickle(canary) if name.endswith("/data.pkl") else data
    _rewrite_zip(good, bad, edit)
    good.unlink()
    return Case("TorchScript: data.pkl is a hostile pickle",
                [str(bad), "--input-shape", "2,4"], bad, ("refused", "would run code"), [bad])


# --- torch.save / example inputs / data ------------------------------------------------------------

def pt_evil_pickle(d: Path, canary: Path) -> Case:
    path = d / "model.pt"
    path.write_bytes(evil_torch_save(canary))
    return Case("pt: pickle with a payload", [str(path), "--input-shape", "2,4"], path,
                ("refused", "runs code", "--trust"), [path])


def pth_legacy_evil_pickle(d: Path, canary: Path) -> Case:
    path = d / "legacy.pth"
    path.write_bytes(evil_pickle(canary))
    return Case("pth: raw (legacy) pickle with a payload", [str(path), "--input-shape", "2,4"],
                path, ("refused",), [path])


def example_input_sidecar(d: Path, canary: Path) -> Case:
    folder = d / "exported_model"
    folder.mkdir()
    model = folder / "model.torchscript.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(model))
    sidecar = folder / "example_input.pt"
    sidecar.write_bytes(evil_torch_save(canary))
    return Case("example-input sidecar is a hostile pickle", [str(model)], sidecar,
                ("refused",), [model, sidecar])


def example_input_flag(d: Path, canary: Path) -> Case:
    model = d / "m.torchscript.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(model))
    ex = d / "input.pt"
    ex.write_bytes(evil_torch_save(canary))
    return Case("--example-input is a hostile pickle", [str(model), "--example-input", str(ex)],
                ex, ("refused",), [model, ex])


def data_evil_pt(d: Path, canary: Path) -> Case:
    data = d / "data.pt"
    data.write_bytes(evil_torch_save(canary))
    return Case("--data .pt is a hostile pickle", ["example:digits-mlp", "--data", str(data)],
                data, ("refused",), [data])


def data_object_npz(d: Path, canary: Path) -> Case:
    import numpy as np
    data = d / "data.npz"
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = Payload(canary), 1
    np.savez(data, inputs=arr)
    return Case("--data .npz with object arrays (pickles)",
                ["example:digits-mlp", "--data", str(data)], data, ("refused",), [data])


def zip_bomb(d: Path, canary: Path) -> Case:
    path = d / "bomb.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("bomb/data.pkl", b"\x80\x02}q\x00.")
        with zf.open("bomb/data/0", "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 22)
            for _ in range(512):  # 2 GiB of zeros, a few MB on disk
                fh.write(chunk)
    return Case("zip bomb", [str(path), "--input-shape", "2,4"], path, ("zip bomb",), [path])


def truncated_pt2(d: Path, canary: Path) -> Case:
    good, bad = d / "good.pt2", d / "truncated.pt2"
    _exported(good)
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    good.unlink()
    return Case("pt2 cut in half", [str(bad)], bad, (), [bad])


def hf_pickled_weights(d: Path, canary: Path) -> Case:
    from transformers import BertConfig, BertModel
    folder = d / "tiny-bert"
    config = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, vocab_size=64, max_position_embeddings=32)
    BertModel(config).save_pretrained(folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "pytorch_model.bin").write_bytes(evil_torch_save(canary))
    return Case("Hugging Face folder with pickled weights", [str(folder)], folder,
                ("refused", "runs code"), [folder / "pytorch_model.bin", folder / "config.json"])


MODEL_CASES = [pt2_pickled_weight, pt2_pickled_sample_input, pt2_pickled_constant,
               pt2_native_code, pt2_file_op_graph, torchscript_file_op,
               torchscript_evil_constants, pt_evil_pickle, pth_legacy_evil_pickle,
               example_input_sidecar, example_input_flag, data_evil_pt, data_object_npz,
               zip_bomb, truncated_pt2, hf_pickled_weights]


# --- recipes and projects (JSON) ----------------------------------------------------------------
# Each maker writes one recipe (RECIPE_CASES: args for `quantgui-cli run`) or project file
# (PROJECT_CASES: `named` is the file for `load_project` and the GUI's Open Project); the
# fragments are the JSON path of the bad value and the reason.

def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _recipe_text(amount: str = "0.5", **top: str) -> str:
    fields = "".join(f'"{k}": {v}, ' for k, v in top.items())
    return f'{{{fields}"steps": [{{"name": "prune", "params": {{"amount": {amount}}}}}]}}'


def _json_case(kind: str, name: str, text: str | bytes | None, *fragments: str) -> Callable:
    """A maker writing `text` (None: a FIFO) as a recipe or project file."""
    def make(d: Path, canary: Path) -> Case:
        path = d / ("recipe.json" if kind == "recipe" else "session.qgproj.json")
        if text is None:
            os.mkfifo(path)  # reading it would block forever: it must never be opened
        elif isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        args = ["example:digits-mlp", "--recipe", str(path)] if kind == "recipe" else [str(path)]
        return Case(f"{kind}: {name}", args, path, fragments, [] if text is None else [path])
    make.__name__ = f"{kind}_{name}"
    return make


_DUPLICATES = json.dumps({"steps": [{"name": "prune"}] * 5000})

RECIPE_CASES = [
    _json_case("recipe", "fifo", None, "not a regular file"),
    _json_case("recipe", "deep_nesting", _recipe_text(_deep(100_000)),
               "$.steps[0].params.amount[0][0]", "nested more than 64 levels deep"),
    _json_case("recipe", "deep_top_level", _deep(100_000), "$[0][0][0]", "nested more than"),
    _json_case("recipe", "int_beyond_float", _recipe_text(str(10**400)),
               "$.steps[0].params.amount: a 401-digit integer is too large for a number"),
    _json_case("recipe", "int_beyond_int", _recipe_text("1" * 5000),
               "$.steps[0].params.amount: an integer of more than 4300 digits"),
    _json_case("recipe", "nan", _recipe_text("NaN"),
               "$.steps[0].params.amount: NaN is not a number JSON allows"),
    _json_case("recipe", "infinity", _recipe_text("Infinity"), "$.steps[0].params.amount",
               "Infinity"),
    _json_case("recipe", "nan_text", _recipe_text('"nan"'),
               "$.steps[0].params.amount: must be a finite number, got NaN"),
    _json_case("recipe", "out_of_range", _recipe_text("2"),
               "$.steps[0].params.amount: 2.0 is above its maximum 0.95"),
    _json_case("recipe", "version_true", _recipe_text(version="true"),
               "$.version: must be a positive whole number, got true"),
    _json_case("recipe", "version_0", _recipe_text(version="0"), "$.version: must be a positive"),
    _json_case("recipe", "version_negative", _recipe_text(version="-1"), "$.version: must be"),
    _json_case("recipe", "version_text", _recipe_text(version='"1"'),
               "$.version: must be a positive whole number, got the text '1'"),
    _json_case("recipe", "version_newer", _recipe_text(version="99"),
               "$.version: recipe version 99 is newer than this QuantGUI understands",
               "update QuantGUI"),
    _json_case("recipe", "unknown_step", '{"steps": [{"name": "foo"}]}',
               "$.steps[0].name: unknown technique 'foo' (known: prune,"),
    _json_case("recipe", "duplicate_step", '{"steps": [{"name": "bf16"}, {"name": "bf16"}]}',
               "$.steps[1].name: 'bf16' appears twice (first at $.steps[0])"),
    _json_case("recipe", "5000_duplicates", _DUPLICATES,
               "$.steps: has 5,000 steps; a recipe has at most"),
    _json_case("recipe", "unknown_parameter", '{"steps": [{"name": "prune", "params": {"x": 1}}]}',
               "$.steps[0].params.x: unknown parameter of prune"),
    _json_case("recipe", "params_list", '{"steps": [{"name": "prune", "params": [1]}]}',
               "$.steps[0].params: must be an object, got a list"),
    _json_case("recipe", "unknown_key", '{"steps": [], "stepz": []}', "$.stepz: unknown key"),
    _json_case("recipe", "not_an_object", "[1, 2]", "$: must be an object, got a list"),
    _json_case("recipe", "no_steps", '{"version": 1}', "$: 'steps' is missing"),
    _json_case("recipe", "result_not_object", '{"steps": [], "result": [1]}',
               "$.result: must be an object, got a list"),
    _json_case("recipe", "html_name", '{"steps": [{"name": "<b>x</b>"}]}',
               "$.steps[0].name: unknown technique '<b>x</b>'"),
    _json_case("recipe", "not_utf8", b'{"steps": ["\xff"]}', "not UTF-8"),
    _json_case("recipe", "oversize", b" " * 5_000_000 + b"{}", "5 MB is too large for a recipe"),
]


def _project_text(entry: str = "", **top: str) -> str:
    entry = entry or ('{"source": {"source": "example:digits-mlp"}, '
                      '"recipe": {"steps": [{"name": "prune"}]}, "result": {"speedup": 1.5}}')
    fields = "".join(f'"{k}": {v}, ' for k, v in top.items())
    return f'{{"format": "quantgui-project", {fields}"entries": [{entry}]}}'


def _entry(recipe: str = '{"steps": []}', result: str = "null") -> str:
    return f'{{"source": {{"source": "m.pt"}}, "recipe": {recipe}, "result": {result}}}'


PROJECT_CASES = [
    _json_case("project", "fifo", None, "not a regular file"),
    _json_case("project", "deep_nesting", _project_text(_entry(result=_deep(100_000))),
               "$.entries[0].result[0][0]", "nested more than 64 levels deep"),
    _json_case("project", "int_beyond_float",
               _project_text(_entry(result=f'{{"size_bytes": {10**400}}}')),
               "$.entries[0].result.size_bytes: is too large for a measurement"),
    _json_case("project", "nan", _project_text(_entry(result='{"speedup": NaN}')),
               "$.entries[0].result.speedup: NaN is not a number JSON allows"),
    _json_case("project", "version_true", _project_text(version="true"),
               "$.version: must be a positive whole number, got true"),
    _json_case("project", "version_0", _project_text(version="0"), "$.version: must be"),
    _json_case("project", "version_negative", _project_text(version="-1"), "$.version: must be"),
    _json_case("project", "version_text", _project_text(version='"1"'), "$.version: must be"),
    _json_case("project", "version_newer", _project_text(version="99"),
               "$.version: project version 99 is newer", "update QuantGUI"),
    _json_case("project", "unknown_step",
               _project_text(_entry('{"steps": [{"name": "foo"}]}')),
               "$.entries[0].recipe.steps[0].name: unknown technique 'foo'"),
    _json_case("project", "5000_duplicates", _project_text(_entry(_DUPLICATES)),
               "$.entries[0].recipe.steps: has 5,000 steps"),
    _json_case("project", "recipe_version_newer",
               _project_text(_entry('{"version": 2, "steps": []}')),
               "$.entries[0].recipe.version: recipe version 2 is newer"),
    _json_case("project", "result_not_object", _project_text(_entry(result="[1]")),
               "$.entries[0].result: must be an object, got a list"),
    _json_case("project", "result_schema_newer", _project_text(_entry(result='{"schema": 2}')),
               "$.entries[0].result: this result was written by a newer QuantGUI (schema 2",
               "update QuantGUI"),
    _json_case("project", "result_schema_text", _project_text(_entry(result='{"schema": "2"}')),
               '$.entries[0].result: "schema" must be a whole number from 1'),
    _json_case("project", "no_source", _project_text('{"recipe": {"steps": []}}'),
               "$.entries[0]: 'source' is missing"),
    _json_case("project", "entries_not_list",
               '{"format": "quantgui-project", "entries": {}}',
               "$.entries: must be a list, got an object"),
    _json_case("project", "wrong_format", '{"format": "other", "entries": []}',
               "$.format: not a QuantGUI project"),
    _json_case("project", "not_an_object", "[]", "$: not a QuantGUI project"),
]


# --- bad data and bad weights (not hostile, just wrong: refused the same way) -----------------------

def data_all_nan(d: Path, canary: Path) -> Case:
    import numpy as np
    path = d / "data.npz"
    np.savez(path, inputs=np.full((10, 64), np.nan, dtype=np.float32),
             labels=np.zeros(10, dtype=np.int64))
    return Case("--data all NaN", ["example:digits-mlp", "--data", str(path)], path,
                ("640 of 640 input values are NaN",), [path])


def data_some_inf(d: Path, canary: Path) -> Case:
    import numpy as np
    path = d / "inf.npz"
    x = np.ones((10, 64), dtype=np.float32)
    x[3, 5], x[7, 1] = np.inf, -np.inf
    np.savez(path, inputs=x)
    return Case("--data with two infinities", ["example:digits-mlp", "--data", str(path)], path,
                ("2 of 640 input values are infinite",), [path])


def data_nan_and_inf_pt(d: Path, canary: Path) -> Case:
    path = d / "mixed.pt"
    x = torch.zeros(4, 64)
    x[0, 0], x[1, 1] = float("nan"), float("inf")
    torch.save({"inputs": x, "labels": torch.zeros(4, dtype=torch.long)}, path)
    return Case("--data .pt with NaN and Inf", ["example:digits-mlp", "--data", str(path)],
                path, ("2 of 256 input values are NaN or infinite",), [path])


def data_empty(d: Path, canary: Path) -> Case:
    import numpy as np
    path = d / "empty.npz"
    np.savez(path, inputs=np.zeros((0, 64), dtype=np.float32))
    return Case("--data with 0 samples", ["example:digits-mlp", "--data", str(path)], path,
                ("holds no samples",), [path])


def data_fifo(d: Path, canary: Path) -> Case:
    path = d / "data.npz"
    os.mkfifo(path)
    return Case("--data is a FIFO", ["example:digits-mlp", "--data", str(path)], path,
                ("not a regular file",))


def example_input_nan(d: Path, canary: Path) -> Case:
    model = d / "m.torchscript.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(model))
    ex = d / "input.pt"
    torch.save(torch.full((2, 4), float("nan")), ex)
    return Case("--example-input all NaN", [str(model), "--example-input", str(ex)], ex,
                ("8 of 8 input values are NaN",), [model, ex])


def weights_with_nan(d: Path, canary: Path) -> Case:
    path = d / "model.pt"
    state = Tiny().state_dict()
    state["fc.weight"][0, :2] = float("nan")
    state["fc.bias"][1] = float("-inf")
    torch.jit.save(torch.jit.script(_with(state)), str(path))
    return Case("model weights hold NaN/Inf", [str(path), "--input-shape", "2,4"], path,
                ("3 of 15 weight values are NaN or infinite (fc.weight, fc.bias)",), [path])


def _with(state: dict) -> nn.Module:
    model = Tiny()
    model.load_state_dict(state)
    return model


# --- the user's own data sources (issue 13): wrong, not hostile; one line naming the file ------

def _net(d: Path, cls: str = "Net") -> list[str]:
    from tests import data_fixtures as fx
    return fx.colour_net(d / "net", cls)


def image_unreadable_stop(d: Path, canary: Path) -> Case:
    from tests import data_fixtures as fx
    root = fx.image_folder(d / "imgs", per_class=2)
    bad = root / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    return Case("an unreadable image with --on-bad-image stop",
                [*_net(d), "--data", str(root), "--on-bad-image", "stop"], bad,
                ("cannot read this image (UnidentifiedImageError",), [bad])


def image_mixed_sizes(d: Path, canary: Path) -> Case:
    from tests import data_fixtures as fx
    root = fx.image_folder(d / "imgs", per_class=2)
    fx.image(root / "cat" / "big.png", 0, size=(20, 18))
    return Case("mixed image sizes without --resize", [*_net(d), "--data", str(root)], root,
                ("mixed image sizes (16x16, 20x18, ...) and no --resize",))


def image_empty_class(d: Path, canary: Path) -> Case:
    from tests import data_fixtures as fx
    root = fx.image_folder(d / "imgs", per_class=2)
    (root / "eel").mkdir()
    return Case("an empty class folder", [*_net(d), "--data", str(root)], root / "eel",
                ("empty class folder (no images)",))


def image_class_count(d: Path, canary: Path) -> Case:
    from tests import data_fixtures as fx
    root = fx.image_folder(d / "imgs", per_class=1, classes=["a", "b", "c", "d"])
    return Case("4 class folders for a 3-output model", [*_net(d), "--data", str(root)], root,
                ("4 classes (a, b, c, d) but the model has 3 outputs",))


def idx_labels_out_of_range(d: Path, canary: Path) -> Case:
    from tests import data_fixtures as fx
    images, labels = fx.idx_set(d / "mnist", "t10k", n=12)
    return Case("IDX labels 0-9 for a 3-output model",
                [*_net(d, "Grey"), "--data", str(images)], images,
                ("labels do not match the model's 3 outputs (labels go up to 9)",))


def idx_truncated(d: Path, canary: Path) -> Case:
    from tests import data_fixtures as fx
    images, _ = fx.idx_set(d / "mnist", "t10k", n=12, gz=False)
    images.write_bytes(images.read_bytes()[:-100])
    return Case("a truncated IDX file", [*_net(d), "--data", str(images)], images,
                ("truncated: dimensions 12 x 28 x 28 need 9,408 bytes of data, found 9,308",),
                [images])


def csv_missing_column(d: Path, canary: Path) -> Case:
    from tests import data_fixtures as fx
    table = fx.csv_table(d / "t.csv")
    return Case("--label-column that is not in the CSV",
                [*_net(d, "Features"), "--data", str(table), "--label-column", "kind"], table,
                ("no column 'kind' (--label-column); columns: f0, f1, f2, label",), [table])


def csv_not_numeric(d: Path, canary: Path) -> Case:
    table = d / "t.csv"
    table.write_text("f0,f1,f2,label\n1,2,3,0\n1,two,3,1\n")
    return Case("a non-numeric feature column", [*_net(d, "Features"), "--data", str(table)],
                table, ("column 'f1' is not numeric (line 3: 'two')",), [table])


def csv_nan_feature(d: Path, canary: Path) -> Case:
    table = d / "t.csv"
    table.write_text("f0,f1,f2,label\n1,2,3,0\n1,nan,3,1\n")
    return Case("a NaN feature", [*_net(d, "Features"), "--data", str(table)], table,
                ("column 'f1' holds nan (line 3)",), [table])


def images_nan_after_preprocessing(d: Path, canary: Path) -> Case:
    from tests import data_fixtures as fx
    root = d / "grey"
    for c, name in enumerate(["a", "b", "c"]):
        from PIL import Image
        (root / name).mkdir(parents=True)
        Image.new("RGB", (8, 8), (90, 90, 90)).save(root / name / "x.png")
    del fx
    return Case("--normalize data on images without variation",
                [*_net(d), "--data", str(root), "--normalize", "data"], root,
                ("--normalize data: the images have no variation",))


def code_nan(d: Path, canary: Path) -> Case:
    loader = d / "loader.py"
    loader.write_text("import torch\n"
                      "def make():\n"
                      "    return [(torch.full((3, 4, 4), float('nan')), 0)] * 4\n")
    spec = f"{loader}:make"
    return Case("a Dataset from code yielding NaN", [*_net(d), "--data", spec], Path(spec),
                ("input values are NaN",))


def _tiny_bert(folder: Path, tokenizer: bool) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog", "film"]
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=16,
                        max_position_embeddings=32, num_labels=2)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    if tokenizer:
        BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(folder)
    return folder


def text_empty_column(d: Path, canary: Path) -> Case:
    data = d / "reviews.csv"
    data.write_text("text,label\nthe dog,0\n,1\nthe film,1\n")
    return Case("an empty text cell", [str(_tiny_bert(d / "bert", True)), "--data", str(data)],
                data, ("the text column 'text' is empty on line 3 (1 empty cell)",), [data])


def text_no_tokenizer(d: Path, canary: Path) -> Case:
    data = d / "reviews.csv"
    data.write_text("text,label\nthe dog,0\nthe film,1\n")
    folder = _tiny_bert(d / "bert", False)
    return Case("text data for a folder without a tokenizer", [str(folder), "--data", str(data),
                                                               "--input-shape", "2,8"],
                folder, ("no usable tokenizer in the model folder",))


DATA_SOURCE_CASES = [image_unreadable_stop, image_mixed_sizes, image_empty_class,
                     image_class_count, idx_labels_out_of_range, idx_truncated,
                     csv_missing_column, csv_not_numeric, csv_nan_feature,
                     images_nan_after_preprocessing, code_nan, text_empty_column,
                     text_no_tokenizer]

DATA_CASES = [data_all_nan, data_some_inf, data_nan_and_inf_pt, data_empty, data_fifo,
              example_input_nan, weights_with_nan]

DATA_CASES += DATA_SOURCE_CASES
