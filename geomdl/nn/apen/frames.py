"""PCA frames of point subsets (parts) for frame averaging (APEN backbone, methods.md section 4.6).

For a part P with centroid t and covariance C = (P - t)^T (P - t) = V diag(lambda) V^T (eigenvalues
ascending), the frames are F(P) = {(V diag(s), t) : s in {+1, -1}^3} (8 frames, equivariance under
O(3) x translations) or the 4 of them with det(V diag(s)) = +1 (SE(3) only). Averaging a function of
the local coordinates (P - t) V diag(s) over F(P) removes the sign ambiguity of the eigenvectors, so
the average is exactly equivariant whenever the three eigenvalues are distinct. Parts with (nearly)
repeated eigenvalues (spheres, cubes, lines) or fewer than 3 points have no unique frame: the result
is then only approximately equivariant — :func:`frame_degeneracy` measures the relative eigen-gap.
"""
from __future__ import annotations

import itertools

import torch

from geomdl.ops import scatter
from geomdl.ops._extension import transform_active

_SIGNS = torch.tensor(list(itertools.product((1.0, -1.0), repeat=3)))  # [8, 3]


def part_centroids(pos: torch.Tensor, part: torch.Tensor, num_parts: int) -> torch.Tensor:
    """Mean position of every part: ``[num_parts, 3]``."""
    return scatter(pos, part, dim_size=num_parts, reduce="mean")


def centred_positions(pos: torch.Tensor, part: torch.Tensor, num_parts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pos - centroid[part] [N, 3], centroid [num_parts, 3])`` with the centred coordinates accurate to the
    precision of ``pos``'s dtype relative to the part's extent, not to its distance from the origin.

    A float32 centroid of points near ``1e4`` is only known to ``ulp(1e4) ~ 1e-3``, so ``pos - centroid`` would
    carry that error into every local coordinate (a ``1e-4`` relative error for a part of size ~3). Two passes
    fix it: subtract the rounded centroid (exact up to rounding of the small difference), then the mean of
    the residuals, which is computed to full relative precision.
    """
    rough = part_centroids(pos, part, num_parts)
    rel = pos - rough[part]
    shift = scatter(rel, part, dim_size=num_parts, reduce="mean")
    return rel - shift[part], rough + shift


def part_covariances(pos: torch.Tensor, part: torch.Tensor, num_parts: int, centroids: torch.Tensor | None = None) -> torch.Tensor:
    """Scatter matrices ``sum_i (p_i - t)(p_i - t)^T`` of every part: ``[num_parts, 3, 3]``
    (``t``: ``centroids`` when given, else the centroids computed as in :func:`centred_positions`)."""
    rel = centred_positions(pos, part, num_parts)[0] if centroids is None else pos - centroids[part]
    return _scatter_matrices(rel, part, num_parts)


def _scatter_matrices(rel: torch.Tensor, part: torch.Tensor, num_parts: int) -> torch.Tensor:
    """``sum_i r_i r_i^T`` per part of centred coordinates ``rel [N, 3]``: ``[num_parts, 3, 3]``."""
    outer = (rel.unsqueeze(2) * rel.unsqueeze(1)).reshape(-1, 9)
    return scatter(outer, part, dim_size=num_parts, reduce="sum").reshape(num_parts, 3, 3)


class _SymmetricEig(torch.autograd.Function):
    """``torch.linalg.eigh`` whose backward drops the eigenvector terms of (numerically) equal eigenvalues.

    The eigenvector gradient has factors ``1 / (lambda_j - lambda_i)``: at a repeated eigenvalue (parts of
    1 point or of coincident points: all eigenvalues 0) torch's backward gives 0/0 = NaN for every input
    of the batch. Inside an eigenspace the basis is arbitrary, so those terms are set to 0; elsewhere the
    gradient is torch's.
    """

    @staticmethod
    def forward(mat):
        evals, evecs = torch.linalg.eigh(mat)
        return evals, evecs

    @staticmethod
    def setup_context(ctx, inputs, output):  # (a separate setup: the Function composes with torch.func)
        ctx.save_for_backward(*output)

    @staticmethod
    def _over_gaps(x, evals):
        """``x[..., i, j] / (lambda_j - lambda_i)`` where the eigenvalues are apart, else 0."""
        gap = evals.unsqueeze(-2) - evals.unsqueeze(-1)
        tol = 64 * torch.finfo(evals.dtype).eps * evals.abs().amax(-1, keepdim=True).unsqueeze(-1)
        apart = gap.abs() > tol
        return torch.where(apart, x / torch.where(apart, gap, torch.ones_like(gap)), torch.zeros_like(x))

    @staticmethod
    def backward(ctx, grad_evals, grad_evecs):
        evals, evecs = ctx.saved_tensors
        inner = torch.zeros_like(evecs)
        if grad_evecs is not None:
            inner = _SymmetricEig._over_gaps(evecs.mT @ grad_evecs, evals)
        if grad_evals is not None:
            inner = inner + torch.diag_embed(grad_evals)
        return evecs @ inner @ evecs.mT


class _SymmetricEigTransforms(_SymmetricEig):
    """:class:`_SymmetricEig` for ``torch.func`` transforms and forward-mode AD: with a ``jvp`` and a derived vmap
    rule (``vmap``, ``hessian``, ``jacfwd``). Dynamo cannot trace a Function with a ``jvp``, so eager calls and
    compiled graphs use the parent."""

    generate_vmap_rule = True  # forward, backward and jvp are plain torch ops

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*output)
        ctx.save_for_forward(*output)

    @staticmethod
    def jvp(ctx, dmat):
        """``d lambda_i = v_i^T dA v_i``, ``dV = V C`` with ``C_ij = (V^T dA V)_ij / (lambda_j - lambda_i)`` (0 inside
        an eigenspace, as in the backward)."""
        evals, evecs = ctx.saved_tensors
        inner = evecs.mT @ dmat @ evecs
        return inner.diagonal(dim1=-2, dim2=-1), evecs @ _SymmetricEig._over_gaps(inner, evals)


def pca_frames(pos: torch.Tensor, part: torch.Tensor, num_parts: int, reflections: bool = True):
    """Frames of every part.

    Args:
        pos: ``[N, 3]`` positions.
        part: ``[N]`` int part id in ``[0, num_parts)``.
        num_parts: number of parts.
        reflections: 8 frames (O(3)) if True, else the 4 proper ones (SO(3)).

    Returns:
        ``(rot [num_parts, F, 3, 3], centroid [num_parts, 3], eigenvalues [num_parts, 3])``;
        local coordinates of a point are ``(p - centroid) @ rot``.
    """
    if pos.dim() != 2 or pos.shape[1] != 3:
        raise ValueError(f"pos must have shape [N, 3], got {tuple(pos.shape)}")
    rel, centroid = centred_positions(pos, part, num_parts)
    rot, evals = frames_of_centred(rel, part, num_parts, reflections)
    return rot, centroid, evals


def frames_of_centred(rel: torch.Tensor, part: torch.Tensor, num_parts: int, reflections: bool = True):
    """:func:`pca_frames` of coordinates already centred per part (:func:`centred_positions`):
    ``(rot [num_parts, F, 3, 3], eigenvalues [num_parts, 3])``."""
    eig = _SymmetricEigTransforms if transform_active() else _SymmetricEig
    evals, evecs = eig.apply(_scatter_matrices(rel, part, num_parts))  # ascending; finite gradients on degenerate parts
    signs = _SIGNS.to(rel.dtype).to(rel.device)
    rot = evecs.unsqueeze(1) * signs.view(1, 8, 1, 3)  # V diag(s): scale columns
    if not reflections:
        det = torch.linalg.det(rot)  # [P, 8]
        keep = det > 0
        # exactly 4 of the 8 sign patterns give det = +1 for every part
        rot = rot[keep].reshape(num_parts, 4, 3, 3)
    return rot, evals


def frame_degeneracy(eigenvalues: torch.Tensor) -> torch.Tensor:
    """Smallest relative gap between consecutive eigenvalues of each part, ``[num_parts]``
    (0 = repeated eigenvalues: the frame is not unique and equivariance is only approximate)."""
    scale = eigenvalues[:, -1].abs().clamp_min(torch.finfo(eigenvalues.dtype).tiny)
    gaps = (eigenvalues[:, 1:] - eigenvalues[:, :-1]) / scale.unsqueeze(1)
    return gaps.min(1).values
