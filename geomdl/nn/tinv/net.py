r"""``TinvNet``: any point network made invariant by feeding it TinvNN coordinates.

.. math::  f_{\mathrm{Tinv}}(X) = \sum_f w_f\, g\big(z(X) R_f\big)

where :math:`z` is :func:`~geomdl.nn.tinv.mds_embedding` (invariant to rotations, reflections,
translations and scalings, equivariant to point permutations), :math:`g` the wrapped backbone and
:math:`\{R_f, w_f\}` the frames (one identity frame unless ``degenerate="average"`` finds ambiguous axes).
With a permutation-invariant backbone the output is exactly invariant under all of these, whatever the
backbone is: no special layers, no rotation augmentation.
"""
from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from types import SimpleNamespace

import torch
from torch import nn

from geomdl.nn.tinv.embedding import mds_embedding
from geomdl.nn.tinv.result import MDSResult
from geomdl.ops import scatter
from geomdl.ops._validation import batch_to_ptr


def _empty_like(data):
    """An empty batch object of the input's kind: a PyG ``Data`` for PyG input, else a namespace
    (so that plain inputs never import torch_geometric)."""
    pyg = sys.modules.get("torch_geometric.data")
    if pyg is not None and isinstance(data, pyg.data.BaseData):
        return pyg.Data()
    return SimpleNamespace()


class TinvNet(nn.Module):
    """Wrap a point network so that it sees TinvNN coordinates instead of raw positions.

    Args:
        backbone: a module called as ``backbone(data)`` on a batch with ``pos [N, P]``, ``batch [N]`` and the
            other attributes of the input (e.g. any model of ``geomdl.models``).
        dim: MDS components ``k`` (default 3; 2 for planar data).
        pos_dim: width ``P`` of the positions the backbone expects (default ``max(dim, 3)``); the
            embedding is zero-padded up to it.
        degenerate: ``"pick"`` (default) or ``"average"`` (average the backbone over ambiguous frames of
            symmetric shapes; see :func:`~geomdl.nn.tinv.mds_embedding`).
        scale: ``"rms"`` (default), ``"max"`` (unit-sphere, for backbones with radius hyper-parameters)
            or ``None`` (keep the size: invariant to rotations/translations only).
        output: ``"graph"`` (default; backbone returns ``[B, C]``) or ``"node"`` (``[N, C]``, e.g. segmentation).
        vector_keys: per-point vector attributes (e.g. ``("normal",)``) rotated into the canonical frame
            (``v @ V S``, unit length kept) so that they stay invariant too. On planar or collinear clouds the
            null axes are not fixed by the points: there a vector's components along them are replaced by their
            norm (first null column; the others 0).
        gap_tol, sign_tol, max_frames: see :func:`~geomdl.nn.tinv.mds_embedding`.

    Shapes:
        ``data.pos [N, d]``, ``data.batch [N]`` -> ``[B, C]`` (graph) or ``[N, C]`` (node).

    Other attributes (``x``, labels) reach the backbone unchanged: only invariant features belong in ``x``
    (use ``vector_keys`` for normals and other vectors). For graphs given by distances only, embed them with
    ``mds_embedding(distances=...)`` and feed the result as node features.

    Empty graphs of a batch (0 points, e.g. after a crop) contribute no points and no frames: with
    ``output="graph"`` their row is the average over no frames, zeros; the other graphs' outputs are exactly
    those of the batch without them (the backbone never sees an empty graph).

    The embedding is computed without gradient (it is not learnable, and eigenvector gradients blow up
    at repeated eigenvalues). ``last_embedding`` keeps the :class:`MDSResult` of the last call
    (diagnostics for callers).
    """

    def __init__(self, backbone: nn.Module, dim: int = 3, *, pos_dim: int | None = None, degenerate: str = "pick",
                 scale: str | None = "rms", output: str = "graph", vector_keys: Sequence[str] = (),
                 gap_tol: float = 1e-2, sign_tol: float = 1e-2, max_frames: int = 128):
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        if output not in ("graph", "node"):
            raise ValueError(f"output must be 'graph' or 'node', got {output!r}")
        if isinstance(vector_keys, str):
            vector_keys = (vector_keys,)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        pos_dim = max(dim, 3) if pos_dim is None else pos_dim
        if not isinstance(pos_dim, int) or pos_dim < dim:
            raise ValueError(f"pos_dim must be an int >= dim={dim}, got {pos_dim!r}")
        # validate the MDS options once, here, rather than on the first batch
        mds_embedding(torch.eye(max(dim, 2), dtype=torch.float64), dim, scale=scale, degenerate=degenerate,
                      gap_tol=gap_tol, sign_tol=sign_tol, max_frames=max_frames)
        self.backbone = backbone
        self.dim, self.pos_dim, self.degenerate, self.scale, self.output = dim, pos_dim, degenerate, scale, output
        self.vector_keys = tuple(vector_keys)
        self.gap_tol, self.sign_tol, self.max_frames = gap_tol, sign_tol, max_frames
        self.last_embedding = None

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, pos_dim={self.pos_dim}, degenerate={self.degenerate!r}, scale={self.scale!r}, "
                f"output={self.output!r}, vector_keys={self.vector_keys}")

    def embed(self, pos: torch.Tensor, batch: torch.Tensor | None = None, num_clouds: int | None = None):
        """The :class:`MDSResult` of ``pos`` with this module's options (no gradient).

        ``pos [N, D]`` float, ``batch [N]`` sorted cloud ids (default one cloud), ``num_clouds`` the number
        of clouds ``B`` (default from ``batch``); see :func:`geomdl.nn.tinv.mds_embedding`.
        """
        with torch.no_grad():
            return mds_embedding(pos.detach(), self.dim, batch, scale=self.scale, degenerate=self.degenerate,
                                 gap_tol=self.gap_tol, sign_tol=self.sign_tol, max_frames=self.max_frames,
                                 num_clouds=num_clouds)

    def _embed_with_empty(self, pos: torch.Tensor, batch: torch.Tensor, keep: torch.Tensor) -> MDSResult:
        """:meth:`embed` of a batch where only the clouds ``keep [B]`` have points.

        The non-empty clouds are embedded alone (bitwise as without the empty ones) and the result is expanded
        to all ``B`` clouds: an empty cloud gets no frames (weight 0), NaN spectra and identity geometry.
        """
        num_clouds = keep.numel()
        remap = torch.cumsum(keep.long(), 0) - 1
        part = self.embed(pos, remap[batch], int(keep.sum()))

        def expand(value, fill):
            if value is None:
                return None
            out = value.new_full((num_clouds, *value.shape[1:]), fill)
            out[keep] = value
            return out

        nan = float("nan")
        frames = expand(part.frames, 0)
        frames[~keep, 0] = torch.eye(self.dim, dtype=frames.dtype, device=frames.device)
        rotation = expand(part.rotation, 0)
        if rotation is not None:
            rotation[~keep] = torch.eye(rotation.shape[1], rotation.shape[2], dtype=rotation.dtype, device=rotation.device)
        return MDSResult(embedding=part.embedding, batch=batch, eigenvalues=expand(part.eigenvalues, nan),
                         gaps=expand(part.gaps, nan), sign_margins=expand(part.sign_margins, nan),
                         degenerate=expand(part.degenerate, False), scale=expand(part.scale, 1),
                         frames=frames, frame_weights=expand(part.frame_weights, 0),
                         frames_truncated=expand(part.frames_truncated, False),
                         truncation_ambiguous=expand(part.truncation_ambiguous, False),
                         negative_mass=expand(part.negative_mass, 0), center=expand(part.center, 0), rotation=rotation)

    def _pad(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[1] < self.pos_dim:
            z = torch.cat([z, z.new_zeros(z.shape[0], self.pos_dim - z.shape[1])], dim=1)
        return z

    def _canonical_vectors(self, data, result, batch) -> dict:
        out = {}
        for key in self.vector_keys:
            vec = getattr(data, key, None)
            if not isinstance(vec, torch.Tensor) or vec.shape != data.pos.shape:
                raise ValueError(f"data.{key} must be a tensor shaped like pos {tuple(data.pos.shape)}, got "
                                 f"{getattr(vec, 'shape', None)}")
            if result.rotation is None:
                raise ValueError("vector_keys need the position route (a rotation), not distances")
            frame = (result.rotation * result.scale[:, None, None])[batch].to(vec.dtype)  # V S, orthonormal columns
            out[key] = self._fold_null_axes(vec, frame, result.sign_margins[batch])
        return out

    @staticmethod
    def _fold_null_axes(vec: torch.Tensor, frame: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        """Canonical components ``vec @ frame [N, k]`` of ``vec [N, d]`` (``frame [N, d, k]``), with the null space
        of rank-deficient clouds folded.

        The axes of a planar or collinear cloud's null space (``margins [N, k]`` NaN) are not fixed by its points:
        rotations and reflections that fix the points turn them, so the components of ``vec`` along them are
        arbitrary. They are replaced by the norm of ``vec``'s projection on the whole null space, in the first null
        column (0 in the others): invariant, and ``|comp| = |vec|`` is kept.
        """
        comp = torch.einsum("nd,ndk->nk", vec, frame)
        null = torch.isnan(margins)
        if not bool(null.any()):
            return comp
        comp = comp.masked_fill(null, 0)
        null_part = (vec - torch.einsum("nk,ndk->nd", comp, frame)).norm(dim=1)  # (no cancellation of squares)
        first = null & (null.cumsum(1) == 1)
        return torch.where(first, null_part[:, None], comp)

    def forward(self, data) -> torch.Tensor:
        """``data``: a batch (PyG ``Data``/``Batch`` or any object) with ``pos [N, d]``, optional ``batch [N]``."""
        pos = getattr(data, "pos", None)
        if not isinstance(pos, torch.Tensor):
            raise TypeError(f"data.pos must be a tensor [N, d], got {type(pos).__name__}")
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
        num_graphs = getattr(data, "num_graphs", None)
        num_graphs = int(num_graphs) if isinstance(num_graphs, int) and num_graphs > 0 else None
        keep = self._non_empty(batch, num_graphs)
        result = self.embed(pos, batch, num_graphs) if keep is None else self._embed_with_empty(pos, batch, keep)
        self.last_embedding = result
        vectors = self._canonical_vectors(data, result, batch)
        if result.frame_weights.shape[1] == 1:
            new = copy.copy(data)
            new.pos = self._pad(result.embedding)
            for key, value in vectors.items():
                setattr(new, key, self._pad(value))
            if getattr(data, "batch", None) is None and hasattr(new, "batch"):
                new.batch = batch
            return self.backbone(new) if keep is None else self._without_empty(new, data, batch, keep, vectors)
        return self._frame_average(data, result, batch, vectors)

    @staticmethod
    def _non_empty(batch: torch.Tensor, num_graphs: int | None) -> torch.Tensor | None:
        """``[B]`` mask of the clouds with points when some cloud of a batch with points is empty, else None.

        Empty graphs (e.g. cropped to nothing) contribute no points and no frames: ``output="graph"`` gives them
        the frame average over no frames, a zero row, and the other clouds' outputs are exactly those of the
        batch without them. A batch without any point is left to :func:`mds_embedding` (an error).
        """
        if batch.dim() != 1 or batch.numel() == 0 or batch.is_floating_point() or batch.dtype == torch.bool:
            return None  # invalid or pointless input: mds_embedding raises its own error
        if int(batch.min()) < 0 or (batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any())):
            return None
        inferred = int(batch.max()) + 1
        num_clouds = inferred if num_graphs is None or num_graphs < inferred else num_graphs
        keep = torch.bincount(batch.long(), minlength=num_clouds) > 0
        return None if bool(keep.all()) else keep

    def _without_empty(self, new, data, batch, keep, vectors) -> torch.Tensor:
        """Single-frame forward of ``new`` (``data`` with canonical positions) when some clouds are empty: the
        backbone sees the non-empty clouds only, renumbered; graph-level rows of empty clouds are zeros."""
        num_points, num_clouds, num_kept = data.pos.shape[0], keep.numel(), int(keep.sum())
        for key in (data.keys() if callable(getattr(data, "keys", None)) else vars(data)):
            value = getattr(data, key)
            if key in ("pos", "batch", "ptr") or key in vectors or not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            if value.shape[0] == num_clouds and value.shape[0] != num_points:
                setattr(new, key, value[keep])  # graph-level attributes (labels) of the kept clouds
        remap = torch.cumsum(keep.long(), 0) - 1
        new.batch = remap[batch]
        if getattr(data, "ptr", None) is not None:
            new.ptr = batch_to_ptr(new.batch, num_kept)
        if hasattr(new, "_num_graphs"):  # PyG Batch
            new._num_graphs = num_kept
        elif isinstance(getattr(data, "num_graphs", None), int):
            new.num_graphs = num_kept
        out = self.backbone(new)
        if self.output == "node":
            if out.shape[0] != num_points:
                raise ValueError(f"output='node' but the backbone returned {out.shape[0]} rows for {num_points} points")
            return out
        if out.shape[0] != num_kept:
            raise ValueError(f"output='graph' but the backbone returned {out.shape[0]} rows for {num_kept} non-empty clouds")
        full = out.new_zeros(num_clouds, *out.shape[1:])
        full[keep] = out
        return full

    def _frame_average(self, data, result, batch, vectors) -> torch.Tensor:
        z, pair, point, weight, cloud = result.frame_embeddings()
        num_points, num_clouds, num_pairs = data.pos.shape[0], result.num_clouds, weight.numel()
        if getattr(data, "edge_index", None) is not None:
            raise ValueError("degenerate='average' expands every cloud into several frames and cannot expand a "
                             "given edge_index; let the backbone build its graph from pos")
        new = _empty_like(data)
        for key in (data.keys() if callable(getattr(data, "keys", None)) else vars(data)):
            value = getattr(data, key)
            if key in ("pos", "batch", "ptr") or key in vectors or not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            if value.shape[0] == num_points:
                setattr(new, key, value[point])
            elif value.shape[0] == num_clouds:
                setattr(new, key, value[cloud])
        new.pos = self._pad(z)
        if vectors:
            # frame R_f of every (cloud, frame) pair, then of every row: vectors turn with the positions
            frame_ptr = torch.cumsum(result.num_frames, 0) - result.num_frames
            pair_frame = torch.arange(num_pairs, device=cloud.device) - frame_ptr[cloud]
            row_rot = result.frames[cloud, pair_frame][pair]  # [M, k, k]
            for key, value in vectors.items():
                setattr(new, key, self._pad((value[point].unsqueeze(2) * row_rot.to(value.dtype)).sum(dim=1)))
        new.batch = pair
        new.ptr = batch_to_ptr(pair, num_pairs)
        out = self.backbone(new)
        w = weight.to(out.dtype)
        if self.output == "graph":
            if out.shape[0] != num_pairs:
                raise ValueError(f"output='graph' but the backbone returned {out.shape[0]} rows for {num_pairs} clouds")
            return scatter(out * w.view(-1, *([1] * (out.dim() - 1))), cloud, dim_size=num_clouds, reduce="sum")
        if out.shape[0] != point.numel():
            raise ValueError(f"output='node' but the backbone returned {out.shape[0]} rows for {point.numel()} points")
        return scatter(out * w[pair].view(-1, *([1] * (out.dim() - 1))), point, dim_size=num_points, reduce="sum")
