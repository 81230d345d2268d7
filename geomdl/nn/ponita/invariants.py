"""Invariant attributes of point pairs for PONITA (pure functions, no weights).

For a receiver ``i`` and a sender ``j`` with ``r = x_j - x_i`` (messages flow ``j -> i``):

============================  ===============================================  ===========================
space (group)                 attribute                                        shape
============================  ===============================================  ===========================
R^n (E(n))                    ``[|r|]``                                         ``[E, 1]``
R^3 x S^2, point cloud        ``[o_i.r, |r - (o_i.r) o_i|, o_i.o_j]``           ``[E, 3]``
R^2 x S^1, point cloud        ``[o_i.r, o_i^perp.r, o_i.o_j]``                  ``[E, 3]``
R^3 x S^2, fiber bundle       spatial ``[o.r, |r - (o.r) o|]`` per grid ``o``    ``[E, O, 2]``
R^2 x S^1, fiber bundle       spatial ``[o.r, o^perp.r]`` per grid ``o``         ``[E, O, 2]``
fiber (both)                  ``[o.o']`` for grid pairs                         ``[O, O, 1]``
============================  ===============================================  ===========================

Completeness (what the attributes can and cannot tell apart):

* ``|r|`` is a complete invariant of point pairs in R^n under E(n).
* Fiber bundle, 3D: ``(o.r, |r_perp|)`` is complete for a (position-orientation, position) pair under
  SE(3) (the stabiliser of ``(x_i, o)`` is the SO(2) about ``o``), and ``o.o'`` is complete for pairs
  of directions. The separable kernel ``k_s(o.r, |r_perp|) k_f(o.o')`` is therefore built from complete
  factors, but the product is not a general function of the pair of position-orientations.
* Point cloud, 3D: a pair in R^3 x S^2 has 10 degrees of freedom and SE(3) acts with 6, so generic
  orbits need 4 numbers; the 3-tuple above omits ``o_j.r`` (Gram matrix of ``r, o_i, o_j``) and a
  chirality sign, so it is NOT complete (Bellaard, Smets & Duits 2025 give a complete set of 4).
* All 3D attributes are invariant under O(3) (reflections included): 3D PONITA cannot tell mirror
  images apart; scalar outputs are reflection-invariant and vector outputs are ordinary (polar) vectors.
* 2D: the spatial attributes are *signed* (relative position in the local frame ``(o, o^perp)``),
  complete for (position-orientation, position) pairs under SE(2), and change under reflections. The
  fiber attribute ``cos(t_i - t_j)`` is even in the angle difference, so the fiber kernel is
  mirror-symmetric; the 2D point-cloud triple is complete up to the sign of ``sin(t_i - t_j)``.
"""
from __future__ import annotations

import torch


def safe_norm(x: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """Euclidean norm whose gradients of every order are finite (0 at ``x = 0``).

    A plain ``sqrt(sum x^2)`` gives NaN gradients at zero (self loops, ``r`` parallel to ``o``).
    ``x [..., D, ...]`` -> its shape without ``dim`` (size 1 there when ``keepdim=True``).
    """
    sq = x.pow(2).sum(dim=dim, keepdim=keepdim)
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def relative_positions(pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """``r_e = pos[src] - pos[dst]`` (sender minus receiver), shape ``[E, D]``."""
    return pos[edge_index[0]] - pos[edge_index[1]]


def perpendicular(ori: torch.Tensor) -> torch.Tensor:
    """2D: ``o^perp = (-o_y, o_x)`` (rotation of ``o`` by +90 degrees), shape like ``ori`` ``[..., 2]``."""
    return torch.stack([-ori[..., 1], ori[..., 0]], dim=-1)


def invariant_rn(pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Distance attribute ``a_ij = |x_j - x_i|``, shape ``[E, 1]`` (E(n)-invariant, any ``n``)."""
    return safe_norm(relative_positions(pos, edge_index), keepdim=True)


def invariant_point_cloud(pos: torch.Tensor, ori: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Attributes of position-orientation pairs, shape ``[E, 3]``.

    3D: ``[o_i.r, |r - (o_i.r) o_i|, o_i.o_j]``; 2D: ``[o_i.r, o_i^perp.r, o_i.o_j]`` with
    ``r = x_j - x_i`` and ``o_i`` the receiver's orientation (unit vectors, ``ori`` ``[N, D]``).
    """
    src, dst = edge_index[0], edge_index[1]
    r = pos[src] - pos[dst]
    o_i, o_j = ori[dst], ori[src]
    par = (r * o_i).sum(-1, keepdim=True)
    if pos.shape[1] == 3:
        second = safe_norm(r - par * o_i, keepdim=True)
    else:
        second = (r * perpendicular(o_i)).sum(-1, keepdim=True)
    return torch.cat([par, second, (o_i * o_j).sum(-1, keepdim=True)], dim=-1)


def invariant_fiber_spatial(pos: torch.Tensor, edge_index: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Spatial attributes of the fiber-bundle mode, shape ``[E, O, 2]``.

    3D: ``[o.r, |r - (o.r) o|]``; 2D: ``[o.r, o^perp.r]`` for every grid orientation ``o`` (``grid``
    ``[O, D]``) at the receiver, ``r = x_j - x_i``.
    """
    r = relative_positions(pos, edge_index)  # [E, D]
    par = r @ grid.T  # [E, O]
    if pos.shape[1] == 3:
        perp = r[:, None, :] - par[..., None] * grid[None]  # [E, O, 3]
        second = safe_norm(perp)
    else:
        second = r @ perpendicular(grid).T
    return torch.stack([par, second], dim=-1)


def invariant_fiber(grid: torch.Tensor) -> torch.Tensor:
    """Fiber attribute ``o.o'`` for all pairs of grid orientations, shape ``[O, O, 1]``."""
    return (grid @ grid.T)[..., None]
