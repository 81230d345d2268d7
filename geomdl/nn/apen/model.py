"""APEN: approximately piecewise-E(3)-equivariant point network (Atzmon et al., ICLR 2024).

Layer l runs the frame-averaged backbone on every part of the current partition Z_l
(``phi_III`` of methods.md 4.3: hard assignment, parts processed as separate point subsets, never by
zero-masking), producing invariant per-point features and per-point votes Y_l (predicted centres of
the rigid part of each point). Z_1 is the FPS/Voronoi partition (``initial_parts`` cells per cloud)
and Z_{l+1} is obtained by clustering Y_l with an isotropic GMM of width ``sigmas[l]``
(:func:`~geomdl.nn.apen.partition.cluster_votes`); increasing widths coarsen the partition layer by
layer. The head maps the concatenated invariant features to per-point logits (segmentation) or
pools them per cloud (classification).

With a fixed partition (``partition=`` given, e.g. the ground-truth parts or a refinement of them),
the outputs are exactly invariant (logits) / equivariant (votes) under an independent rigid motion
of every part. With predicted partitions the error is bounded by how often a predicted part straddles
two true parts (see :mod:`geomdl.nn.apen.measure`).
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.nn.apen.backbone import FrameAveragedPointNet, _mlp
from geomdl.nn.apen.partition import cluster_votes, compact_labels, fps_partition
from geomdl.nn.message_passing import check_batch_vector, check_dtypes, check_positions, data_num_graphs
from geomdl.ops import scatter
from geomdl.ops._validation import check_int


def _check_labels(labels, name: str, n: int) -> torch.Tensor:
    """Part ids ``[N]``: an integer tensor with one entry per point."""
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.is_complex():
        raise TypeError(f"{name} must be an integer tensor [N] of part ids, got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape [{n}] (one part id per point), got {tuple(labels.shape)}")
    return labels


def _parts_within_clouds(labels: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Compact part ids ``0..P-1`` of the (cloud, label) pairs: a part never spans two clouds, so ids that
    restart in every cloud (0..K_b-1 per cloud) give different parts in different clouds."""
    if labels.numel() == 0:
        return compact_labels(labels.long())
    uniq, inv = torch.unique(torch.stack([batch, labels.long()]), dim=1, return_inverse=True)
    return inv, uniq.shape[1]  # an int (a SymInt under torch.export, where int() fails)


class APEN(nn.Module):
    """Approximately piecewise-E(3)-equivariant network.

    Args:
        num_classes: output classes (per point for ``task="segmentation"``, per cloud for ``"classification"``).
        in_features: invariant input features per point (default 0: positions only).
        hidden: width of the backbones.
        num_layers: number of APEN layers (default 4).
        initial_parts: FPS cells per cloud for the first partition (default 32).
        sigmas: GMM widths for the partitions after layers 1..num_layers-1 (increasing: coarser).
        reflections: frame averaging over 8 frames (E(3)) or 4 (SE(3)).
        task: ``"segmentation"`` or ``"classification"``.
        em_iterations, merge_threshold: EM settings of the partition prediction.

    Forward:
        ``model(pos [N, 3], batch [N], x=None, partition=None)`` -> dict with ``logits``
        (``[N, C]`` or ``[B, C]``), ``votes`` (list of ``[N, 3]`` per layer), ``partitions`` (list
        of ``[N]`` part ids used by each layer), ``soft`` (soft assignments, one per predicted
        partition) and ``features`` (the invariant per-point features of every layer, ``[N, hidden]``).
        ``partition`` fixes the partition of every layer (no prediction); ``initial_partition``
        fixes only the first one (``Z_1``, e.g. carried along with the points from another pose) and
        the later ones are predicted from the votes. Part ids may be unique across the batch or restart
        in every cloud (a part never spans two clouds).
        Also accepts a PyG batch: ``model(data)``.
    """

    def __init__(self, num_classes: int, in_features: int = 0, hidden: int = 64, num_layers: int = 4,
                 initial_parts: int = 32, sigmas=(0.05, 0.1, 0.2), reflections: bool = True,
                 task: str = "segmentation", em_iterations: int = 10, merge_threshold: float = 1.0):
        super().__init__()
        if task not in ("segmentation", "classification"):
            raise ValueError(f"task must be 'segmentation' or 'classification', got {task!r}")
        for name, value, low in (("num_classes", num_classes, 1), ("in_features", in_features, 0), ("hidden", hidden, 1),
                                 ("num_layers", num_layers, 1), ("initial_parts", initial_parts, 1),
                                 ("em_iterations", em_iterations, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if isinstance(sigmas, (str, bytes)) or not hasattr(sigmas, "__iter__"):
            raise ValueError(f"sigmas must be a sequence of {num_layers - 1} positive widths (one per predicted partition), "
                             f"got {sigmas!r}")
        sigmas = tuple(float(s) for s in sigmas)
        if len(sigmas) < num_layers - 1 or not all(0 < s < float("inf") for s in sigmas):
            raise ValueError(f"sigmas needs {num_layers - 1} positive widths (one per predicted partition), got {sigmas}")
        if isinstance(merge_threshold, bool) or not isinstance(merge_threshold, (int, float)) or not 0 <= merge_threshold < float("inf"):
            raise ValueError(f"merge_threshold must be a finite number >= 0 (in units of sigma), got {merge_threshold!r}")
        self.task, self.num_classes, self.in_features = task, num_classes, in_features
        self.initial_parts, self.sigmas = initial_parts, sigmas
        self.em_iterations, self.merge_threshold = em_iterations, merge_threshold
        self.layers = nn.ModuleList(
            FrameAveragedPointNet(in_features if i == 0 else in_features + hidden, hidden, hidden, reflections)
            for i in range(num_layers)
        )
        self.head = _mlp([hidden * num_layers, hidden, num_classes])

    def forward(self, pos, batch=None, x=None, partition=None, initial_partition=None, num_clouds: int | None = None):
        """See the class docstring (Forward). ``pos [N, 3]`` float or a PyG ``Data``/``Batch``, ``batch [N]``
        sorted cloud ids (default one cloud), ``x [N, in_features]`` or None, ``partition`` /
        ``initial_partition`` ``[N]`` int part ids or None -> dict of ``logits``, ``votes``, ``partitions``,
        ``soft``, ``features``. ``num_clouds``: rows of the classification logits (default the largest id in
        ``batch`` + 1, or a PyG ``Batch``'s ``num_graphs``: trailing empty clouds keep their rows; smaller than
        an id in ``batch`` is an error).

        Raises ``ValueError`` for non-finite ``pos``, bad shapes, an unsorted ``batch``; ``TypeError`` for
        non-integer part labels, input dtypes other than the parameters', or float16/bfloat16 outside autocast.
        """
        if hasattr(pos, "pos") and batch is None:  # a PyG Data/Batch
            data = pos
            pos, batch = data.pos, getattr(data, "batch", None)
            x = getattr(data, "x", None) if self.in_features else None
            num_clouds = data_num_graphs(data) if num_clouds is None else num_clouds
        pos = check_positions(pos, "pos", dim=3)
        # (only CPU autocast runs eigh in float32; CUDA has no autocast kernel for it)
        if pos.dtype in (torch.float16, torch.bfloat16) and not (pos.device.type == "cpu" and torch.is_autocast_enabled("cpu")):
            raise TypeError(f"pos has dtype {pos.dtype}: APEN's PCA frames need float32 or float64 (torch.linalg.eigh has "
                            "no half-precision kernel); convert the model and inputs (torch.autocast with float32 "
                            "inputs runs the layers in half precision)")
        # else an opaque eigh failure inside the PCA frames (eager only: a data-dependent branch)
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(pos).all()):
            raise ValueError("pos has non-finite entries (NaN or inf)")
        check_dtypes(self.head[0].weight, pos=pos, x=x)
        # sorted, non-negative cloud ids (the EM of cluster_votes pads the clouds by their ids)
        batch = check_batch_vector(batch, pos.shape[0], pos.device)
        if partition is not None:
            part, num_parts = _parts_within_clouds(_check_labels(partition, "partition", pos.shape[0]), batch)
        elif initial_partition is not None:
            part, num_parts = _parts_within_clouds(_check_labels(initial_partition, "initial_partition", pos.shape[0]), batch)
        else:
            part, num_parts = fps_partition(pos, batch, self.initial_parts)
        feats, votes, parts, soft = [], [], [part], []
        h = x
        for i, layer in enumerate(self.layers):
            f, y = layer(pos, h, part, num_parts)
            feats.append(f)
            votes.append(y)
            h = f if x is None else torch.cat([x, f], dim=1)
            if i + 1 < len(self.layers):
                if partition is None:
                    part, num_parts, q, _ = cluster_votes(y, part, batch, self.sigmas[i], self.em_iterations, self.merge_threshold)
                    soft.append(q)
                parts.append(part)
        z = torch.cat(feats, dim=1)
        if self.task == "classification":
            nb = batch.max().item() + 1 if batch.numel() else 0
            if num_clouds is not None and not torch.compiler.is_compiling():
                num_clouds = check_int(num_clouds, "num_clouds", 0)
                if num_clouds < nb:
                    raise ValueError(f"num_clouds must be larger than every cloud id in batch (max {nb - 1}), got {num_clouds}")
                nb = num_clouds  # trailing empty clouds: a (zero-feature) row each
            z = scatter(z, batch, dim_size=nb, reduce="mean")
        return {"logits": self.head(z), "votes": votes, "partitions": parts, "soft": soft, "features": feats}


class GlobalFrameAveragedNet(APEN):
    """The globally E(3)-equivariant baseline: the same backbone on the whole cloud (one part).

    Args:
        num_classes, in_features, hidden, num_layers, reflections, task: as :class:`APEN` (defaults
            ``in_features=0``, ``hidden=64``, ``num_layers=4``, ``reflections=True``, ``task="segmentation"``).
    """

    def __init__(self, num_classes: int, in_features: int = 0, hidden: int = 64, num_layers: int = 4,
                 reflections: bool = True, task: str = "segmentation"):
        super().__init__(num_classes, in_features, hidden, num_layers, initial_parts=1, sigmas=(1.0,) * max(0, num_layers - 1),
                         reflections=reflections, task=task)

    def forward(self, pos, batch=None, x=None, partition=None, initial_partition=None, num_clouds: int | None = None):
        """As :meth:`APEN.forward`; ``partition`` and ``initial_partition`` are accepted (so that the
        measures of :mod:`geomdl.nn.apen.measure` run on the baseline) and ignored: one part per cloud.

        ``pos [N, 3]`` (or a PyG batch), ``batch [N]`` (default one cloud), ``x [N, in_features]`` or None ->
        the dict of :meth:`APEN.forward`."""
        if hasattr(pos, "pos") and batch is None:
            data = pos
            pos, batch = data.pos, getattr(data, "batch", None)
            x = getattr(data, "x", None) if self.in_features else None
            num_clouds = data_num_graphs(data) if num_clouds is None else num_clouds
        if batch is None:
            batch = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
        return super().forward(pos, batch, x, partition=batch, num_clouds=num_clouds)
