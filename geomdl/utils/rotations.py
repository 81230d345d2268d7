"""Random rotations: the one Haar sampler behind the augmentations, the datasets and the tests.

A unit quaternion ``q = (w, x, y, z)`` maps to

.. math::
    R(q) = \\begin{pmatrix}
    1 - 2(y^2 + z^2) & 2(xy - zw) & 2(xz + yw) \\\\
    2(xy + zw) & 1 - 2(x^2 + z^2) & 2(yz - xw) \\\\
    2(xz - yw) & 2(yz + xw) & 1 - 2(x^2 + y^2)
    \\end{pmatrix},

and a normalised standard Gaussian ``q`` is uniform on ``S^3``, so ``R(q)`` is Haar-uniform on SO(3).
"""
from __future__ import annotations

import torch


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """``R(q / |q|)`` above for quaternions ``q`` ``[..., 4]`` ordered ``(w, x, y, z)``; returns ``[..., 3, 3]``
    in the dtype of ``q``."""
    if not isinstance(q, torch.Tensor):
        raise TypeError(f"q must be a torch.Tensor, got {type(q).__name__}")
    if q.shape[-1:] != (4,) or not q.is_floating_point():
        raise ValueError(f"q must be a float tensor of shape [..., 4], got {tuple(q.shape)} {q.dtype}")
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def random_rotation(generator: torch.Generator | None = None, dtype=torch.float64, reflection: bool = False) -> torch.Tensor:
    """One Haar-uniform rotation ``[3, 3]`` (from a normalised Gaussian quaternion, drawn in float64 from
    ``generator``); ``reflection=True`` returns ``-R``, an improper element of O(3) (``det = -1``)."""
    rot = quaternion_to_matrix(torch.randn(4, generator=generator, dtype=torch.float64))
    return (-rot if reflection else rot).to(dtype)
