"""Experiment configs: YAML files validated into dataclasses.

A config has five sections plus a seed::

    seed: 0
    task:  {name: classification, kwargs: {...}}        # a key of geomdl.pipelines.tasks.TASKS
    data:  {name: toy_shapes, root: null, kwargs: {...}} # dataset name, optional root folder
    model: {name: tiny_pointnet, kwargs: {...}}          # a key of geomdl.models.MODELS
    optim: {name: adamw, lr: 1.0e-3, schedule: cosine, warmup_steps: 10, ...}
    train: {epochs: 10, batch_size: 32, out_dir: runs/x, ...}

``load_config(path, overrides)`` reads the YAML, applies ``--set key=value`` overrides
(``optim.lr=3e-4``, ``model.kwargs.hidden=64``) and validates everything: an unknown key or a
value of the wrong type raises :class:`ConfigError` naming the key, e.g.
``optim.lr: expected float, got 'abc'``. Strings that spell a number are accepted for numeric
fields (YAML 1.1 reads ``1e-3`` as a string). The free-form ``kwargs`` dicts are checked by the
task against the constructor they are passed to (:func:`check_kwargs`).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

import yaml


class ConfigError(ValueError):
    """An invalid config: the message names the file (when known) and the key."""


@dataclass
class TaskConfig:
    name: str = "classification"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    name: str = "toy_shapes"
    root: Optional[str] = None  # folder of the data files; must exist when given
    num_workers: int = 0
    eval_batch_size: Optional[int] = None  # default: train.batch_size
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    name: str = "tiny_pointnet"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam/adamw
    schedule: Literal["constant", "cosine", "step"] = "constant"
    warmup_steps: int = 0  # linear warm-up from 0 over this many optimiser steps
    min_lr_ratio: float = 0.0  # cosine: final lr = lr * min_lr_ratio
    step_size: int = 1000  # step: multiply lr by gamma every step_size optimiser steps
    gamma: float = 0.1
    grad_clip: Optional[float] = None  # max global gradient norm (None: no clipping)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32  # GLOBAL batch size (split evenly over the DDP processes)
    out_dir: str = "runs/default"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: bf16 on a GPU that supports it, fp16 on other GPUs, off on CPU
    ema_decay: Optional[float] = None  # e.g. 0.999; evaluation then uses the EMA weights
    eval_every: int = 1  # epochs between validations
    monitor: str = "val/loss"  # metric for the best checkpoint and early stopping
    monitor_mode: Literal["min", "max"] = "min"
    early_stopping_patience: Optional[int] = None  # validations without improvement before stopping
    # weights of the final evaluation (results.json): "best" reloads best.pt (the best monitored validation), "last" keeps the end of training
    final_weights: Literal["best", "last"] = "best"
    checkpoint_every: int = 1  # epochs between writes of last.pt
    stop_after_epochs: Optional[int] = None  # stop (as if killed) after this many epochs of this process
    # wall-clock seconds for the whole run (summed over resumes): training stops after the step that spends it
    # (then validates, checkpoints and reports); a cosine schedule follows the spent fraction instead of the steps
    time_budget: Optional[float] = None
    deterministic: bool = True  # torch.use_deterministic_algorithms on CPU
    progress: Literal["auto", "on", "off"] = "auto"  # auto: tqdm bars only when stderr is a TTY
    find_unused_parameters: bool = False  # DDP: set for models whose forward skips some parameters
    # DDP: seconds the other ranks wait for local rank 0 to build (process and cache) the datasets
    prepare_timeout: float = 14400.0
    tensorboard: bool = True  # also log to TensorBoard when the package is installed
    plots: bool = True


@dataclass
class ExperimentConfig:
    seed: int = 0
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# validation


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is Union or origin is types.UnionType:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, dict):
        return origin.__name__
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def coerce(value, tp, key: str):
    """Return ``value`` converted to type ``tp`` or raise ConfigError naming ``key``.

    Supports int, float, str, bool, Any, Optional/Union (also ``X | None``), Literal, list[T], dict[str, T] and
    dataclasses (a mapping is validated field by field).
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is Union or origin is types.UnionType:  # Optional[X], Union[X, Y] and ``X | None``
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if isinstance(value, bool) and ("on" in allowed or "off" in allowed):
            value = "on" if value else "off"  # YAML 1.1 reads on/off as booleans
        if value in allowed and type(value) is type(allowed[allowed.index(value)]):
            return value
        raise ConfigError(f"{key}: expected one of {list(allowed)}, got {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp) or (Any,)
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        _, item = typing.get_args(tp) or (str, Any)
        for k in value:
            if not isinstance(k, str):
                raise ConfigError(f"{key}: keys must be strings, got {k!r}")
        return {k: coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "false", "no", "off"):
            return value.lower() in ("true", "yes", "on")
        raise ConfigError(f"{key}: expected bool, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected int, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected float, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected str, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # pragma: no cover - programming error


def from_dict(cls, data, prefix: str = ""):
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ConfigError."""
    where = prefix or "config"
    if data is None:
        data = {}
    if isinstance(data, str) and "name" in {f.name for f in dataclasses.fields(cls)}:
        data = {"name": data}  # shorthand: `task: classification`
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"{full}: unknown key (allowed in {where}: {', '.join(names)})")
        values[key] = coerce(value, hints[key], full)
    return cls(**values)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. optim.lr=3e-4")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _section(path: list[str]):
    """The config dataclass (a section) at ``path`` of :class:`ExperimentConfig`, else None (a field, a free-form
    ``kwargs`` entry or an unknown key)."""
    tp = ExperimentConfig
    for part in path:
        if not dataclasses.is_dataclass(tp):
            return None
        tp = typing.get_type_hints(tp).get(part)
    return tp if dataclasses.is_dataclass(tp) else None


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Set ``a.b.c=value`` items (values parsed as YAML) in a nested dict (copied).

    A section (``train``, ``optim``, ...) takes a mapping, ``null`` (its defaults) or, for the sections with a
    ``name``, a string (the name); any other value (``--set train=3``) is a ConfigError naming the user's key.
    A mapping or a name updates the section (the other fields keep their values; a new name drops the old
    name's ``kwargs``); ``null`` resets it to the defaults.
    """
    import copy

    data = copy.deepcopy(data) if data else {}
    for item in overrides or []:
        path, value = _parse_override(item)
        section = _section(path)
        if section is not None and not (value is None or isinstance(value, dict) or (
                isinstance(value, str) and any(f.name == "name" for f in dataclasses.fields(section)))):
            key, names = ".".join(path), [f.name for f in dataclasses.fields(section)]
            raise ConfigError(f"--set {item}: {key} is a section, not a single value; set one of its fields with "
                              f"--set {key}.<field>=... (fields: {', '.join(names)})")
        node = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if isinstance(child, str) and i == 0:  # `task: name` shorthand
                child = {"name": child}
            if child is None:
                child = {}
            if not isinstance(child, dict):
                key = ".".join(path[:i + 1])
                if _section(path[:i + 1]) is not None:  # a scalar section in the file: that key is at fault
                    raise ConfigError(f"{key}: expected a mapping (a section), got {child!r}; cannot apply --set {item}")
                raise ConfigError(f"--set {item}: {key} is not a section")
            node[part] = child
            node = child
        old = node.get(path[-1])
        if section is not None and value is not None and isinstance(old, (dict, str)):
            # a section is updated, not replaced: the file's other settings stay (`--set optim=sgd` keeps lr)
            old = {"name": old} if isinstance(old, str) else old
            new = {"name": value} if isinstance(value, str) else value
            if "kwargs" in old and "kwargs" not in new and new.get("name", old.get("name")) != old.get("name"):
                old = {k: v for k, v in old.items() if k != "kwargs"}  # the options of another model/dataset/task
            value = _merge(old, new)
        node[path[-1]] = value
    return data


def _merge(base: dict, update: dict) -> dict:
    """``base`` updated with ``update``, nested mappings merged key by key (copies)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_config_path(path: str | os.PathLike) -> str | os.PathLike:
    """``path`` itself when it names an existing file or has a folder part, else the bundled config of that
    name (``geomdl.configs``: ``"ponita_qm9"`` or ``"ponita_qm9.yaml"``) when there is one, else ``path``.
    A *folder* of that name (e.g. the run folder of ``--out toy_classification``) does not hide the bundled config."""
    if not isinstance(path, str) or os.path.isfile(path) or "/" in path or os.sep in path:
        return path
    from geomdl import configs

    try:
        return configs.path(path)
    except KeyError:
        return path


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: merged by the base class (later keys win)
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (``path=None``: the defaults), apply overrides and validate.

    ``path`` is a YAML file, or the name of a config bundled with geomdl (``geomdl.configs.names()``, e.g.
    ``"toy_classification"``); a file of that name in the working folder takes precedence.

    Raises:
        ConfigError: missing/unreadable file, invalid YAML, unknown key or wrong type; the message
            starts with the file name.
    """
    data: dict = {}
    label = "config"
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike (a YAML file or a bundled config's name), "
                            f"got {type(path).__name__}")
        label = os.fspath(path)
        path = resolve_config_path(path)
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.load(fh, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
        except FileNotFoundError:
            from geomdl import configs

            raise ConfigError(f"{label}: config file not found (or give the name of a bundled config: "
                              f"{', '.join(configs.names())})") from None
        except IsADirectoryError:
            raise ConfigError(f"{label}: is a folder, expected a YAML config file") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{label}: invalid YAML{where}: {problem}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{label}: not a text (UTF-8) file") from None
        if data is None:  # an empty file (or comments only): most likely not the config that was meant
            raise ConfigError(f"{label}: the config is empty; expected a mapping of sections (task, data, model, optim, "
                              f"train, seed); write {{}} for the defaults")
        if not isinstance(data, dict):
            raise ConfigError(f"{label}: expected a mapping of sections at the top level, got {type(data).__name__}")
    try:
        data = apply_overrides(data, overrides)
        return validate(from_dict(ExperimentConfig, data))
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def config_from_dict(data: dict) -> ExperimentConfig:
    """Validate a plain dict (e.g. the config stored in a checkpoint)."""
    return validate(from_dict(ExperimentConfig, data))


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Range checks that types alone cannot express."""
    def need(cond, key, msg):
        if not cond:
            raise ConfigError(f"{key}: {msg}")

    need(-(2 ** 63) <= cfg.seed < 2 ** 64 - 2 ** 40, "seed", f"expected an int in [-2**63, 2**64 - 2**40) (torch seeds "
         f"are 64-bit; ranks add offsets), got {cfg.seed}")
    need(cfg.train.epochs >= 1, "train.epochs", f"expected an int >= 1, got {cfg.train.epochs}")
    need(cfg.train.batch_size >= 1, "train.batch_size", f"expected an int >= 1, got {cfg.train.batch_size}")
    need(cfg.train.eval_every >= 1, "train.eval_every", f"expected an int >= 1, got {cfg.train.eval_every}")
    need(cfg.train.checkpoint_every >= 1, "train.checkpoint_every", f"expected an int >= 1, got {cfg.train.checkpoint_every}")
    def finite(v):
        return "finite " if not math.isfinite(v) else ""

    need(math.isfinite(cfg.optim.lr) and cfg.optim.lr > 0, "optim.lr", f"expected a {finite(cfg.optim.lr)}float > 0, got {cfg.optim.lr}")
    need(math.isfinite(cfg.optim.weight_decay) and cfg.optim.weight_decay >= 0, "optim.weight_decay",
         f"expected a {finite(cfg.optim.weight_decay)}float >= 0, got {cfg.optim.weight_decay}")
    need(0 <= cfg.optim.momentum < 1, "optim.momentum", f"expected a float in [0, 1), got {cfg.optim.momentum}")
    need(0 < cfg.optim.gamma <= 1, "optim.gamma", f"expected a float in (0, 1], got {cfg.optim.gamma}")
    need(cfg.optim.warmup_steps >= 0, "optim.warmup_steps", f"expected an int >= 0, got {cfg.optim.warmup_steps}")
    need(cfg.optim.step_size >= 1, "optim.step_size", f"expected an int >= 1, got {cfg.optim.step_size}")
    need(0 <= cfg.optim.min_lr_ratio <= 1, "optim.min_lr_ratio", f"expected a float in [0, 1], got {cfg.optim.min_lr_ratio}")
    need(len(cfg.optim.betas) == 2 and all(0 <= b < 1 for b in cfg.optim.betas), "optim.betas",
         f"expected two floats in [0, 1), got {cfg.optim.betas}")
    need(cfg.optim.grad_clip is None or (math.isfinite(cfg.optim.grad_clip) and cfg.optim.grad_clip > 0), "optim.grad_clip",
         f"expected a {finite(cfg.optim.grad_clip or 0)}float > 0 or null, got {cfg.optim.grad_clip}")
    need(cfg.train.ema_decay is None or 0 <= cfg.train.ema_decay < 1, "train.ema_decay",
         f"expected a float in [0, 1) or null, got {cfg.train.ema_decay}")
    need(cfg.train.early_stopping_patience is None or cfg.train.early_stopping_patience >= 1,
         "train.early_stopping_patience", f"expected an int >= 1 or null, got {cfg.train.early_stopping_patience}")
    need(cfg.train.time_budget is None or (math.isfinite(cfg.train.time_budget) and cfg.train.time_budget > 0),
         "train.time_budget", f"expected seconds > 0 or null, got {cfg.train.time_budget}")
    need(math.isfinite(cfg.train.prepare_timeout) and cfg.train.prepare_timeout > 0, "train.prepare_timeout",
         f"expected seconds > 0, got {cfg.train.prepare_timeout}")
    need(cfg.train.stop_after_epochs is None or cfg.train.stop_after_epochs >= 1,
         "train.stop_after_epochs", f"expected an int >= 1 or null, got {cfg.train.stop_after_epochs}")
    need(cfg.data.num_workers >= 0, "data.num_workers", f"expected an int >= 0, got {cfg.data.num_workers}")
    need(cfg.data.eval_batch_size is None or cfg.data.eval_batch_size >= 1, "data.eval_batch_size",
         f"expected an int >= 1 or null, got {cfg.data.eval_batch_size}")
    need(cfg.train.out_dir.strip() != "", "train.out_dir", f"expected the run folder, got an empty path {cfg.train.out_dir!r} "
         f"(write . for the working folder)")
    need("/" in cfg.train.monitor, "train.monitor", f"expected 'split/metric' such as 'val/loss', got {cfg.train.monitor!r}")
    return cfg


def dump_config(cfg: ExperimentConfig) -> str:
    """The config as YAML text (what a run folder's ``config.yaml`` holds)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def check_kwargs(fn, kwargs: dict, key: str) -> dict:
    """Check free-form ``kwargs`` (e.g. ``model.kwargs``) against the signature of ``fn``.

    Unknown names raise ConfigError listing the accepted ones; values are coerced to the
    annotated type when it is a simple one (int, float, str, bool, Optional, Literal, list, dict).
    Returns the coerced kwargs.
    """
    target = fn.__init__ if inspect.isclass(fn) else fn
    sig = inspect.signature(target)
    params = {n: p for n, p in sig.parameters.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL,)}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    accepted = [n for n, p in params.items() if p.kind is not p.VAR_KEYWORD]
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolved forward references: skip type coercion
        hints = {}
    out = {}
    for name, value in (kwargs or {}).items():
        if name not in accepted and not var_kw:
            raise ConfigError(f"{key}.{name}: unknown argument of {getattr(fn, '__name__', fn)} (accepted: {', '.join(accepted)})")
        tp = hints.get(name)
        out[name] = _coerce_simple(value, tp, f"{key}.{name}") if tp is not None else value
    return out


def _coerce_simple(value, tp, key):
    try:
        return coerce(value, tp, key)
    except TypeError:  # an annotation we do not validate (e.g. a tensor or a class)
        return value
