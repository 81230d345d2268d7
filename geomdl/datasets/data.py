"""``Data`` subclasses for items that are not one plain point cloud.

* :class:`PairData`: a registration pair. ``pos_ref [N, 3]``, ``pos_src [M, 3]`` and
  ``transform [1, 4, 4]`` mapping *src into ref*: ``pos_ref ~ pos_src @ R.T + t``. Optional
  ``correspondences [2, K]`` (row 0 indexes ``pos_ref``, row 1 ``pos_src``; offset by the cloud sizes
  when batched), ``overlap [1]``. Batch with ``DataLoader(..., follow_batch=["pos_ref", "pos_src"])``
  to get ``pos_ref_batch`` / ``pos_src_batch``.
* :class:`PartData`: a point cloud made of rigid parts. ``part [N]`` (part id of each point, offset
  by the number of parts when batched so that ids stay unique in a batch), ``part_rot [P, 3, 3]``,
  ``part_trans [P, 3]``.
"""
from __future__ import annotations

import torch
from torch_geometric.data import Data


class PairData(Data):
    """Registration pair (see module docstring)."""

    def __inc__(self, key, value, *args, **kwargs):
        if key == "correspondences":
            return torch.tensor([[self.pos_ref.size(0)], [self.pos_src.size(0)]])
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key, value, *args, **kwargs):
        if key == "correspondences":
            return 1
        return super().__cat_dim__(key, value, *args, **kwargs)

    @property
    def num_nodes(self):  # a pair has two clouds; report the source size (PyG needs one number)
        if getattr(self, "pos_src", None) is not None:
            return self.pos_src.size(0)
        return super().num_nodes

    @num_nodes.setter
    def num_nodes(self, value):
        Data.num_nodes.fset(self, value)


class PartData(Data):
    """Point cloud with rigid parts (see module docstring)."""

    def __inc__(self, key, value, *args, **kwargs):
        if key == "part":
            return self.part_rot.size(0) if getattr(self, "part_rot", None) is not None else int(value.max()) + 1
        return super().__inc__(key, value, *args, **kwargs)
