"""The PONITA network (Bekkers et al., ICLR 2024): SE(n)-equivariant message passing conditioned on
invariant attributes of point pairs, in three modes chosen by ``num_ori``:

* ``num_ori = 0``: position-only ("PNITA") on ``R^n``, attribute ``|x_j - x_i|``; exactly E(n)-equivariant.
  Vector outputs are ``v_i = sum_j w_ij (x_j - x_i)`` with invariant weights ``w_ij``.
* ``num_ori = -1``: point cloud in ``R^n x S^{n-1}``. With ``ori`` given to ``forward`` (e.g. normals),
  every point carries its orientation; otherwise every directed edge of the graph is lifted to an
  oriented point (see :func:`~geomdl.nn.ponita.lifting.lift_graph`) and outputs are averaged back to
  the nodes. Exactly equivariant (3D: under O(3); 2D: under SE(2) only).
* ``num_ori > 0``: fiber bundle; every node carries a signal on a shared grid of ``num_ori``
  orientations (a buffer, saved in the state dict) and layers are separable convolutions. Exact when
  the grid is rotated with the input (``forward(..., grid=G @ R.T)``); otherwise equivariant up to the
  grid discretisation (error measured in ``benchmarks/ponita_grid.py``).

Forward pass (fiber bundle): ``B_s = basis(a_s) w(|r|)`` ``[E, O, Bd]``, ``B_f = basis_f(o.o')`` ``[O, O, Bd]``
computed once; ``f = embed(lift(x, vec))`` ``[N, O, C]``; for each layer ``f = ConvNeXt_l(f; B_s W_s^l,
B_f W_f^l)`` and ``r_l = readout_l(f)``; ``r = mean_l r_l``; scalars ``mean_o r``, vectors
``(1/O) sum_o r(o) o``; graph-level outputs sum (or average) over the nodes of each graph. The self
loops (``r = 0``: one basis ``[O, Bd]`` for all nodes) are applied per node, not as ``N`` more edges, and
the ``B_s W_s^l`` of all layers come from one :func:`~geomdl.nn.ponita.conv.shared_linear` (cheaper backward).
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from geomdl.nn.ponita.conv import FiberBundleConv, PointConv, shared_linear
from geomdl.nn.ponita.convnext import ConvNextBlock
from geomdl.nn.ponita.edges import add_self_loops, build_edges, remove_self_loops
from geomdl.nn.ponita.embedding import PolynomialBasis, smooth_cutoff
from geomdl.nn.ponita.grids import orientation_grid
from geomdl.nn.ponita.invariants import invariant_fiber, invariant_fiber_spatial, invariant_point_cloud, invariant_rn
from geomdl.nn.ponita.lifting import (lift_graph, lift_oriented, lift_to_grid, pool_to_base, read_out_grid,
                                      read_out_oriented)
from geomdl.nn.message_passing import check_batch_vector_and_count, check_dtypes, check_edge_index
from geomdl.ops import scatter
from geomdl.ops._validation import check_bool, check_int, check_positive_real, check_real, num_batches
from geomdl.utils.devices import Float64Buffers


class Ponita(Float64Buffers):
    """PONITA network with scalar and vector outputs per node or per graph.

    Args:
        in_scalars: invariant input features per node ``C_s`` (``x`` ``[N, C_s]``; 0 for none).
        out_scalars: invariant outputs ``S``.
        out_vectors: equivariant vector outputs ``V`` (``[.., V, D]``).
        in_vectors: vector inputs per node ``C_v`` (``vec`` ``[N, C_v, D]``); needs ``num_ori != 0``.
        hidden: channels ``C`` (default 128).
        layers: number of ConvNeXt blocks (default 5).
        num_ori: mode, see the module docstring (default 16: fiber bundle with 16 orientations).
        dim: space dimension, 2 or 3 (default 3).
        grid: ``"fibonacci"`` or ``"repulsion"`` (3D fiber bundle; 2D always uses the uniform circle).
        grid_seed: seed of the repulsion grid.
        radius: cutoff of the radius graph and of the smooth window; ``None`` = fully connected graph
            per cloud without window (default).
        basis_dim: width of the shared kernel basis (default ``hidden``).
        degree: polynomial degree of the invariant embedding (default 3).
        widening: ConvNeXt widening factor (default 4).
        layer_scale: ConvNeXt layer-scale init (default ``None``: off).
        multiple_readouts: average a read-out after every layer (default ``True``).
        task_level: ``"graph"`` (pool over the nodes of each graph) or ``"node"`` (default ``"graph"``).
        pool: ``"sum"`` or ``"mean"`` for graph-level outputs (default ``"sum"``).
        max_num_neighbors: cap of the radius graph (default 1000); a ``UserWarning`` says when a node reaches
            it (neighbours inside ``radius`` may then be dropped).
        checkpoint: activation checkpointing in training (default ``False``). With autograd on, the kernel
            basis MLP and every block (its ``[E, O, C]`` (grid) or ``[E, C]`` spatial kernel, message passing
            and ConvNeXt MLP) run under :func:`torch.utils.checkpoint.checkpoint` (``use_reentrant=False``):
            their activations are not kept for the backward pass but recomputed there (the basis in chunks
            of edges). Trade-off: a lower training peak (with 4 layers about 0.6x of the plain step's; the
            saving grows with the number of layers) for a slower step (the recomputed forward); see the
            README's memory table (``python -m benchmarks memory --only ponita_train``). Same gradients (up
            to rounding), also of second order (forces trained with ``create_graph``). No effect without
            autograd (inference already builds one kernel at a time) and inside ``torch.compile`` /
            ``torch.export`` graphs (the plain path is traced there).
    """

    def __init__(self, in_scalars: int, out_scalars: int = 1, out_vectors: int = 0, in_vectors: int = 0, *,
                 hidden: int = 128, layers: int = 5, num_ori: int = 16, dim: int = 3, grid: str = "fibonacci",
                 grid_seed: int = 0, radius: float | None = None, basis_dim: int | None = None, degree: int = 3,
                 widening: int = 4, layer_scale: float | None = None, multiple_readouts: bool = True,
                 task_level: str = "graph", pool: str = "sum", max_num_neighbors: int = 1000,
                 checkpoint: bool = False):
        super().__init__()
        # check_int: Python or NumPy ints, never a bool (num_ori=False would silently pick the position mode)
        in_scalars, out_scalars, out_vectors, in_vectors = (
            check_int(value, name, 0) for name, value in (("in_scalars", in_scalars), ("out_scalars", out_scalars),
                                                          ("out_vectors", out_vectors), ("in_vectors", in_vectors)))
        hidden, layers, degree, widening = (
            check_int(value, name) for name, value in (("hidden", hidden), ("layers", layers), ("degree", degree),
                                                       ("widening", widening)))
        if isinstance(grid_seed, bool) or not isinstance(grid_seed, numbers.Integral):
            raise ValueError(f"grid_seed must be an int, got {grid_seed!r}")
        grid_seed = int(grid_seed)
        basis_dim = None if basis_dim is None else check_int(basis_dim, "basis_dim")
        if isinstance(num_ori, bool) or not isinstance(num_ori, numbers.Integral) or num_ori < -1:
            raise ValueError(f"num_ori must be 0 (positions), -1 (point cloud) or > 0 (grid size), got {num_ori!r}")
        num_ori = int(num_ori)
        dim = check_int(dim, "dim", 2)
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim!r}")
        if grid not in ("fibonacci", "repulsion"):  # checked in every mode: a misspelt grid is not silently ignored
            raise ValueError(f"grid must be 'fibonacci' or 'repulsion', got {grid!r}")
        layer_scale = check_real(layer_scale, "layer_scale", optional=True)  # a NaN gamma: every output NaN
        multiple_readouts = check_bool(multiple_readouts, "multiple_readouts")
        if num_ori == 0 and in_vectors:
            raise ValueError("in_vectors > 0 needs orientations: use num_ori = -1 or num_ori > 0")
        if out_scalars + out_vectors == 0:
            raise ValueError("the model needs at least one output: out_scalars + out_vectors > 0")
        if task_level not in ("graph", "node"):
            raise ValueError(f"task_level must be 'graph' or 'node', got {task_level!r}")
        if pool not in ("sum", "mean"):
            raise ValueError(f"pool must be 'sum' or 'mean', got {pool!r}")
        max_num_neighbors = check_int(max_num_neighbors, "max_num_neighbors")
        if radius is not None:  # None: fully connected graphs
            radius = check_positive_real(radius, "radius")
        checkpoint = check_bool(checkpoint, "checkpoint")
        basis_dim = hidden if basis_dim is None else basis_dim
        self.in_scalars, self.in_vectors, self.out_scalars, self.out_vectors = in_scalars, in_vectors, out_scalars, out_vectors
        self.num_ori, self.dim, self.radius = num_ori, dim, radius
        self.multiple_readouts, self.task_level, self.pool = multiple_readouts, task_level, pool
        self.max_num_neighbors = max_num_neighbors
        self.checkpoint = checkpoint
        if num_ori > 0:
            # float64 buffer, kept float64 when the model is cast (float64_buffers), used in the input's dtype
            self.register_buffer("grid", orientation_grid(dim, num_ori, grid, grid_seed, dtype=torch.float64))
            self.basis_fn = PolynomialBasis(2, hidden, basis_dim, degree)
            self.fiber_basis_fn = PolynomialBasis(1, hidden, basis_dim, degree)
            conv = lambda: FiberBundleConv(hidden, basis_dim)  # noqa: E731
        else:
            self.grid = None
            self.basis_fn = PolynomialBasis(1 if num_ori == 0 else 3, hidden, basis_dim, degree)
            self.fiber_basis_fn = None
            conv = lambda: PointConv(hidden, basis_dim)  # noqa: E731
        self.embed = nn.Linear(max(in_scalars + in_vectors, 1), hidden, bias=False)
        self.blocks = nn.ModuleList(ConvNextBlock(conv(), hidden, widening, layer_scale) for _ in range(layers))
        num_out = out_scalars + (out_vectors if num_ori != 0 else 0)
        self.readouts = nn.ModuleList(nn.Linear(hidden, num_out) for _ in range(layers if multiple_readouts else 1))
        if num_ori == 0 and out_vectors:
            self.vector_node = nn.Linear(hidden, out_vectors)
            self.vector_edge = nn.Linear(basis_dim, out_vectors, bias=False)

    def float64_buffers(self) -> list[str]:
        return ["grid"]

    @property
    def mode(self) -> str:
        """``"position"``, ``"point_cloud"`` or ``"grid"``."""
        return "position" if self.num_ori == 0 else ("point_cloud" if self.num_ori < 0 else "grid")

    def _check(self, pos, x, vec, edge_index, batch, ori, grid):
        if not isinstance(pos, torch.Tensor) or pos.dim() != 2 or pos.shape[1] != self.dim or not pos.is_floating_point():
            raise ValueError(f"pos must be a float tensor [N, {self.dim}], got {getattr(pos, 'shape', type(pos))}")
        n = pos.shape[0]
        if self.in_scalars and (x is None or x.shape != (n, self.in_scalars)):
            raise ValueError(f"x must have shape [N, {self.in_scalars}] = [{n}, {self.in_scalars}], got {None if x is None else tuple(x.shape)}")
        if not self.in_scalars and x is not None:
            raise ValueError("x was given but the model has in_scalars=0")
        if self.in_vectors and (vec is None or vec.shape != (n, self.in_vectors, self.dim)):
            raise ValueError(f"vec must have shape [N, {self.in_vectors}, {self.dim}], got {None if vec is None else tuple(vec.shape)}")
        if not self.in_vectors and vec is not None:
            raise ValueError("vec was given but the model has in_vectors=0")
        # integer edge_index / batch of any width (e.g. int32) are accepted; forward converts them to int64
        for name, t in (("edge_index", edge_index), ("batch", batch)):
            if t is not None and (not isinstance(t, torch.Tensor) or t.dtype.is_floating_point or t.is_complex()
                                  or t.dtype == torch.bool):
                raise TypeError(f"{name} must be an integer tensor, got {getattr(t, 'dtype', type(t).__name__)}")
        if edge_index is not None and (edge_index.dim() != 2 or edge_index.shape[0] != 2):
            raise ValueError(f"edge_index must be an integer tensor [2, E], got {edge_index.dtype} {tuple(edge_index.shape)}")
        if batch is not None and batch.shape != (n,):
            raise ValueError(f"batch must be an integer tensor [N] = [{n}], got {batch.dtype} {tuple(batch.shape)}")
        if ori is not None:
            if self.num_ori != -1:
                raise ValueError("ori (per-point orientations) is only used with num_ori = -1")
            if ori.shape != (n, self.dim):
                raise ValueError(f"ori must have shape [N, {self.dim}], got {tuple(ori.shape)}")
            _check_unit_rows("ori", ori)
        if grid is not None and (self.num_ori <= 0 or grid.shape != self.grid.shape):
            raise ValueError(f"grid override must have shape {None if self.grid is None else tuple(self.grid.shape)} (fiber-bundle mode only)")
        if grid is not None:
            _check_unit_rows("grid", grid)

    def forward(self, pos: torch.Tensor, x: torch.Tensor | None = None, vec: torch.Tensor | None = None,
                edge_index: torch.Tensor | None = None, batch: torch.Tensor | None = None,
                ori: torch.Tensor | None = None, grid: torch.Tensor | None = None,
                num_graphs: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network.

        Args:
            pos: positions ``[N, D]``.
            x: invariant node features ``[N, C_s]``.
            vec: vector node features ``[N, C_v, D]``.
            edge_index: ``[2, E]`` (src, dst); default radius/fully connected graph per cloud.
                Self loops are added (grid and position modes). A given graph is used as it is in every mode
                (``radius`` then only sets the smooth window); in the lifted mode its edges connect the lifted
                points (:func:`~geomdl.nn.ponita.lifting.lift_graph`).
            batch: sorted graph id per node ``[N]`` (default: one graph).
            ori: unit orientations ``[N, D]`` (point-cloud mode, ``num_ori = -1``).
            grid: replacement orientation grid ``[O, D]`` (e.g. the co-rotated grid ``G R^T``).
            num_graphs: number of graphs (default ``batch.max() + 1``).

        Returns:
            ``(scalars, vectors)``: ``[B or N, S]`` and ``[B or N, V, D]``.
        """
        self._check(pos, x, vec, edge_index, batch, ori, grid)
        n = pos.shape[0]
        check_dtypes(self.embed.weight, pos=pos, x=x, vec=vec, ori=ori)
        if grid is not None and not torch.compiler.is_compiling() and (
                not grid.is_floating_point() or torch.finfo(grid.dtype).eps > torch.finfo(pos.dtype).eps):
            # a more precise grid (the float64 buffer, G R^T) is rounded to pos's dtype; a coarser one would
            # silently limit the equivariance of a float64 model to its own rounding
            raise TypeError(f"grid has dtype {grid.dtype}, less precise than pos ({pos.dtype}): build the override from "
                            f"model.grid (float64) or in pos's dtype")
        # sorted, non-negative batch (the per-cloud graph builders assume it); edge indices within [0, N)
        batch, count = check_batch_vector_and_count(batch, n, pos.device)
        built = edge_index is None
        if not built:
            edge_index = check_edge_index(edge_index, n, n)
        else:
            edge_index = build_edges(pos, batch, self.radius, loop=False, max_num_neighbors=self.max_num_neighbors)
        if self.num_ori > 0:
            # a graph built here has no self-loops: no data-dependent mask (a device sync) to remove them
            s, v = self._forward_grid(pos, x, vec, edge_index if built else remove_self_loops(edge_index),
                                      self.grid if grid is None else grid)
        elif self.num_ori == 0:
            s, v = self._forward_points(pos, x, None, add_self_loops(edge_index, n), None)
        elif ori is not None:
            s, v = self._forward_points(pos, x, vec, add_self_loops(edge_index, n), ori)
        else:
            s, v = self._forward_lifted(pos, x, vec, edge_index, batch, built)
        if self.task_level == "node":
            return s, v
        if count is None:  # compiling: the count was not read from the batch vector; .item(): traceable by torch.export
            b = num_graphs if num_graphs is not None else num_batches(batch)  # no branch on a symbolic n
        else:
            b = count if num_graphs is None else check_int(num_graphs, "num_graphs", 0)
            if n and count > b:  # count: the last (largest, batch is sorted) graph id + 1
                raise ValueError(f"num_graphs must be larger than every graph id in batch (max {count - 1}), got {b}")
        return (scatter(s, batch, dim=0, dim_size=b, reduce=self.pool),
                scatter(v, batch, dim=0, dim_size=b, reduce=self.pool))

    def _window(self, pos, edge_index):
        if self.radius is None:
            return None
        return smooth_cutoff(invariant_rn(pos, edge_index), self.radius)  # [E, 1]

    def _checkpointing(self) -> bool:
        """Activation checkpointing on for this call: asked for, autograd on, not traced by a compiler."""
        return getattr(self, "checkpoint", False) and torch.is_grad_enabled() and not torch.compiler.is_compiling()

    def _maybe_checkpoint(self, fn, *args):
        """``fn(*args)``, under :func:`torch.utils.checkpoint.checkpoint` when :meth:`_checkpointing`."""
        if self._checkpointing():
            return activation_checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def _basis(self, attr, window):
        """The windowed kernel basis; checkpointed in chunks of about ``PolynomialBasis.CHUNK_ROWS`` rows, so
        that the backward pass remakes (and differentiates) the MLP activations of one chunk at a time."""
        if not self._checkpointing():
            return self._windowed_basis(attr, window)
        step = max(1, PolynomialBasis.CHUNK_ROWS // max(1, math.prod(attr.shape[1:-1])))  # edges per chunk
        parts = [activation_checkpoint(self._windowed_basis, attr[a:a + step], None if window is None else window[a:a + step],
                                       use_reentrant=False) for a in range(0, max(1, attr.shape[0]), step)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _windowed_basis(self, attr, window):
        """``basis(attr)`` ``[E, ..., Bd]`` times the window ``[E, 1]`` (when there is one)."""
        basis = self.basis_fn(attr)
        return basis if window is None else basis * window.view(window.shape[0], *[1] * (basis.dim() - 1))

    @staticmethod
    def _grid_block(block, f, edge_index, flat, fiber_basis, basis_loop, e, o):
        """One grid block with its own spatial kernel ``B_s W_s^T`` ``[E, O, C]`` made inside (checkpointed)."""
        kernel = flat @ block.conv.kernel_spatial.weight.t()
        return block(f, edge_index, None, fiber_basis, basis_loop, kernel.view(e, o, kernel.shape[-1]))

    def extra_repr(self) -> str:
        """The constructor's non-module arguments (``num_ori``: 0 positions, -1 point cloud, > 0 grid size)."""
        return (f"in_scalars={self.in_scalars}, in_vectors={self.in_vectors}, out_scalars={self.out_scalars}, "
                f"out_vectors={self.out_vectors}, num_ori={self.num_ori}, dim={self.dim}, radius={self.radius}, "
                f"task_level={self.task_level!r}, pool={self.pool!r}, checkpoint={getattr(self, 'checkpoint', False)}")

    def _readout(self, f, readouts):
        if not self.multiple_readouts:
            return self.readouts[0](f)
        return torch.stack(readouts).mean(0)

    def _forward_grid(self, pos, x, vec, edge_index, grid):
        """``edge_index`` ``[2, E]`` without self loops: the self loop ``i -> i`` of every node has ``r = 0``,
        hence the same attributes ``[0, 0]`` and window 1 for every node, and is applied per node with
        one ``[O, Bd]`` basis (:func:`~geomdl.nn.ponita.conv.fiber_bundle_conv`'s ``kernel_loop``)."""
        grid = grid.to(device=pos.device, dtype=pos.dtype)  # a CPU grid override follows pos to its device
        window = self._window(pos, edge_index)  # [E, 1] or None
        basis = self._basis(invariant_fiber_spatial(pos, edge_index, grid), window)  # [E, O, Bd]
        basis_loop = self.basis_fn(pos.new_zeros(grid.shape[0], 2))  # [O, Bd]
        fiber_basis = self.fiber_basis_fn(invariant_fiber(grid))  # [O, O, Bd]
        f = self.embed(lift_to_grid(x, vec, grid, pos.shape[0]))  # [N, O, C]
        # the spatial kernels B_s W_s^l of all layers at once: one accumulated gradient for the shared basis
        e, o, bd = basis.shape
        flat, weights = basis.reshape(e * o, bd), [b.conv.kernel_spatial.weight for b in self.blocks]
        # without autograd one layer's [E, O, C] kernel at a time (same products): the peak holds 2, not L + 1, [E, O, *]
        lazy = not torch.is_grad_enabled() and not torch.compiler.is_compiling()
        # checkpointed: each block makes (and, in the backward pass, remakes) its own kernel; none is kept
        ckpt = self._checkpointing()
        kernels = None if lazy or ckpt else shared_linear(flat, weights)
        outs = []
        for i, block in enumerate(self.blocks):
            if ckpt:
                f = activation_checkpoint(self._grid_block, block, f, edge_index, flat, fiber_basis, basis_loop, e, o,
                                          use_reentrant=False)
            else:
                kernel = flat @ weights[i].t() if lazy else kernels[i]
                f = block(f, edge_index, None, fiber_basis, basis_loop, kernel.view(e, o, kernel.shape[-1]))
                kernel = None  # noqa: F841 (frees this layer's kernel before the next one is made)
            if self.multiple_readouts:
                outs.append(self.readouts[i](f))
        return read_out_grid(self._readout(f, outs), grid, self.out_scalars)

    def _forward_points(self, pos, x, vec, edge_index, ori):
        attr = invariant_rn(pos, edge_index) if ori is None else invariant_point_cloud(pos, ori, edge_index)
        basis = self._basis(attr, self._window(pos, edge_index))  # [E, Bd]
        if ori is None:
            f = self.embed(x if x is not None else pos.new_ones(pos.shape[0], 1))
        else:
            f = self.embed(lift_oriented(x, vec, ori))
        outs = []
        for i, block in enumerate(self.blocks):
            f = self._maybe_checkpoint(block, f, edge_index, basis)
            if self.multiple_readouts:
                outs.append(self.readouts[i](f))
        r = self._readout(f, outs)
        if ori is not None:
            return read_out_oriented(r, ori, self.out_scalars)
        return r[:, :self.out_scalars], self._position_vectors(f, pos, edge_index, basis)

    def _position_vectors(self, f, pos, edge_index, basis):
        """``v_i = sum_j (W_n h_j) * (B_ij W_e) (x_j - x_i)``, ``[N, V, D]`` (zeros when ``V = 0``)."""
        n = pos.shape[0]
        if not self.out_vectors:
            return pos.new_zeros(n, 0, self.dim)
        src, dst = edge_index
        w = self.vector_node(f)[src] * self.vector_edge(basis)  # [E, V]
        rel = pos[src] - pos[dst]
        return scatter(w[:, :, None] * rel[:, None, :], dst, dim=0, dim_size=n)

    def _forward_lifted(self, pos, x, vec, edge_index, batch, built):
        n = pos.shape[0]
        lifted = lift_graph(pos, edge_index)
        lpos = pos[lifted.base]
        lx = None if x is None else x[lifted.base]
        lvec = None if vec is None else vec[lifted.base]
        ledges = lifted.edge_index
        if self.radius is not None and built:
            # the radius graph of the lifted points (capped per lifted point); a caller's edge_index is kept:
            # lifted points then talk only along its edges and within an atom (lift_graph)
            ledges = build_edges(lpos, batch[lifted.base], self.radius, loop=True, max_num_neighbors=self.max_num_neighbors)
        s, v = self._forward_points(lpos, lx, lvec, ledges, lifted.ori)
        return pool_to_base(s, lifted.base, n), pool_to_base(v, lifted.base, n)


UNIT_TOLERANCE = 1e-3


def _check_unit_rows(name: str, t: torch.Tensor) -> None:
    """Raise a ``ValueError`` naming ``name`` unless every row of ``t`` ``[N, D]`` is a finite unit vector.

    The invariants (e.g. ``o_i . r``, ``o_i . o_j``) assume ``|o| = 1``; a row off by more than
    :data:`UNIT_TOLERANCE` (or 4 ulps of a half-precision dtype) would silently rescale them. Skipped inside a compiled graph (data-dependent).
    """
    if torch.compiler.is_compiling() or not t.numel():
        return
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a float tensor of unit vectors, got {t.dtype}")
    norms = torch.linalg.vector_norm(t.detach().to(torch.promote_types(t.dtype, torch.float32)), dim=-1)  # fp16/bf16 in fp32
    tol = max(UNIT_TOLERANCE, 4 * torch.finfo(t.dtype).eps)  # bfloat16 rounds a unit vector by up to ~3e-3
    bad = ~((norms - 1).abs() <= tol)  # NaN norms count as bad
    if bool(bad.any()):
        count, first = int(bad.sum()), int(bad.nonzero()[0, 0])
        raise ValueError(f"{name} must hold unit vectors (|row| = 1 within {tol:g}): {count} of {t.shape[0]} "
                         f"rows are not, the first row {first} has norm {float(norms[first]):.6g}; normalise it, "
                         f"e.g. torch.nn.functional.normalize({name}, dim=-1), and drop zero or non-finite rows")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = ["Ponita", "count_parameters"]
