r"""geomdl's learned rotation-invariant local descriptor (``register(..., method="learned")``).

A keypoint's patch (:func:`geomdl.pipelines.registration.patches.patch_features`: per neighbour ``j``
8 invariant scalars ``s_j`` and the tangent coordinate ``t_j = ρ_j e^{iφ_j}`` in an arbitrary tangent
basis) goes through a *harmonic PointNet*:

.. math::

    e_j = \mathrm{MLP}(s_j) \in \mathbb{R}^C, \qquad
    A_m = \frac{1}{K} \sum_j e_j\, t_j^{\,m} \in \mathbb{C}^C \quad (m = 1..M),

    r_m = w_m^\top A_m, \qquad
    B_m = \frac{A_m \overline{r_m}}{\sqrt{|r_m|^2 + \epsilon}}, \qquad
    \mathrm{desc} = \frac{\mathrm{MLP}([\mathrm{mean}_j e_j, \max_j e_j, |A_m|, \mathrm{Re}\,B_m, \mathrm{Im}\,B_m, \mathrm{PPF}])}{\|\cdot\|}

(``PPF``: geomdl's hand-crafted PPF histogram of the keypoint, an O(3)-invariant input the network
refines; ``ppf_input=False`` drops it.)

Turning the tangent basis by ``δ`` multiplies ``A_m`` and ``r_m`` by ``e^{-imδ}``, which cancels in
``|A_m|`` and ``B_m``: the descriptor is exactly invariant to proper rotations (and translations, and
the point order) without choosing an x axis; the learned reference ``r_m`` plays the role of a soft,
data-driven local frame. (Reflections conjugate ``B_m``: SO(3)-, not O(3)-invariant.)
It is trained self-supervised on built-in pairs with known poses with InfoNCE over ground-truth
correspondences (``benchmarks/registration_train_descriptor.py``); the shipped weights are
``weights/descriptor.pt`` (loaded with ``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import functools
import pathlib

import torch
from torch import nn

from geomdl.pipelines.registration.descriptors import ppf_histogram
from geomdl.pipelines.registration.patches import NUM_FEATURES, NUM_SCALARS, patch_features

WEIGHTS = pathlib.Path(__file__).resolve().parent / "weights" / "descriptor.pt"
FORMAT = "geomdl.registration.descriptor/2"
PPF_DIM = 75  # geomdl's PPF histogram (3 x 5 x 5 bins), an optional input of the head


def _mlp(sizes: list[int], last_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def tangent_powers(re: torch.Tensor, im: torch.Tensor, degree: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``t^m`` for ``m = 1..degree`` of ``t = re + i im`` (``[...]`` each) -> ``([..., degree], [..., degree])``."""
    pr, pi = [re], [im]
    for _ in range(degree - 1):
        pr, pi = pr + [pr[-1] * re - pi[-1] * im], pi + [pr[-1] * im + pi[-1] * re]
    return torch.stack(pr, -1), torch.stack(pi, -1)


class PatchDescriptor(nn.Module):
    """Harmonic PointNet on patches (module docstring): ``[M, K, 10] -> [M, dim]`` unit vectors.

    Args:
        dim: descriptor size; width: ``C``, channels per neighbour; degree: ``M``, angular harmonics.
        radius_voxels: support radius in voxels, num_neighbors: ``K`` (stored with the weights so that
            :meth:`describe` builds the patches the network was trained on).
    """

    def __init__(self, dim: int = 32, width: int = 48, degree: int = 3, radius_voxels: float = 5.0,
                 num_neighbors: int = 48, ppf_input: bool = True):
        super().__init__()
        if min(dim, width, degree, num_neighbors) < 1 or not radius_voxels > 0:
            raise ValueError(f"dim, width, degree, num_neighbors and radius_voxels must be positive, got "
                             f"{dim}, {width}, {degree}, {num_neighbors}, {radius_voxels}")
        self.config = {"dim": int(dim), "width": int(width), "degree": int(degree),
                       "radius_voxels": float(radius_voxels), "num_neighbors": int(num_neighbors),
                       "ppf_input": bool(ppf_input)}
        self.embed = _mlp([NUM_SCALARS, width, width])
        self.reference = nn.Parameter(torch.randn(degree, width) / width**0.5)
        extra = PPF_DIM if ppf_input else 0
        self.head = _mlp([width * (2 + 3 * degree) + extra, 2 * width, dim], last_activation=False)

    def forward(self, features: torch.Tensor, ppf: torch.Tensor | None = None) -> torch.Tensor:
        """``features [M, K, 10]`` (from :func:`patch_features`) and, when ``config["ppf_input"]``, the
        PPF histograms ``ppf [M, 75]`` of the same keypoints -> ``[M, dim]`` L2-normalised descriptors."""
        if features.dim() != 3 or features.shape[-1] != NUM_FEATURES:
            raise ValueError(f"features must have shape [M, K, {NUM_FEATURES}], got {tuple(features.shape)}")
        e = self.embed(features[..., :NUM_SCALARS])  # [M, K, C]
        pr, pi = tangent_powers(features[..., NUM_SCALARS], features[..., NUM_SCALARS + 1], self.config["degree"])
        k = features.shape[1]
        ar = torch.einsum("mkd,mkc->mdc", pr, e) / k  # [M, D, C]
        ai = torch.einsum("mkd,mkc->mdc", pi, e) / k
        rr = (ar * self.reference).sum(-1, keepdim=True)  # [M, D, 1]
        ri = (ai * self.reference).sum(-1, keepdim=True)
        norm = (rr * rr + ri * ri + 1e-6).sqrt()
        br, bi = (ar * rr + ai * ri) / norm, (ai * rr - ar * ri) / norm
        mag = (ar * ar + ai * ai + 1e-8).sqrt()
        parts = [e.mean(1), e.max(1).values, mag.flatten(1), br.flatten(1), bi.flatten(1)]
        if self.config["ppf_input"]:
            if ppf is None or ppf.shape != (features.shape[0], PPF_DIM):
                raise ValueError(f"this descriptor takes the PPF histograms [M, {PPF_DIM}] as second input")
            parts.append(ppf.to(e.dtype))
        h = torch.cat(parts, 1)
        return nn.functional.normalize(self.head(h), dim=-1)

    @torch.no_grad()
    def describe(self, points: torch.Tensor, normals: torch.Tensor, keypoints: torch.Tensor, voxel_size: float,
                 batch: int = 4096) -> torch.Tensor:
        """Descriptors of ``keypoints [M]`` of a cloud downsampled at ``voxel_size``: ``[M, dim]``
        (dtype of the network, device of ``points``). ``points``/``normals`` ``[N, 3]``; the normals must be oriented by
        :func:`~geomdl.pipelines.registration.descriptors.orient_normals` when ``config["ppf_input"]``. The patches
        are built on the device of ``points`` and run through the network on the network's."""
        radius = self.config["radius_voxels"] * voxel_size
        weight = next(self.parameters())
        out = []
        for start in range(0, max(keypoints.numel(), 1), batch):
            feats = patch_features(points, normals, keypoints[start:start + batch], radius, self.config["num_neighbors"])
            ppf = None
            if self.config["ppf_input"]:
                ppf = ppf_histogram(points, normals, keypoints[start:start + batch], radius, oriented=True)
            out.append(self(feats.to(weight.device, weight.dtype), None if ppf is None else ppf.to(weight.device)))
        return torch.cat(out).to(points.device)


def save_descriptor(model: PatchDescriptor, path, meta: dict | None = None) -> None:
    """Write ``{"format", "config", "state_dict", "meta"}`` atomically (float32 weights)."""
    from geomdl.utils.io import atomic_torch_save

    state = {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "config": dict(model.config), "state_dict": state, "meta": dict(meta or {})}, path)


def load_descriptor(path=None) -> PatchDescriptor:
    """Load a :class:`PatchDescriptor` (default: the shipped ``weights/descriptor.pt``), in eval mode.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when it is not a
    descriptor checkpoint (truncated, foreign format, wrong tensors).
    """
    path = pathlib.Path(path) if path is not None else WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"descriptor weights not found: {path} (train them with "
                                f"`python -m benchmarks registration_train_descriptor`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of a truncated or foreign file
        raise ValueError(f"{path}: cannot read descriptor weights ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a geomdl registration descriptor (expected format {FORMAT!r})")
    try:
        model = PatchDescriptor(**ckpt["config"])
    except (KeyError, TypeError, ValueError) as exc:  # missing or foreign config entries
        raise ValueError(f"{path}: bad descriptor config ({type(exc).__name__}: {exc})") from exc
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{path}: weights do not fit the stored config ({type(exc).__name__}: {exc})") from exc
    return model.eval()


@functools.lru_cache(maxsize=1)
def default_descriptor() -> PatchDescriptor:
    """The shipped descriptor, loaded once per process."""
    return load_descriptor(WEIGHTS)
