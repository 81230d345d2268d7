r"""TinvNN initial representations: modified multi-dimensional scaling (MDS).

Zhang, Wang, Zhang, Cui, Zhu, "TinvNN: transformation-invariant neural networks"
(arXiv:2112.12345; TPAMI "TinvNet"). For one cloud :math:`X \in \mathbb{R}^{n \times d}` or only its
distances :math:`D_{ij} = \|x_i - x_j\|^2`:

.. math::
    B = -\tfrac{1}{2 s^2} J D J,\quad J = I - \tfrac{1}{n}\mathbf{1}\mathbf{1}^\top,\quad
    B = U \Lambda U^\top\ (\lambda_1 \ge \lambda_2 \ge \dots),\quad
    z = U_k \Lambda_k^{1/2} S

For Euclidean input :math:`B = X_c X_c^\top / s^2`, so the same :math:`z` comes much cheaper from the
:math:`d \times d` covariance: :math:`z = X_c V_k S / s` with :math:`X_c^\top X_c = V \Lambda V^\top`
(this is the route taken for positions; the :math:`n \times n` route serves distance matrices).

Rules (ours; the paper's exact rules were not available, see ``README.md``, section TinvNN):

* **scale** ``s``: ``"rms"`` (default) :math:`s^2 = \operatorname{tr} B_0 / n = \frac{1}{n}\sum_i \|x_i - \bar x\|^2
  = \frac{1}{2n^2}\sum_{ij} D_{ij}`, the RMS distance to the centroid, so that
  :math:`\frac1n \sum_i \|z_i\|^2 = 1` when :math:`k \ge \operatorname{rank}`; ``"max"``
  :math:`s = \max_i \|x_i - \bar x\|` (:math:`\max_i (B_0)_{ii}^{1/2}`); ``None``: no scale invariance.
  Both are permutation invariant and homogeneous of degree 1, hence :math:`z(cX) = z(X)`.
* **sign** :math:`S = \operatorname{diag}(\sigma_j)`: :math:`\sigma_j = \operatorname{sign}(\gamma_j)` with the
  column skewness :math:`\gamma_j = \frac{\frac1n\sum_i u_{ij}^3}{(\frac1n\sum_i u_{ij}^2)^{3/2}}`, :math:`u = U_k\Lambda_k^{1/2}`.
  Column *sums* cannot be used: :math:`B\mathbf 1 = 0` makes them all zero. :math:`\gamma_j` is invariant
  under permutations and scalings and flips with the column, so :math:`S` cancels the arbitrary sign of
  the eigensolver. :math:`|\gamma_j|` is reported as the *sign margin*; it is 0 for mirror-symmetric shapes.

Guarantees: with distinct kept eigenvalues and non-zero sign margins, :math:`z(P(cXQ^\top + t)) = P z(X)`
for any permutation :math:`P`, :math:`Q \in O(d)`, :math:`c > 0`, :math:`t`; and
:math:`\|z_i - z_j\| = \|x_i - x_j\| / s` exactly when :math:`k \ge \operatorname{rank}(X_c)`.
Where these conditions fail the diagnostics say so, and ``degenerate="average"`` returns the finite set
of frames to average over instead (:mod:`geomdl.nn.tinv.frames`).
"""
from __future__ import annotations

import numbers

import torch

from geomdl.nn.tinv.frames import ambiguous_frames
from geomdl.nn.tinv.result import MDSResult
from geomdl.ops import scatter
from geomdl.ops._validation import check_int
from geomdl.utils.memory import available_bytes

SCALES = ("rms", "max", None)
DEGENERATE_MODES = ("pick", "average")
NULL_TOL = 1e-12  # relative eigenvalue below which a component counts as zero

MAX_DENSE_BYTES: float = 4 * 2**30
"""Default cap (bytes, 4 GiB) on the dense ``n x n`` work of the distances route and of :func:`geodesic_distances`.

One ``n x n`` matrix takes ``DENSE_WORK_MATRICES * 8 * n**2`` bytes of work (about 1.8 GB at ``n = 6,700``, 4 GiB at
``n = 10,360``); a larger matrix raises a ``ValueError`` before anything is allocated, and a batch of matrices is
decomposed in chunks of at most this many bytes. The effective cap is the smaller of this and the memory available
on the device (:func:`geomdl.utils.memory.available_bytes`: on Linux the smaller of ``MemAvailable`` and a
container's cgroup memory limit less its use, ``torch.cuda.mem_get_info`` on CUDA, not read elsewhere). It also
bounds the time: ``eigh`` is ``O(n^3)``, 17 to 28 s of one (shared) CPU core at ``n = 4,000``, so about a minute
at ``n = 6,000`` and several at ``n = 10,000``; a user who gives a larger cap should expect hours past
``n ~ 30,000``.
Override per call with ``max_dense_bytes=`` or globally by assigning ``geomdl.nn.tinv.mds.MAX_DENSE_BYTES``
(``math.inf``: only the available-memory check remains).
"""
DENSE_WORK_MATRICES = 5  # n x n float64 matrices alive at the peak (measured 4.1 incl. eigh's workspace) + margin


def dense_work_bytes(n: int, matrices: float = DENSE_WORK_MATRICES) -> int:
    """Estimated peak bytes of the dense work on one ``n x n`` matrix (``matrices`` float64 ``n x n`` arrays)."""
    return int(matrices * 8 * n * n)


def _available_bytes(device: torch.device) -> int | None:
    """Memory free for new tensors on ``device`` in bytes, or None where it cannot be read cheaply."""
    return available_bytes(device)


def check_max_dense_bytes(max_dense_bytes) -> None:
    if max_dense_bytes is None:
        return
    if isinstance(max_dense_bytes, bool) or not isinstance(max_dense_bytes, numbers.Real):
        raise TypeError(f"max_dense_bytes must be a number of bytes (int or float) or None, "
                        f"got {type(max_dense_bytes).__name__}")
    if not max_dense_bytes > 0:
        raise ValueError(f"max_dense_bytes must be a positive number of bytes (math.inf: no cap) or None, "
                         f"got {max_dense_bytes!r}")


def dense_limit(max_dense_bytes, device: torch.device) -> tuple[float, str]:
    """The byte cap on dense ``n x n`` work and a phrase saying where it comes from (for error messages).

    An explicit ``max_dense_bytes`` is used as given; ``None`` means ``min(MAX_DENSE_BYTES, available memory)``.
    """
    check_max_dense_bytes(max_dense_bytes)
    if max_dense_bytes is not None:
        return float(max_dense_bytes), f"max_dense_bytes={max_dense_bytes!r}"
    limit, origin = float(MAX_DENSE_BYTES), f"geomdl.nn.tinv.mds.MAX_DENSE_BYTES={MAX_DENSE_BYTES!r}"
    avail = _available_bytes(device)
    if avail is not None and avail < limit:
        limit, origin = float(avail), f"the memory available on {device}"
    return limit, origin


def format_bytes(num: float) -> str:
    return f"{num / 2**30:.3g} GiB" if num >= 2**30 else f"{num / 2**20:.3g} MiB" if num >= 2**20 else f"{num:.0f} bytes"


def _check_options(dim, scale, degenerate, gap_tol, sign_tol, max_frames):
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if degenerate not in DEGENERATE_MODES:
        raise ValueError(f"degenerate must be one of {DEGENERATE_MODES}, got {degenerate!r}")
    for name, value in (("gap_tol", gap_tol), ("sign_tol", sign_tol)):
        if not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    check_int(max_frames, "max_frames")


def _scale_from_gram_diag(sumsq: torch.Tensor, maxsq: torch.Tensor, counts: torch.Tensor, scale,
                          ids: list[int] | None = None) -> torch.Tensor:
    """Per-cloud scale ``s`` from ``sum_i |x_i - c|^2`` and ``max_i |x_i - c|^2`` (both ``[B]``).

    ``ids`` names the clouds in errors (default ``0..B-1``).
    """
    if scale is None:
        return torch.ones_like(sumsq)
    s2 = sumsq / counts.clamp(min=1) if scale == "rms" else maxsq
    bad = torch.nonzero(~(s2 > 0)).flatten()
    if bad.numel():
        cloud = int(bad[0]) if ids is None else ids[int(bad[0])]
        raise ValueError(f"cloud {cloud} has zero extent (all its points coincide, or it is empty): the scale "
                         f"normalisation is undefined; drop that cloud (or, calling mds_embedding, pass scale=None)")
    return s2.sqrt()


def _pow2_unit(extent: torch.Tensor) -> torch.Tensor:
    """``2**e`` with ``extent / 2**e`` in ``[0.5, 1)`` (1 where ``extent`` is 0).

    Dividing by it is exact, so results are bitwise unchanged at ordinary scales, and squared coordinates of
    clouds at 1e-170 or 1e170 neither underflow to 0 nor overflow to inf (z does not depend on the scale).
    """
    # the exponent in extent's dtype: torch 2.4's ldexp forms 2**exponent in the default dtype (float32), which
    # under/overflows beyond 2**+-127
    return torch.ldexp(torch.ones_like(extent), torch.frexp(extent).exponent.to(extent.dtype))


def _spectrum(lam_all: torch.Tensor, k: int):
    """Kept eigenvalues ``[B, k]``, the next ones ``[B, k]`` (``lambda_{j+1}``, 0 past the end) and null masks.

    ``lam_all [B, m]`` holds descending eigenvalues; negatives count as 0.
    """
    num, m = lam_all.shape
    lam = lam_all.clamp(min=0)
    if m < k + 1:
        lam = torch.cat([lam, lam.new_zeros(num, k + 1 - m)], dim=1)
    lam = lam[:, : k + 1]
    top = lam[:, :1].clamp(min=torch.finfo(lam.dtype).tiny)
    null = lam <= NULL_TOL * top
    return lam[:, :k], lam[:, 1:], null[:, :k], null[:, 1:], top


def _finish(z_raw, batch, lam_all, counts, s, k, *, gap_tol, sign_tol, degenerate, max_frames, negative_mass,
            center=None, rotation=None) -> MDSResult:
    """Null columns, sign rule, diagnostics and frames, shared by both routes (all float64).

    A gap next to a null eigenvalue is the rank of the cloud, not an ambiguity, so it is never flagged.
    """
    num = lam_all.shape[0]
    kept, nxt, null, null_next, top = _spectrum(lam_all, k)
    gaps = (kept - nxt) / top
    if z_raw.shape[1] < k:
        z_raw = torch.cat([z_raw, z_raw.new_zeros(z_raw.shape[0], k - z_raw.shape[1])], dim=1)
    z_raw = z_raw * (~null)[batch].to(z_raw.dtype)
    # the skewness is scale-free: take it in a power-of-two unit per cloud (z^3 under/overflows at 1e+-110)
    zu = z_raw / _pow2_unit(scatter(z_raw.detach().abs().amax(dim=1), batch, dim_size=num, reduce="max"))[batch, None]
    m2 = scatter(zu.pow(2), batch, dim_size=num, reduce="mean")
    m3 = scatter(zu.pow(3), batch, dim_size=num, reduce="mean")
    skew = m3 / m2.clamp(min=torch.finfo(m2.dtype).tiny).pow(1.5)
    sign = torch.where(skew < 0, -1.0, 1.0).to(z_raw.dtype)
    z = z_raw * sign[batch]
    if rotation is not None:
        rotation = rotation * sign[:, None, :]
    margins = torch.where(null, torch.full_like(skew, float("nan")), skew.abs())
    gap_flag = (gaps < gap_tol) & ~null & ~null_next
    truncation = gap_flag[:, -1].clone()
    gap_flag[:, -1] = False
    sign_flag = (margins < sign_tol) & ~null
    flagged = gap_flag.any(dim=1) | sign_flag.any(dim=1)
    eye = torch.eye(k, dtype=z.dtype, device=z.device)
    frames = eye.expand(num, 1, k, k).clone()  # one identity frame per cloud unless averaging finds more
    weights = z.new_ones(num, 1)
    truncated = torch.zeros(num, dtype=torch.bool, device=z.device)
    if degenerate == "average" and bool(flagged.any()):
        found = {}
        for b in torch.nonzero(flagged).flatten().tolist():
            found[b], cut = ambiguous_frames(z[batch == b], kept[b], margins[b], gap_tol=gap_tol, sign_tol=sign_tol,
                                             null_tol=NULL_TOL, max_frames=max_frames)
            truncated[b] = cut
        width = max(f.shape[0] for f in found.values())
        frames = torch.cat([frames, z.new_zeros(num, width - 1, k, k)], dim=1)
        weights = torch.cat([weights, z.new_zeros(num, width - 1)], dim=1)
        for b, f in found.items():
            frames[b, : f.shape[0]] = f
            weights[b, : f.shape[0]] = 1.0 / f.shape[0]
    return MDSResult(embedding=z, batch=batch, eigenvalues=kept / counts.clamp(min=1)[:, None].to(kept.dtype), gaps=gaps,
                     sign_margins=margins, degenerate=flagged | truncation, scale=s, frames=frames,
                     frame_weights=weights, frames_truncated=truncated, truncation_ambiguous=truncation,
                     negative_mass=negative_mass, center=center, rotation=rotation)


def _cast(result: MDSResult, dtype) -> MDSResult:
    for name in ("embedding", "eigenvalues", "gaps", "sign_margins", "scale", "frames", "frame_weights",
                 "negative_mass", "center", "rotation"):
        value = getattr(result, name)
        if value is not None:
            setattr(result, name, value.to(dtype))
    return result


def mds_from_positions(pos: torch.Tensor, dim: int, batch: torch.Tensor, num_clouds: int, *, scale="rms",
                       gap_tol=1e-2, sign_tol=1e-2, degenerate="pick", max_frames=128,
                       chunk_size: int = 1 << 20) -> MDSResult:
    """Covariance route of :func:`mds_embedding` (validated input; computed in float64).

    Cost ``O(N d^2)`` plus ``B`` eigendecompositions of ``d x d`` matrices; points are streamed in chunks
    of ``chunk_size`` rows so that no ``[N, d, d]`` temporary is larger than a chunk.
    """
    x = pos.to(torch.float64)
    n_pts, d = x.shape
    counts = torch.bincount(batch, minlength=num_clouds)
    center = scatter(x, batch, dim_size=num_clouds, reduce="mean")
    xc = x - center[batch]
    # second moments in a per-cloud power-of-two unit (exact): no under/overflow of squares at extreme scales
    unit = _pow2_unit(scatter(xc.detach().abs().amax(dim=1), batch, dim_size=num_clouds, reduce="max"))
    xu = xc / unit[batch, None]
    cov = x.new_zeros(num_clouds, d, d)
    for start in range(0, n_pts, chunk_size):
        part = xu[start:start + chunk_size]
        outer = (part[:, :, None] * part[:, None, :]).reshape(part.shape[0], d * d)
        cov += scatter(outer, batch[start:start + chunk_size], dim_size=num_clouds, reduce="sum").view(num_clouds, d, d)
    sq = xu.pow(2).sum(dim=1)
    sumsq = scatter(sq, batch, dim_size=num_clouds, reduce="sum")
    maxsq = scatter(sq, batch, dim_size=num_clouds, reduce="max")
    s_unit = _scale_from_gram_diag(sumsq, maxsq, counts, scale)  # s / unit (1 with scale=None)
    lam, vecs = torch.linalg.eigh(cov / s_unit[:, None, None].pow(2))  # scale-free spectrum for the diagnostics
    lam, vecs = lam.flip(-1), vecs.flip(-1)
    s = s_unit * unit if scale is not None else torch.ones_like(s_unit)
    k_eff = min(dim, d)
    # s = s_unit * unit with unit a power of two: dividing in two steps is the same (exact) forward, and the
    # backward never squares s (s**2 of a cloud below ~1e-154 underflows to 0: NaN gradients)
    rotation = vecs[:, :, :k_eff] / s_unit[:, None, None] / unit[:, None, None] if scale is not None else vecs[:, :, :k_eff]
    z_raw = torch.cat([torch.einsum("nd,ndk->nk", xc[i:i + chunk_size], rotation[batch[i:i + chunk_size]])
                       for i in range(0, n_pts, chunk_size)]) if n_pts else xc.new_zeros(0, k_eff)
    if k_eff < dim:
        rotation = torch.cat([rotation, rotation.new_zeros(num_clouds, d, dim - k_eff)], dim=2)
    result = _finish(z_raw, batch, lam, counts, s, dim, gap_tol=gap_tol, sign_tol=sign_tol, degenerate=degenerate,
                     max_frames=max_frames, negative_mass=torch.zeros_like(s), center=center, rotation=rotation)
    if scale is None:  # eigenvalues of X_c^T X_c / n in the input's units
        result.eigenvalues = result.eigenvalues * unit.pow(2)[:, None]
    return _cast(result, pos.dtype)


def mds_from_distances(mats: list[torch.Tensor], dim: int, *, squared=False, scale="rms", gap_tol=1e-2,
                       sign_tol=1e-2, degenerate="pick", max_frames=128, chunk_size: int = 64,
                       max_bytes: float | None = None) -> MDSResult:
    """Gram (classical MDS) route of :func:`mds_embedding` for validated square matrices (float64 inside).

    Matrices of equal size are decomposed together, ``chunk_size`` at a time (``O(chunk n^2)`` memory), and
    fewer where ``chunk * dense_work_bytes(n)`` would exceed ``max_bytes`` (at least one: the caller checks
    that one matrix fits). Peak: about 4.1 ``n x n`` float64 matrices per matrix of the chunk (``eigh``'s
    output and workspace included) besides the input.
    """
    dtype = mats[0].dtype
    device = mats[0].device
    sizes = [m.shape[0] for m in mats]
    num = len(mats)
    lam_all = torch.zeros(num, max(sizes), dtype=torch.float64, device=device)
    neg = torch.zeros(num, dtype=torch.float64, device=device)
    s = torch.ones(num, dtype=torch.float64, device=device)
    units = torch.ones(num, dtype=torch.float64, device=device)
    zs: list[torch.Tensor | None] = [None] * num
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(sizes):
        groups.setdefault(n, []).append(i)
    for n, members in groups.items():
        step = chunk_size if max_bytes is None else max(1, int(min(chunk_size, max_bytes // dense_work_bytes(n))))
        for start in range(0, len(members), step):
            idx = members[start:start + step]
            d2 = torch.stack([mats[i] for i in idx]).to(torch.float64)
            # lengths in a per-matrix power-of-two unit (exact): squares neither underflow nor overflow
            top = d2.detach().flatten(1).amax(dim=1)
            unit = _pow2_unit(top.sqrt() if squared else top)
            d2 = d2 / unit.pow(2)[:, None, None] if squared else (d2 / unit[:, None, None]).pow(2)
            gram = -0.5 * (d2 - d2.mean(dim=1, keepdim=True) - d2.mean(dim=2, keepdim=True)
                           + d2.mean(dim=(1, 2), keepdim=True))
            diag = torch.diagonal(gram, dim1=1, dim2=2)
            counts = torch.full((len(idx),), n, dtype=torch.float64, device=device)
            sc = _scale_from_gram_diag(diag.sum(1), diag.max(1).values, counts, scale, ids=idx)  # s / unit
            del d2, diag  # free n x n arrays before eigh (its output and workspace take ~3 more)
            gram = gram / sc[:, None, None].pow(2)
            lam, vecs = torch.linalg.eigh(gram)
            del gram
            k_eff = min(dim, n)
            lam, vecs = lam.flip(-1), vecs[:, :, n - k_eff:].flip(-1)  # flip only the kept columns
            lam_k = lam[:, :k_eff].clamp(min=0)
            lam_k = torch.where(lam_k > NULL_TOL * lam_k[:, :1], lam_k, torch.zeros_like(lam_k))
            z = vecs * lam_k.sqrt()[:, None, :]
            if scale is None:  # back to the input's units
                z = z * unit[:, None, None]
            total = lam.abs().sum(1).clamp(min=torch.finfo(lam.dtype).tiny)
            for j, i in enumerate(idx):
                zs[i] = z[j]
                lam_all[i, :n] = lam[j]
                neg[i] = lam[j].clamp(max=0).abs().sum() / total[j]
                s[i] = sc[j] * unit[j] if scale is not None else 1.0
                units[i] = unit[j]
    batch = torch.repeat_interleave(torch.arange(num, device=device), torch.tensor(sizes, device=device))
    counts = torch.tensor(sizes, dtype=torch.float64, device=device)
    width = min(dim, max(sizes))
    z_raw = torch.cat([torch.nn.functional.pad(z, (0, width - z.shape[1])) for z in zs])
    if lam_all.shape[1] > dim + 1:
        lam_all = lam_all[:, : dim + 1]
    result = _finish(z_raw, batch, lam_all, counts, s, dim, gap_tol=gap_tol, sign_tol=sign_tol, degenerate=degenerate,
                     max_frames=max_frames, negative_mass=neg)
    if scale is None:  # the spectrum above is in the unit of every matrix
        result.eigenvalues = result.eigenvalues * units.pow(2)[:, None]
    return _cast(result, dtype)
