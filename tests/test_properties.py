"""Property-based checks of everything that parses user input into recipes and shapes.

For any JSON value (and for values built to be almost valid, so the accepting branch is
exercised too): a recipe or project either parses into something that round-trips through its
JSON unchanged, or is refused with one UserError line that names where and the JSON path; never
another exception (RecursionError, OverflowError, TypeError...). The same for technique
parameters (`params.build`), `parse_kv` and `parse_shape`. The examples are derandomized (the
"quantgui" profile in conftest.py) so CI sees the same ones every run.
"""

import json
import math
from pathlib import Path
import tempfile

from hypothesis import given, settings, strategies as st
import pytest

from quantgui.core import params as params_mod
from quantgui.core.errors import UserError
from quantgui.core.export import ProjectEntry, load_project, save_project
from quantgui.core.opening.example_input import parse_shape
from quantgui.core.recipe import Recipe
from quantgui.core.techniques import all_techniques

EXAMPLES = settings(max_examples=200, deadline=None)
TECHS = all_techniques()
SPECS = {name: params_mod.specs(t.Params) for name, t in TECHS.items()}

huge_ints = st.sampled_from([10**400, -(10**400), 2**63, 2**1024, 10**4299])
numbers = st.one_of(st.integers(), huge_ints,
                    st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12))
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)

# The values that used to crash or slip through: non-finite and huge numbers (also as text),
# booleans where numbers go, containers where scalars go, overlong text.
nasty = st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -(10**400), 2**1024, 10**4299,
                         1e308, "nan", "NaN", "inf", "-inf", "1e999", str(10**400), True, False,
                         None, [1], {"a": 1}, "", "x" * 500])
# Values a parameter could plausibly be given: its own defaults, choices and bounds, numbers
# written as text (as the CLI passes them), the words the parser knows, and anything at all.
known_values = [v for _, v in sorted({repr(v): v for specs in SPECS.values() for s in specs
                                       for v in (s.default, s.min, s.max, *(s.choices or ()))
                                       }.items())]
param_values = st.one_of(
    nasty, st.sampled_from(known_values), numbers, numbers.map(str),
    st.sampled_from(["auto", "none", "yes", "off", "0.5", " 3 ", "1_0", "x86"]), json_values)


def spec_values(spec):
    """Values `spec` accepts: its default, choices, bounds, a number between them, or the same
    written as text."""
    own = [spec.default, *(spec.choices or ()), *(v for v in (spec.min, spec.max) if v is not None)]
    good = st.sampled_from(own)
    if spec.type in (int, float) and spec.min is not None and spec.max is not None:
        good = st.one_of(good, st.integers(int(spec.min), int(spec.max)) if spec.type is int
                         else st.floats(spec.min, spec.max))
    return st.one_of(good, good.map(str))


@st.composite
def step_like(draw):
    """Mostly a well-formed step of a known technique; now and then a malformed name, a value
    of any kind, an unknown parameter or an unknown key (each on its own, so each of them is
    also tried inside otherwise valid recipes)."""
    odd = draw(st.lists(st.integers(0, 19), min_size=4, max_size=4))
    name = draw(st.one_of(st.text(max_size=8), json_values) if odd[0] == 0
                else st.sampled_from(sorted(TECHS)))
    specs = {s.name: s for s in SPECS.get(name, [])} if isinstance(name, str) else {}
    step = {"name": name, "params": {}}
    keys = draw(st.lists(st.sampled_from(sorted(specs)), max_size=3, unique=True)) \
        if specs else []
    for key in keys:
        step["params"][key] = draw(st.one_of(nasty, param_values) if odd[1] < 5
                                   else spec_values(specs[key]))
    if odd[2] == 0:
        step["params"]["bogus"] = draw(param_values)
    if not step["params"] and draw(st.booleans()):
        del step["params"]
    if odd[3] == 0:
        step["extra"] = draw(scalars)
    return step


@st.composite
def recipe_like(draw):
    data = {"steps": draw(st.lists(step_like(), max_size=4, unique_by=lambda s: repr(s["name"])))}
    version = draw(st.integers(0, 4))
    if version == 0:  # one in five malformed or newer
        data["version"] = draw(st.one_of(st.integers(-1, 2), st.booleans(), st.just("1"),
                                         numbers))
    elif version == 1:
        data["version"] = 1
    if draw(st.integers(0, 4)) == 0:
        key = draw(st.sampled_from(["environment", "result", "stepz"]))
        data[key] = draw(json_values)
    return data


entry_like = st.fixed_dictionaries(
    {"source": st.one_of(st.fixed_dictionaries({"source": st.text(max_size=8)},
                                               optional={"origin": json_values}), json_values),
     "recipe": st.one_of(recipe_like(), json_values)},
    optional={"result": st.one_of(st.none(), json_values), "label": scalars,
              "created": scalars})


def _refusal_is_one_line(exc, where):
    text = str(exc)
    assert "\n" not in text and text.startswith(f"{where}: "), text


def _recipe_round_trips_or_is_refused(data):
    try:
        recipe = Recipe.from_json(data, "r.json")
    except UserError as exc:
        _refusal_is_one_line(exc, "r.json")
        assert ": $" in str(exc)
        return
    text = json.dumps(recipe.to_json(), allow_nan=False)
    again = Recipe.from_json(json.loads(text), "r.json")
    assert again == recipe and again.to_json() == recipe.to_json()
    try:
        recipe.validate()  # the order/group rules: a clean answer either way
    except UserError as exc:
        assert "\n" not in str(exc)


@EXAMPLES
@given(json_values)
def test_any_json_is_a_recipe_that_round_trips_or_one_user_error(data):
    _recipe_round_trips_or_is_refused(data)


@EXAMPLES
@given(recipe_like())
def test_almost_valid_recipe_round_trips_or_is_one_user_error(data):
    _recipe_round_trips_or_is_refused(data)


ALL_PARAMS = sorted((name, spec.name) for name, specs in SPECS.items() for spec in specs)


@EXAMPLES
@given(st.sampled_from(ALL_PARAMS), st.one_of(nasty, param_values), st.integers(0, 2))
def test_any_value_of_any_parameter_in_a_recipe_is_coerced_or_named_by_path(param, value, at):
    """Each parameter of each technique, given any value, in any step position."""
    name, key = param
    others = [n for n in sorted(TECHS) if n != name][:at]
    data = {"steps": [{"name": n} for n in others] + [{"name": name, "params": {key: value}}]}
    try:
        recipe = Recipe.from_json(data, "r.json")
    except UserError as exc:
        _refusal_is_one_line(exc, "r.json")
        assert str(exc).startswith(f"r.json: $.steps[{at}].params.{key}: "), str(exc)
        return
    coerced = recipe.steps[at].params[key]
    assert not (isinstance(coerced, float) and not math.isfinite(coerced))
    again = Recipe.from_json(json.loads(json.dumps(recipe.to_json(), allow_nan=False)))
    assert again == recipe


@EXAMPLES
@given(st.one_of(json_values, entry_like))
def test_any_json_is_a_project_entry_that_round_trips_or_one_user_error(data):
    try:
        entry = ProjectEntry.from_json(data, "p.json", ("entries", 0))
    except UserError as exc:
        _refusal_is_one_line(exc, "p.json")
        assert ": $.entries[0]" in str(exc)
        return
    again = ProjectEntry.from_json(json.loads(json.dumps(entry.to_json(), allow_nan=False)))
    assert again.to_json() == entry.to_json()


@EXAMPLES
@given(st.lists(entry_like, max_size=3),
       st.one_of(st.none(), st.integers(-1, 2), st.booleans(), st.just("1"), numbers))
def test_any_project_file_opens_and_saves_again_or_is_one_user_error(entries, version):
    data = {"format": "quantgui-project", "entries": entries}
    if version is not None:
        data["version"] = version
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.qgproj.json"
        path.write_text(json.dumps(data))  # NaN/Infinity written as JSON's non-standard literals
        try:
            project = load_project(path)
        except UserError as exc:
            _refusal_is_one_line(exc, str(path))
            return
        saved = save_project(Path(folder) / "again.qgproj.json", project)
        assert load_project(saved).entries == project.entries


@EXAMPLES
@given(st.sampled_from(sorted(n for n in TECHS if SPECS[n])), st.data())
def test_build_coerces_or_refuses_any_value(name, data):
    specs = {s.name: s for s in SPECS[name]}
    keys = data.draw(st.lists(st.sampled_from(sorted(specs)), max_size=3, unique=True))
    values = {k: data.draw(st.one_of(spec_values(specs[k]), nasty, param_values))
              for k in keys}
    try:
        built = params_mod.build(TECHS[name].Params, values, f"step 1 ({name})")
    except UserError as exc:
        _refusal_is_one_line(exc, f"step 1 ({name})")
        return
    for key in values:
        value, spec = getattr(built, key), specs[key]
        assert value is None or isinstance(value, spec.type), (key, value)
        assert not (isinstance(value, float) and not math.isfinite(value)), (key, value)
        if value is not None and spec.min is not None:
            assert spec.min <= value, (key, value)
        if value is not None and spec.max is not None:
            assert value <= spec.max, (key, value)
        assert params_mod.check(spec, value) == value  # coercing again changes nothing


@EXAMPLES
@given(st.text(max_size=40))
def test_parse_kv_gives_text_pairs_or_one_user_error(text):
    try:
        pairs = params_mod.parse_kv(text, "--step x")
    except UserError as exc:
        _refusal_is_one_line(exc, "--step x")
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs.items())


@EXAMPLES
@given(st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=6),
                       st.text("0123456789.xyz-", max_size=6), max_size=4))
def test_parse_kv_reads_back_what_was_written(pairs):
    assert params_mod.parse_kv(",".join(f"{k}={v}" for k, v in pairs.items())) == pairs


@EXAMPLES
@given(st.one_of(st.text(max_size=30), st.text("0123456789,x()[] -", max_size=30),
                 st.lists(st.one_of(st.integers(), huge_ints), max_size=5).map(
                     lambda ds: ",".join(map(str, ds)))))
def test_parse_shape_gives_a_positive_shape_or_one_user_error(text):
    try:
        shape = parse_shape(text)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("input shape ")
        return
    # (whether it fits in memory is decided where the tensor would be made: core/memory.py)
    assert shape and all(isinstance(d, int) and d > 0 for d in shape)


@EXAMPLES
@given(st.lists(st.integers(1, 64), min_size=1, max_size=4), st.sampled_from([",", "x", ", "]))
def test_parse_shape_reads_back_a_written_shape(dims, sep):
    assert parse_shape(sep.join(map(str, dims))) == tuple(dims)
    assert parse_shape(f"({', '.join(map(str, dims))})") == tuple(dims)


def test_the_generators_reach_the_accepting_branch():
    """Control: the round-trip properties above are not vacuous (almost-valid inputs parse)."""
    accepted = []

    @settings(max_examples=100, deadline=None)
    @given(recipe_like())
    def collect(data):
        try:
            accepted.append(Recipe.from_json(data))
        except UserError:
            pass
    collect()
    assert any(r.steps and any(s.params for s in r.steps) for r in accepted)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400, "nan", [1], {"a": 1}])
def test_a_float_parameter_refuses_non_numbers_by_name(value):
    with pytest.raises(UserError, match=r"^step 1 \(prune\): parameter 'amount': "):
        params_mod.build(TECHS["prune"].Params, {"amount": value}, "step 1 (prune)")
