import dataclasses
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.pipelines.config import (ConfigError, ExperimentConfig, check_kwargs, config_from_dict, dump_config,
                                     load_config)


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_yaml_values(tmp_path):
    cfg = load_config(_write(tmp_path, "seed: 3\ntask: regression\noptim: {lr: 1e-3, schedule: cosine}\ntrain: {amp: off}\n"))
    assert cfg.seed == 3 and cfg.task.name == "regression"
    assert cfg.optim.lr == 1e-3 and isinstance(cfg.optim.lr, float)  # YAML 1.1 reads 1e-3 as a string
    assert cfg.train.amp == "off"  # YAML 1.1 reads off as False
    assert load_config(None) == ExperimentConfig()


def test_overrides_parse_values_as_yaml():
    cfg = load_config(None, ["optim.lr=3e-4", "train.ema_decay=null", "model.kwargs.hidden_channels=8",
                             "task.kwargs.target_names=[a, b]", "train.plots=false", "data.root=some/dir"])
    assert cfg.optim.lr == 3e-4 and cfg.train.ema_decay is None and cfg.model.kwargs == {"hidden_channels": 8}
    assert cfg.task.kwargs == {"target_names": ["a", "b"]} and cfg.train.plots is False and cfg.data.root == "some/dir"


@pytest.mark.parametrize("text, message", [
    ("optim: {lr: abc}", "optim.lr: expected float, got 'abc'"),
    ("optim: {lr: -1}", "optim.lr: expected a float > 0, got -1.0"),
    ("optim: {betas: [0.9]}", "optim.betas: expected two floats"),
    ("optim: {name: lbfgs}", "optim.name: expected one of ['adamw', 'adam', 'sgd'], got 'lbfgs'"),
    ("train: {epochs: 2.5}", "train.epochs: expected int, got 2.5"),
    ("train: {epochs: true}", "train.epochs: expected int, got True"),
    ("train: {batch_size: 0}", "train.batch_size: expected an int >= 1, got 0"),
    ("train: {ema_decay: 1.5}", "train.ema_decay: expected a float in [0, 1) or null, got 1.5"),
    ("train: {monitor: loss}", "train.monitor: expected 'split/metric'"),
    ("train: {epoch: 3}", "train.epoch: unknown key (allowed in train: epochs,"),
    ("trian: {}", "trian: unknown key (allowed in config: seed, task, data, model, optim, train)"),
    ("model: [1, 2]", "model: expected a mapping, got [1, 2]"),
    ("model: {kwargs: 3}", "model.kwargs: expected a mapping, got 3"),
    ("- 1\n- 2", "expected a mapping of sections at the top level, got list"),
    ("train: {epochs: 3\n", "invalid YAML at line"),
])
def test_errors_name_the_file_and_the_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_bad_overrides():
    with pytest.raises(ConfigError, match=r"--set 'optim.lr': expected key=value"):
        load_config(None, ["optim.lr"])
    with pytest.raises(ConfigError, match="optim.lr: expected float, got {.x.: 1}"):
        load_config(None, ["optim.lr.x=1"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/no/such/config.yaml")


@pytest.mark.parametrize("item", ["train=3", "optim=0.1", "task=3", "model=[1, 2]", "train=", "optim.betas=3"])
def test_overriding_a_section_with_a_scalar_names_the_key(item):
    key = item.split("=")[0]
    if key == "optim.betas":  # a list field, not a section: the type check names it
        with pytest.raises(ConfigError, match=r"^config: optim.betas: expected a list, got 3$"):
            load_config(None, [item])
        return
    with pytest.raises(ConfigError, match=rf"^config: --set {re.escape(item)}: {key} is a section, not a single value; set one of "
                                          rf"its fields with --set {key}.<field>=\.\.\. \(fields: "):
        load_config(None, [item, f"{key}.x=1"])  # reported at the user's item, not at a later one under it


def test_section_shorthands_and_mappings_are_still_accepted(tmp_path):
    cfg = load_config(None, ["task=regression", "data=toy_shapes", "train={epochs: 2}", "optim=sgd", "model=null"])
    assert cfg.task.name == "regression" and cfg.data.name == "toy_shapes" and cfg.train.epochs == 2 and cfg.optim.name == "sgd"
    # a section that is a scalar in the file is reported at the file's key, not at the override under it
    with pytest.raises(ConfigError, match=r"c.yaml: train: expected a mapping \(a section\), got 3; "
                                          r"cannot apply --set train.out_dir=x$"):
        load_config(_write(tmp_path, "train: 3\n"), ["train.out_dir=x"])


def test_check_kwargs_against_a_signature():
    def build(width: int = 2, act: str = "relu", scale: float = 1.0):
        return width

    assert check_kwargs(build, {"width": "4", "scale": 2}, "model.kwargs") == {"width": 4, "scale": 2.0}
    with pytest.raises(ConfigError, match=r"model.kwargs.depth: unknown argument of build \(accepted: width, act, scale\)"):
        check_kwargs(build, {"depth": 3}, "model.kwargs")
    with pytest.raises(ConfigError, match="model.kwargs.width: expected int, got 'wide'"):
        check_kwargs(build, {"width": "wide"}, "model.kwargs")


# ---- property-based: every valid config round-trips; every wrong-typed value is named ------------

_scalars = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31),
    "optim": st.fixed_dictionaries({"lr": st.floats(1e-8, 10), "weight_decay": st.floats(0, 1),
                                    "schedule": st.sampled_from(["constant", "cosine", "step"]),
                                    "warmup_steps": st.integers(0, 100)}),
    "train": st.fixed_dictionaries({"epochs": st.integers(1, 1000), "batch_size": st.integers(1, 512),
                                    "ema_decay": st.none() | st.floats(0, 0.9999), "out_dir": st.text(min_size=1, max_size=20).filter(str.strip)}),  # a blank out_dir is refused
    "model": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=10),
                                    "kwargs": st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5), max_size=3)}),
})


@settings(max_examples=60, deadline=None)
@given(_scalars)
def test_valid_configs_round_trip_through_yaml(data):
    cfg = config_from_dict(data)
    assert config_from_dict(yaml.safe_load(dump_config(cfg))) == cfg
    assert cfg.train.epochs == data["train"]["epochs"] and cfg.optim.lr == data["optim"]["lr"]


_FIELDS = [("optim", "lr", float), ("optim", "warmup_steps", int), ("train", "epochs", int), ("train", "batch_size", int),
           ("train", "plots", bool), ("data", "name", str)]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(_FIELDS), st.one_of(st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
                                            st.text(alphabet="xyz!?", min_size=1, max_size=4)))
def test_wrong_types_are_errors_naming_the_key(field, value):
    section, key, tp = field
    if tp is str and isinstance(value, str):
        return  # a string is a valid str
    with pytest.raises(ConfigError) as info:
        config_from_dict({section: {key: value}})
    assert str(info.value).startswith(f"{section}.{key}: expected ")


def test_every_config_field_has_a_default():
    for section in dataclasses.fields(ExperimentConfig):
        assert section.default is not dataclasses.MISSING or section.default_factory is not dataclasses.MISSING
