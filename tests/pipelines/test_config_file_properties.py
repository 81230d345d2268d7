"""Property tests of YAML config *files* (geomdl.pipelines.config.load_config): a bundled config damaged anywhere
(cut, or a few bytes overwritten) loads as a valid config or raises ConfigError starting with the file name,
never another exception; dumped configs load back equal through the file loader; ``--set`` overrides equal the
same values given in a mapping. (Dict-level round trips and wrong types: test_config.py.)"""
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geomdl import configs
from geomdl.pipelines.config import ConfigError, ExperimentConfig, config_from_dict, dump_config, load_config

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BUNDLED = sorted(configs.names())


@settings(max_examples=80, **SETTINGS)
@given(data=st.data(), name=st.sampled_from(BUNDLED))
def test_damaged_config_files_load_or_name_the_file(tmp_path, data, name):
    raw = bytearray(open(configs.path(name), "rb").read())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")]
    else:
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            raw[data.draw(st.integers(0, len(raw) - 1), label="at")] = data.draw(
                st.sampled_from(list(b":{}[],-#&*!|>'\"%@`?\t\n ") + [0, 0xFF, ord("x"), ord("9")]), label="byte")
    path = tmp_path / "damaged.yaml"
    path.write_bytes(bytes(raw))
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
        return
    assert isinstance(cfg, ExperimentConfig)


_values = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31),
    "optim": st.fixed_dictionaries({"lr": st.floats(1e-8, 10), "warmup_steps": st.integers(0, 100),
                                    "schedule": st.sampled_from(["constant", "cosine", "step"])}),
    "train": st.fixed_dictionaries({"epochs": st.integers(1, 1000), "ema_decay": st.none() | st.floats(0, 0.9999),
                                    "plots": st.booleans(),
                                    "out_dir": st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                                                       min_size=1, max_size=12)}),
})


@settings(max_examples=40, **SETTINGS)
@given(_values)
def test_dumped_configs_load_back_through_the_file_loader(tmp_path, data):
    cfg = config_from_dict(data)
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg), encoding="utf-8")
    assert load_config(path) == cfg


@settings(max_examples=40, **SETTINGS)
@given(_values)
def test_overrides_equal_the_same_mapping(data):
    items = [f"seed={data['seed']}"]
    for section in ("optim", "train"):
        for key, value in data[section].items():
            items.append(f"{section}.{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}")
    assert load_config(None, items) == config_from_dict(data)

