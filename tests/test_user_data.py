"""The user's own data (issue 13): each source read from small generated files, the reference
stored as JSON, splits, the paired interval, per-class accuracy and flips in the result."""

import json

import numpy as np
import pytest
import torch

from quantgui import cli
from quantgui.core.data import DataSpec, open_data
from quantgui.core.data.spec import Preprocess, detect_kind
from quantgui.core.errors import UserError
from quantgui.core.measure.paired import accuracy_change, paired_ci, spearman
from quantgui.core.opening.loading import open_model
from quantgui.core.recipe import Recipe
from quantgui.core.results import RunResult
from quantgui.core.run import RunOptions, run_recipe

from tests import data_fixtures as fx

#: One API and engine: no race between them (the numbers are not what is tested here).
DYNAMIC = Recipe.of(("dynamic_int8", {"api": "torch.ao", "engine": "x86"}))
FAST = RunOptions(time_budget_s=0.05, min_rounds=2, max_rounds=4, warmup=1)


def _open(net_args, data):
    weights, _, arch = net_args
    return open_model(weights, arch=arch, data=data)


# --- the reference -------------------------------------------------------------------------------

def test_data_spec_round_trips_through_json_and_a_recipe(tmp_path):
    spec = DataSpec("photos", "image_folder", Preprocess([256], [224, 224], False, "imagenet"),
                    max_samples=500, eval_fraction=0.5, seed=3, on_bad_image="stop")
    again = DataSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec
    recipe = Recipe.of("dynamic_int8")
    recipe.data = spec.to_json()
    recipe.save(tmp_path / "r.json")
    assert DataSpec.from_json(Recipe.load(tmp_path / "r.json").data) == spec
    with pytest.raises(UserError, match="unknown data setting 'colour'"):
        DataSpec.from_json({"path": "x", "colour": 1})
    with pytest.raises(UserError, match="--eval-fraction: a fraction between 0 and 1"):
        DataSpec("x", eval_fraction=1.5).check()


def test_kinds_are_detected_from_the_path(tmp_path):
    fx.image_folder(tmp_path / "classes", per_class=1)
    flat = tmp_path / "flat"
    fx.image(flat / "a.png", 0)
    fx.idx_set(tmp_path / "FashionMNIST" / "raw", "t10k")
    assert detect_kind(str(tmp_path / "classes")) == "image_folder"
    assert detect_kind(str(flat)) == "image_flat"
    assert detect_kind(str(tmp_path)) == "idx"  # torchvision's FashionMNIST/raw layout
    assert detect_kind("t.csv") == "table" and detect_kind("t.csv", True) == "text"
    assert detect_kind("s.txt") == "text" and detect_kind("d.npz") == "tensors"
    assert detect_kind("loader.py:make") == "code" and detect_kind("pkg.mod:make") == "code"


# --- image folders -------------------------------------------------------------------------------

def test_image_folder_accuracy_per_class_flips_and_interval(tmp_path):
    root = fx.image_folder(tmp_path / "imgs", per_class=10)
    loaded = _open(fx.colour_net(tmp_path / "net"), DataSpec(str(root), eval_fraction=0.5))
    test, train = loaded.test, loaded.train
    assert test.lazy and test.classes == fx.CLASSES
    assert len(test) == 15 and len(train) == 15
    # disjoint and stratified: 5 of each class on each side
    assert not set(test.index.tolist()) & set(train.index.tolist())
    assert torch.bincount(test.labels).tolist() == [5, 5, 5]

    # static INT8 calibrates on the lazy calibration split (one engine: no engine race)
    result = run_recipe(loaded, Recipe.of(("static_int8", {"engine": "x86", "api": "fx"})),
                        FAST)
    assert result.before.accuracy == 1.0
    change = result.accuracy_change
    assert change.samples == 15 and [c.name for c in change.per_class] == fx.CLASSES
    assert all(c.samples == 5 and c.before == 1.0 for c in change.per_class)
    assert change.change == pytest.approx(result.after.accuracy - result.before.accuracy)
    assert change.ci95[0] <= change.change <= change.ci95[1]
    again = RunResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again.to_json() == result.to_json()
    assert again.accuracy_change.per_class == change.per_class


def test_flat_folder_is_fidelity_only_and_decodes_batch_by_batch(tmp_path):
    folder = tmp_path / "flat"
    for i in range(7):
        fx.image(folder / f"{i}.jpg", i % 3, seed=i)
    data = open_data(DataSpec(str(folder), overlap=True)).test
    assert not data.labeled and len(data) == 7
    decoded = []
    original = data.reader.decode
    data.reader.decode = lambda id: decoded.append(id) or original(id)
    batches = [inputs.args[0].shape for inputs, _ in data.batches(3)]
    assert batches == [(3, 3, 16, 16), (3, 3, 16, 16), (1, 3, 16, 16)]
    assert decoded == list(range(7))  # each image once, in batches, none kept beyond its batch


def test_preprocessing_resize_crop_grayscale_normalize(tmp_path):
    folder = tmp_path / "imgs"
    fx.image(folder / "a" / "wide.png", 0, size=(40, 20))
    fx.image(folder / "b" / "tall.png", 1, size=(20, 30))
    with pytest.raises(UserError, match="mixed image sizes .* and no --resize"):
        open_data(DataSpec(str(folder), overlap=True))
    pre = Preprocess(resize=[16], crop=[12], grayscale=True, normalize="0.5/0.25")
    data = open_data(DataSpec(str(folder), preprocess=pre, overlap=True)).test
    x = next(data.batches(2))[0].args[0]
    assert x.shape == (2, 1, 12, 12)
    assert float(x.min()) >= -2.0 and float(x.max()) <= 2.0  # (v - 0.5) / 0.25 of [0, 1]
    stats = open_data(DataSpec(str(folder), preprocess=Preprocess([16], [12], False, "data"),
                               overlap=True)).test
    x = torch.cat([b.args[0] for b, _ in stats.batches(1)])
    assert abs(float(x.mean())) < 0.2  # normalized by the data's own statistics


def test_unreadable_images_are_skipped_with_a_count_or_stop(tmp_path, capsys):
    root = fx.image_folder(tmp_path / "imgs", per_class=4)
    good = (root / "dog" / "dog_001.png").read_bytes()
    (root / "dog" / "dog_001.png").write_bytes(good[:40])   # truncated
    (root / "cat" / "broken.jpg").write_bytes(b"not an image")
    net = fx.colour_net(tmp_path / "net")
    assert cli.main(["run", *net, "--data", str(root), "--overlap", "--time-budget", "0.05",
                     "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["skipped_samples"] == 2 and out["accuracy_change"]["samples"] == 11
    code = cli.main(["run", *net, "--data", str(root), "--on-bad-image", "stop"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"quantgui-cli: error: {root / 'cat' / 'broken.jpg'}: cannot read "
                             f"this image (UnidentifiedImageError")


def test_cli_prints_the_interval_and_per_class_lines(tmp_path, capsys):
    root = fx.image_folder(tmp_path / "imgs", per_class=4)
    net = fx.colour_net(tmp_path / "net")
    assert cli.main(["run", *net, "--data", str(root), "--overlap", "--time-budget", "0.05",
                     "--step", "dynamic_int8:api=torch.ao,engine=x86"]) == 0
    out = capsys.readouterr().out
    assert "accuracy change: " in out and "(95% CI " in out and "on 12 samples" in out
    for name in fx.CLASSES:
        assert f"  {name}" in out and "100.00% -> " in out


# --- IDX -------------------------------------------------------------------------------------

def test_idx_files_gzipped_in_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    fx.idx_set(raw, "train", n=20)
    fx.idx_set(raw, "t10k", n=10, seed=1)
    opened = open_data(str(tmp_path))
    assert opened.kind == "idx"
    assert len(opened.test) == 10 and len(opened.train) == 20  # t10k evaluates
    assert opened.test.classes[9] == "Ankle boot"
    x, y = next(opened.test.batches(4))
    assert x.args[0].shape == (4, 1, 28, 28) and x.args[0].max() <= 1.0
    assert y.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x00\x00\x09\x03" + b[4:], "IDX data type 0x09 is not unsigned bytes"),
    (lambda b: b"\x12\x34" + b[2:], "not an IDX file (magic number 1234"),
    (lambda b: b[:-5], "truncated: dimensions 12 x 28 x 28 need 9,408 bytes of data, found 9,403"),
    (lambda b: b + b"xx", "longer than its dimensions"),
])
def test_idx_header_and_byte_count_are_checked(tmp_path, damage, message):
    images, _ = fx.idx_set(tmp_path, "t10k", gz=False)
    images.write_bytes(damage(images.read_bytes()))
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as err:
        open_data(str(images))
    assert str(err.value).startswith(str(images))


def test_idx_gzip_claiming_too_much_is_refused_before_inflating(tmp_path, monkeypatch):
    from quantgui.core.data import idx
    images, _ = fx.idx_set(tmp_path, "t10k")
    monkeypatch.setattr(idx, "MAX_BYTES", 1000)
    with pytest.raises(UserError, match="claims 9,408 bytes of data"):
        open_data(str(images))


# --- tables ---------------------------------------------------------------------------------

def test_csv_table_with_named_labels(tmp_path):
    table = fx.csv_table(tmp_path / "t.csv")
    loaded = _open(fx.colour_net(tmp_path / "net", "Features"),
                   DataSpec(str(table), overlap=True))
    assert loaded.test.classes == fx.CLASSES and loaded.test.inputs.args[0].shape == (12, 3)
    result = run_recipe(loaded, DYNAMIC, FAST)
    assert result.before.accuracy == 1.0
    assert [c.samples for c in result.accuracy_change.per_class] == [4, 4, 4]


def test_table_errors_name_the_file_and_column(tmp_path):
    table = fx.csv_table(tmp_path / "t.csv")
    with pytest.raises(UserError, match=r"t.csv: no column 'kind' \(--label-column\); columns: "
                                        r"f0, f1, f2, label"):
        open_data(DataSpec(str(table), label_column="kind"))
    table.write_text("a,b,label\n1,2,0\n3,x,1\n")
    with pytest.raises(UserError, match=r"t.csv: column 'b' is not numeric \(line 3: 'x'\)"):
        open_data(str(table))
    table.write_text("a,b,label\n1,inf,0\n")
    with pytest.raises(UserError, match="column 'b' holds inf"):
        open_data(str(table))
    pq = tmp_path / "t.parquet"
    pq.write_bytes(b"PAR1")
    import importlib.util
    if importlib.util.find_spec("pyarrow") is None:  # the optional extra is not installed here
        with pytest.raises(UserError, match="reading .parquet needs pyarrow"):
            open_data(str(pq))
    else:
        with pytest.raises(UserError, match="not a readable Parquet file"):
            open_data(str(pq))


# --- text -----------------------------------------------------------------------------------

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a quick brown fox jumps over lazy dog film was wonderful food cold").split()


def _bert(folder, tokenizer=True, labels=2):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=64, num_labels=labels)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    if tokenizer:
        BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    return folder


def test_text_csv_for_a_sequence_classifier(tmp_path):
    folder = _bert(tmp_path / "bert")
    sentences = ["the film was wonderful", "the food was cold", "a quick brown fox",
                 "the lazy dog", "the fox jumps over a dog", "food was wonderful"]
    rows = ["text,label"] + [f"{s},{i % 2}" for i, s in enumerate(sentences)]
    data = tmp_path / "reviews.csv"
    data.write_text("\n".join(rows) + "\n")
    loaded = open_model(folder, data=DataSpec(str(data), max_length=12, overlap=True))
    assert loaded.test.reader.kind == "text" and len(loaded.test) == 6
    x, y = next(loaded.test.batches(4))
    assert x.kwargs["input_ids"].shape == (4, 12) and y.tolist() == [0, 1, 0, 1]
    result = run_recipe(loaded, DYNAMIC, FAST)
    assert result.accuracy_change.samples == 6
    for flip in result.accuracy_change.flips:
        assert flip.item in sentences  # a flipped sample is shown as its sentence

    bare = _bert(tmp_path / "bare", tokenizer=False)
    with pytest.raises(UserError, match="bare: no usable tokenizer in the model folder"):
        open_model(bare, data=DataSpec(str(data)))
    data.write_text("text,label\nthe dog,0\n ,1\n")
    with pytest.raises(UserError, match="reviews.csv: the text column 'text' is empty on line 3"):
        open_model(folder, data=DataSpec(str(data)))


def test_sentence_pairs_with_scores_give_the_spearman_check(tmp_path):
    folder = _bert(tmp_path / "bert")
    pairs = [("the dog", "the lazy dog", 4.0), ("the film", "the food", 1.0),
             ("a fox", "a quick fox", 3.5), ("food was cold", "the dog jumps", 0.5)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps({"sentence1": a, "sentence2": b, "score": s})
                              for a, b, s in pairs))
    loaded = open_model(folder, data=DataSpec(str(data), max_length=8, overlap=True))
    result = run_recipe(loaded, DYNAMIC, FAST)
    sim = result.similarity
    assert sim.pairs == 4 and -1 <= sim.spearman_before <= 1 and -1 <= sim.spearman_after <= 1
    assert RunResult.from_json(result.to_json()).similarity == sim


# --- Dataset from code ------------------------------------------------------------------------

def test_dataset_from_code(tmp_path):
    root = fx.image_folder(tmp_path / "imgs", per_class=2)
    loader = tmp_path / "loader.py"
    loader.write_text(
        "import torch\n"
        "class Colours(torch.utils.data.Dataset):\n"
        "    def __len__(self): return 6\n"
        "    def __getitem__(self, i):\n"
        "        x = torch.zeros(3, 4, 4); x[i % 3] = 1\n"
        "        return x, i % 3\n"
        "def make(): return Colours()\n")
    loaded = _open(fx.colour_net(tmp_path / "net"), DataSpec(f"{loader}:make", overlap=True))
    assert loaded.test.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert run_recipe(loaded, Recipe(), FAST).before.accuracy == 1.0
    del root


def test_code_reference_from_a_recipe_needs_trust(tmp_path, capsys):
    loader = tmp_path / "loader.py"
    canary = tmp_path / "ran"
    loader.write_text(f"open({str(canary)!r}, 'w').close()\ndef make(): return []\n")
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"steps": [], "data": {"path": f"{loader}:make"}}))
    code = cli.main(["run", *fx.colour_net(tmp_path / "net"), "--recipe", str(recipe)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "its data reference runs code" in err[0]
    assert not canary.exists()


# --- the statistics -------------------------------------------------------------------------------

def test_paired_interval_matches_a_direct_bootstrap():
    rng = np.random.default_rng(1)
    before = rng.random(400) < 0.9
    after = before.copy()
    after[:12] = ~after[:12]
    lo, hi = paired_ci(before, after, seed=0)
    diff = after.astype(int) - before.astype(int)
    draws = rng.integers(0, 400, size=(4000, 400))
    direct = np.percentile(diff[draws].mean(1), [2.5, 97.5])
    assert lo == pytest.approx(direct[0], abs=0.004) and hi == pytest.approx(direct[1], abs=0.004)
    assert paired_ci(before, before) == (0.0, 0.0)


def test_accuracy_change_words_per_class_and_flips():
    labels = np.array([0, 0, 1, 1, 2, 2] * 50)
    before = labels.copy()
    after = labels.copy()
    after[:3] = (labels[:3] + 1) % 3
    change = accuracy_change(labels, before, after, np.arange(300) + 1000, ["a", "b", "c"],
                             lambda i: f"item {i}")
    assert change.change == pytest.approx(-0.01)
    assert change.words().startswith("-1.0 pt (95% CI -")
    assert change.verdict() in ("a real drop", "within noise")
    assert change.flips_total == 3 and change.broken == 3 and change.fixed == 0
    assert change.flips[0].id == 1000 and change.flips[0].item == "item 1000"
    assert {c.name: c.samples for c in change.per_class} == {"a": 100, "b": 100, "c": 100}
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 45])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 2, 3]), np.array([3, 2, 2, 1])) == pytest.approx(-1.0)


def test_reading_a_folder_reports_progress_and_stops_on_cancel(tmp_path):
    from quantgui.core.errors import Cancelled
    from quantgui.core.progress import CancelToken, Task
    root = fx.image_folder(tmp_path / "imgs", per_class=3)
    seen = []
    open_data(str(root), task=Task(seen.append))
    assert any(p.message == "reading image headers" for p in seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        open_data(str(root), task=Task(seen.append, token))


def test_preflight_checks_the_class_count_and_image_settings_fit_the_kind(tmp_path):
    from quantgui.core.results import DataInfo, ModelInfo
    from quantgui.core.run.preflight import preflight
    info = ModelInfo("m", "state_dict", "Net", 12, 100, {}, "(4, 3)", output_shape=[4, 3])
    data = DataInfo("photos", 40, True, 0, 3, classes=4)
    assert DataInfo.from_json(data.to_json()) == data
    problems = preflight(info, Recipe(), test=data, train=None, applicability={})
    assert [(p.kind, p.text()) for p in problems] == [
        ("labels_count", "photos: 4 classes but the model has 3 outputs; labels must match "
                         "the model's classes")]
    images, _ = fx.idx_set(tmp_path, "t10k")
    with pytest.raises(UserError, match="--resize applies to image folders, not to IDX files"):
        open_data(DataSpec(str(images), preprocess=Preprocess(resize=[32])))
    table = fx.csv_table(tmp_path / "t.csv")
    with pytest.raises(UserError, match="--normalize applies to image folders, not to table"):
        open_data(DataSpec(str(table), preprocess=Preprocess(normalize="imagenet")))
