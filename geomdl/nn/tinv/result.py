"""The result of :func:`geomdl.nn.tinv.mds_embedding`: the embedding and its diagnostics."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class MDSResult:
    """Transformation-invariant embedding of ``B`` clouds with ``N`` points in all, ``k = dim`` components.

    Attributes:
        embedding: ``[N, k]`` invariant coordinates ``z_i`` (frame 0 when several frames are kept).
        batch: ``[N]`` cloud index of every row of ``embedding``.
        eigenvalues: ``[B, k]`` kept eigenvalues of the normalised Gram matrix divided by the cloud size,
            descending (``lambda_j / n``; with ``scale="rms"`` all of a Euclidean cloud's sum to 1).
        gaps: ``[B, k]`` relative eigen-gaps ``(lambda_j - lambda_{j+1}) / lambda_1``; for the last kept
            component the gap to the first dropped eigenvalue (taken as 0 when none is dropped). Small
            values mean the axis is ill-defined (repeated eigenvalues: axisymmetric or cubic shapes).
        sign_margins: ``[B, k]`` ``|skewness|`` of every column, the statistic that fixes its sign; NaN for
            null columns (``lambda_j ~ 0``), whose sign is irrelevant. Small values mean the sign is
            ill-defined (mirror-symmetric shapes).
        degenerate: ``[B]`` bool, True where any gap < ``gap_tol`` or any margin < ``sign_tol``.
        scale: ``[B]`` the scale ``s`` the cloud was divided by (1 with ``scale=None``).
        frames: ``[B, F, k, k]`` orthogonal matrices ``R_f``; frame ``f`` of cloud ``b`` is ``z @ R_f``.
            ``F = 1`` (identity) unless ``degenerate="average"`` found ambiguous axes or signs.
        frame_weights: ``[B, F]`` averaging weights (uniform over a cloud's frames, 0 on padding).
        frames_truncated: ``[B]`` bool, True where more than ``max_frames`` frames were found and the set was
            cut (the average is then no longer exactly invariant).
        truncation_ambiguous: ``[B]`` bool, True where the last kept and first dropped eigenvalues are
            within ``gap_tol`` (``dim`` cuts an eigenspace: the kept subspace itself is ill-defined).
        negative_mass: ``[B]`` share of the Gram spectrum on negative eigenvalues,
            ``sum |lambda_-| / sum |lambda|``: 0 for Euclidean distances, > 0 for e.g. geodesic ones.
        center: ``[B, d]`` centroids (position input only, else None).
        rotation: ``[B, d, k]`` the map with ``z = (x - center) @ rotation`` for frame 0, i.e.
            ``rotation = V S / scale`` (the 1/scale is included; ``rotation * scale`` has orthonormal columns)
            (position input only, else None): canonicalise, predict, and map vectors back with it. Its columns
            of null components (``sign_margins`` NaN: planar or collinear clouds) are arbitrary.
    """

    embedding: torch.Tensor
    batch: torch.Tensor
    eigenvalues: torch.Tensor
    gaps: torch.Tensor
    sign_margins: torch.Tensor
    degenerate: torch.Tensor
    scale: torch.Tensor
    frames: torch.Tensor
    frame_weights: torch.Tensor
    frames_truncated: torch.Tensor
    truncation_ambiguous: torch.Tensor
    negative_mass: torch.Tensor
    center: torch.Tensor | None = None
    rotation: torch.Tensor | None = None

    @property
    def num_clouds(self) -> int:
        return int(self.eigenvalues.shape[0])

    @property
    def num_frames(self) -> torch.Tensor:
        """``[B]`` number of frames kept for every cloud."""
        return (self.frame_weights > 0).sum(dim=1)

    def frame_embeddings(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All frames of all clouds stacked as one big batch, for frame averaging.

        Returns:
            ``(z, batch, point, weight, cloud)`` with ``G = num_frames.sum()`` (cloud, frame) pairs and
            ``M`` rows: ``z [M, k]`` every point in every frame (``z_i R_f``), ``batch [M]`` the sorted pair id
            of each row, ``point [M]`` its original row in ``embedding``, ``weight [G]`` the averaging weight
            of each pair and ``cloud [G]`` the cloud of each pair. Frames of one cloud are consecutive.
        """
        device = self.batch.device
        num_clouds = self.num_clouds
        counts = self.num_frames
        num_points = torch.bincount(self.batch, minlength=num_clouds)
        ptr = torch.zeros(num_clouds + 1, dtype=torch.long, device=device)
        torch.cumsum(num_points, 0, out=ptr[1:])
        clouds = torch.arange(num_clouds, device=device)
        pair_cloud = torch.repeat_interleave(clouds, counts)
        frame_ptr = torch.cumsum(counts, 0) - counts
        pair_frame = torch.arange(pair_cloud.numel(), device=device) - frame_ptr[pair_cloud]
        rows_per_pair = num_points[pair_cloud]
        entry_pair = torch.repeat_interleave(torch.arange(pair_cloud.numel(), device=device), rows_per_pair)
        entry_ptr = torch.cumsum(rows_per_pair, 0) - rows_per_pair
        offset = torch.arange(entry_pair.numel(), device=device) - entry_ptr[entry_pair]
        point = ptr[pair_cloud[entry_pair]] + offset
        rot = self.frames[pair_cloud, pair_frame].to(self.embedding.dtype)
        z = (self.embedding[point].unsqueeze(2) * rot[entry_pair]).sum(dim=1)
        weight = self.frame_weights[pair_cloud, pair_frame]
        return z, entry_pair, point, weight, pair_cloud

    def to_dict(self) -> dict:
        """Plain dict of the fields (tensors kept), e.g. for logging."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
