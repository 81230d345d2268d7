"""``DataList``: clouds or molecules held in memory (a list of ``Data``, or NumPy arrays / tensors) as a dataset.

The in-memory counterpart of :class:`~geomdl.datasets.base.GeometricDataset` (which reads raw *files* and caches
what it processed): nothing is cached, so changing the items is seen at once. ``ds[i]`` is a fresh copy of item
``i`` passed through ``transform`` (drawn anew at every access), so a transform may edit it in place; slices,
sequences of ints and masks give views sharing the items. Works with ``torch_geometric.loader.DataLoader``,
in workers started by ``fork`` or ``spawn``, and wherever a task's ``dataset_for`` returns a dataset.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch

from geomdl.datasets.base import scalar_index, view_positions


def _as_field(value, name: str, index: int) -> torch.Tensor:
    """One field of item ``index`` as a tensor: floating values in the default dtype (float64 NumPy arrays
    included), integers as int64, booleans kept."""
    try:
        t = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name}[{index}] must be a number, array or tensor, got {type(value).__name__}") from exc
    if t.is_complex():
        raise TypeError(f"{name}[{index}] must hold real numbers, got dtype {t.dtype}")
    if t.is_floating_point():
        return t.to(torch.get_default_dtype())
    return t if t.dtype == torch.bool else t.long()


class DataList(torch.utils.data.Dataset):
    """A dataset of ``Data`` items held in memory.

    Args:
        items: a sequence of ``torch_geometric.data.Data`` (or its subclasses: ``PairData``, ``PartData``).
        transform: callable applied to a copy of the item at every access (not cached), e.g. a
            :mod:`geomdl.datasets.transforms` pipeline.

    ``ds[i]`` -> ``transform(copy of items[i])``; ``ds[a:b]``, ``ds[[0, 3]]``, ``ds[mask]`` -> a ``DataList``
    view of those items with the same transform.

    Raises:
        TypeError: an item that is not a ``Data``, or a ``transform`` that is not callable.
    """

    def __init__(self, items: Sequence, transform: Callable | None = None):
        from torch_geometric.data.data import BaseData

        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        if isinstance(items, (BaseData, torch.Tensor, np.ndarray, str, bytes)) or not isinstance(items, Sequence):
            raise TypeError(f"items must be a sequence (list or tuple) of Data, got {type(items).__name__}; "
                            f"for arrays use DataList.from_arrays(pos=[...], y=[...])")
        bad = next((i for i, d in enumerate(items) if not isinstance(d, BaseData)), None)
        if bad is not None:
            raise TypeError(f"items[{bad}] must be a torch_geometric Data, got {type(items[bad]).__name__}")
        self.items, self.transform = list(items), transform

    @classmethod
    def from_arrays(cls, pos: Sequence, *, transform: Callable | None = None, **fields: Sequence) -> "DataList":
        """One ``Data`` per cloud from per-cloud arrays or tensors.

        ``pos``: ``[N_i, 3]`` coordinates of each cloud (``N_i`` may differ; stored in the default dtype);
        ``fields``: further per-cloud values of the same count, e.g. ``y=labels`` (a label ``k`` becomes
        ``y = tensor([k])``, so that batches stack it to ``[B]``), ``x=features`` ``[N_i, C]``, ``normal=...``.
        Floating values are stored in the default dtype, integers as int64.

        Raises:
            ValueError: a ``pos`` entry not ``[N, 3]``, or a field whose count differs from ``pos``'s.
        """
        from torch_geometric.data import Data

        if isinstance(pos, (torch.Tensor, np.ndarray)) and pos.ndim == 2:
            raise ValueError(f"pos must hold one [N, 3] array per cloud, got one array of shape {tuple(pos.shape)}; "
                             f"wrap a single cloud in a list: pos=[cloud]")
        pos = list(pos)
        for name, values in fields.items():
            if len(values) != len(pos):
                raise ValueError(f"{name} has {len(values)} entries but pos has {len(pos)} clouds (one each)")
        items = []
        for i, p in enumerate(pos):
            p = _as_field(p, "pos", i)
            if p.dim() != 2 or p.shape[-1] != 3:
                raise ValueError(f"pos[{i}] must have shape [N, 3], got {tuple(p.shape)}")
            extra = {}
            for name, values in fields.items():
                v = _as_field(values[i], name, i)
                extra[name] = v.reshape(1) if v.dim() == 0 else v
            items.append(Data(pos=p, **extra))
        return cls(items, transform=transform)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx):
        i = scalar_index(idx)
        if i is None:  # a view
            return DataList([self.items[k] for k in view_positions(idx, len(self.items), "DataList").tolist()],
                            self.transform)
        n = len(self.items)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for DataList of length {n}")
        # a copy of each tensor (not deepcopy: that copies the whole storage behind a view): a transform editing
        # it in place leaves the item as it was
        data = copy.copy(self.items[i]).apply(torch.Tensor.clone)
        return self.transform(data) if self.transform is not None else data

    def __repr__(self) -> str:
        return f"DataList({len(self)})"
