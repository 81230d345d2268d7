"""Bundled experiment configs: the YAML files of this folder, shipped inside the package.

Because they are package data, ``geomdl train NAME`` finds them from any install (editable, wheel,
sdist), with no checkout at hand. ``NAME`` is a file name here with or without ``.yaml``.

>>> from geomdl import configs
>>> "toy_classification" in configs.names()
True
>>> configs.path("toy_classification").name
'toy_classification.yaml'
"""
from __future__ import annotations

import pathlib

FOLDER = pathlib.Path(__file__).resolve().parent


def names() -> list[str]:
    """Names of the bundled configs (file stems), sorted."""
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def path(name: str) -> pathlib.Path:
    """The file of the bundled config ``name`` (``"ponita_qm9"`` or ``"ponita_qm9.yaml"``).

    Raises:
        TypeError: ``name`` is not a string.
        KeyError: no bundled config has that name; the message lists the names.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    stem = name[:-5] if name.endswith(".yaml") else name
    if stem not in names():
        raise KeyError(f"no bundled config named {name!r}; bundled: {', '.join(names())}")
    return FOLDER / f"{stem}.yaml"
