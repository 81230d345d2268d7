"""Demo stage ``layers``: the message-passing models on built-in (generated) molecules.

1. Equivariance, measured: EGNN, PaiNN and NequIP-style (CG and Gaunt products) energies must be
   O(3)-, translation- and permutation-invariant and forces ``-dE/dpos`` equivariant (float64).
2. Learning: PaiNN fits a toy pair potential ``E = sum_{i<j} exp(-|p_i - p_j|)`` with forces on random
   clusters; the held-out energy MAE before and after a short training is printed.
3. ``torch.compile``: a PaiNN layer, a Gaunt convolution and (with the compiled kernels) a PointNet++
   segmentation model, which samples FPS centres and builds its balls inside the graph, compile to one
   graph each (``fullgraph=True``, the ``aot_eager`` backend: no C++ compiler needed) and give the eager
   outputs and gradients (:func:`geomdl.testing.assert_compiles`).
4. ``torch.export``: an EGNN model exported with a dynamic node count, saved to ``egnn.pt2`` in the output
   folder, loaded back with :func:`geomdl.export.load` and run on another batch size, compared with eager.
"""
from __future__ import annotations

import pathlib
import time

import torch

from geomdl import ops


def _clusters(n, generator, sizes=(4, 8)):
    from torch_geometric.data import Data

    out = []
    for _ in range(n):
        k = int(torch.randint(sizes[0], sizes[1] + 1, (1,), generator=generator))
        pos = torch.randn(k, 3, generator=generator) * 1.2
        d = torch.cdist(pos, pos)
        energy = torch.exp(-d[torch.triu(torch.ones(k, k, dtype=torch.bool), 1)]).sum()
        out.append(Data(z=torch.randint(1, 5, (k,), generator=generator), pos=pos, energy=energy.reshape(1)))
    return out


def _equivariance(quick: bool, seed: int = 0) -> dict:
    from geomdl.models.egnn import EGNN
    from geomdl.models.nequip import NequIP
    from geomdl.models.painn import PaiNN
    from geomdl.testing import equivariance_error

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        g = torch.Generator().manual_seed(seed)
        z = torch.randint(1, 5, (9,), generator=g)
        pos = torch.randn(9, 3, generator=g) * 1.2
        batch = torch.tensor([0] * 5 + [1] * 4)
        models = {"egnn": EGNN(hidden_channels=8, num_layers=2, num_elements=10),
                  "painn": PaiNN(hidden_channels=8, num_layers=2, num_elements=10),
                  "nequip_cg": NequIP(hidden_channels=8, num_layers=2, lmax=2, num_elements=10, product="cg"),
                  "nequip_gaunt": NequIP(hidden_channels=8, num_layers=2, lmax=2, num_elements=10, product="gaunt")}
        result = {}
        for name, model in models.items():
            fn = lambda z, p, b, m=model: m.energy_and_forces(z, p, b, create_graph=False)  # noqa: E731
            errs = equivariance_error(fn, (z, pos, batch), ("scalar", "position", "batch"), ("global_scalar", "vector"),
                                      n_samples=1 if quick else 4)
            result[name] = max(errs.values())
            print(f"   {name:<13} max relative equivariance error of (energy, forces): {result[name]:.2e}", flush=True)
        return result
    finally:
        torch.set_default_dtype(old)


def _train(quick: bool, seed: int = 0) -> dict:
    from torch_geometric.loader import DataLoader

    from geomdl.models.painn import PaiNN

    g = torch.Generator().manual_seed(seed + 1)
    train, test = _clusters(48 if quick else 512, g), _clusters(32 if quick else 128, g)
    mean = float(torch.cat([d.energy / d.num_nodes for d in train]).mean())
    model = PaiNN(hidden_channels=16 if quick else 32, num_layers=2, num_elements=10, cutoff=4.0, target_mean=mean)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def mae():
        model.eval()
        with torch.no_grad():
            err = sum(float((model(b)[:, 0] - b.energy).abs().sum()) for b in DataLoader(test, batch_size=64))
        model.train()
        return err / len(test)

    before = mae()
    t0 = time.perf_counter()
    epochs = 3 if quick else 30
    for _ in range(epochs):
        for b in DataLoader(train, batch_size=16, shuffle=True):
            e, f = model.energy_and_forces(b)
            f_ref = -torch.autograd.grad(_pair_energy(b).sum(), b.pos)[0]
            loss = (e - b.energy).pow(2).mean() + (f - f_ref).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = mae()
    print(f"   PaiNN on the toy pair potential: held-out energy MAE {before:.3f} -> {after:.3f} "
          f"({epochs} epochs, {time.perf_counter() - t0:.1f} s)", flush=True)
    return {"painn_mae_before": before, "painn_mae_after": after, "epochs": epochs}


def _pair_energy(b):
    from geomdl.ops import scatter

    pos = b.pos.detach().requires_grad_(True)
    b.pos = pos
    i, j = torch.triu_indices(b.num_nodes, b.num_nodes, 1)
    same = b.batch[i] == b.batch[j]
    i, j = i[same], j[same]
    e = torch.exp(-(pos[i] - pos[j]).norm(dim=1))
    return scatter(e, b.batch[i], 0, b.num_graphs)


def _compiled(seed: int = 0) -> dict:
    from geomdl.nn import GauntConvolution, PaiNNLayer
    from geomdl.testing import assert_compiles

    g = torch.Generator().manual_seed(seed + 2)
    pos = torch.randn(12, 3, generator=g, dtype=torch.float64)
    edge_index = torch.combinations(torch.arange(12), 2).T
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    cases = {"PaiNNLayer": (PaiNNLayer(8, num_rbf=6, cutoff=4.0).double(),
                            (torch.randn(12, 8, generator=g, dtype=torch.float64),
                             torch.randn(12, 8, 3, generator=g, dtype=torch.float64), pos, edge_index)),
             "GauntConvolution": (GauntConvolution("4x0e+4x1o+4x2e", "4x0e+4x1o+4x2e", cutoff=4.0).double(),
                                  (torch.randn(12, 36, generator=g, dtype=torch.float64), pos, edge_index))}
    if ops.has_kernel("fps"):  # graph building compiles only as the compiled operators
        from geomdl.models.pointnet2 import PointNet2

        cases["PointNet2 (segmentation)"] = (
            PointNet2(3, task="node", radii=(2.0, 4.0), sa_channels=((8,), (8,)), global_channels=(8,), fp_channels=(8, 8, 8),
                      head_channels=(8,), dropout=0.0).double().eval(), (pos, None, torch.tensor([0] * 5 + [1] * 7)))
    result = {}
    for name, (layer, args) in cases.items():
        t0 = time.perf_counter()
        counts = assert_compiles(layer, args)
        result[name] = counts
        print(f"   torch.compile(fullgraph=True) of {name}: one graph, outputs and {counts['gradients']} gradients equal "
              f"to eager ({time.perf_counter() - t0:.1f} s)", flush=True)
    return result


def _exported(out_dir, seed: int = 0) -> dict:
    """An EGNN model exported with a dynamic node count, saved, loaded back through :func:`geomdl.export.load`
    and run on a molecule batch of another size: the largest difference to eager."""
    if not ops.has_kernel("radius"):  # graph building exports only as the compiled operators
        print("   torch.export: skipped (needs the compiled extension)", flush=True)
        return {"skipped": "compiled extension not loaded"}
    from torch.export import Dim

    from geomdl.export import load
    from geomdl.models.egnn import EGNN
    from geomdl.utils.io import atomic_path

    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed + 3)

    def molecules(n, clouds):
        return (torch.randint(1, 9, (n,), generator=g), 1.5 * torch.randn(n, 3, generator=g, dtype=torch.float64),
                torch.arange(clouds).repeat_interleave(n // clouds))

    model = EGNN(hidden_channels=16, num_layers=2, cutoff=3.0).double().eval()
    nodes = Dim("nodes", min=2)
    program = torch.export.export(model, molecules(12, 2), dynamic_shapes=({0: nodes},) * 3)
    path = pathlib.Path(out_dir) / "egnn.pt2"
    with atomic_path(path, ".pt2") as tmp:  # no half-written program; torch wants the .pt2 ending
        torch.export.save(program, tmp)
    other = molecules(30, 3)
    with torch.no_grad():
        err = float((load(path).module()(*other) - model(*other)).abs().max())
    print(f"   torch.export of EGNN (dynamic node count): saved to {path}, loaded back and run on 30 atoms in 3 "
          f"molecules (traced on 12 in 2); max |program - eager| = {err:.1e} ({time.perf_counter() - t0:.1f} s)",
          flush=True)
    if not err <= 1e-10:
        raise RuntimeError(f"the exported EGNN differs from eager by {err:.3g}")
    return {"max_abs_difference": err, "program": str(path)}


def run(out_dir, quick: bool, seed: int = 0) -> dict:
    return {"equivariance_error": _equivariance(quick, seed), **_train(quick, seed), "torch_compile": _compiled(seed),
            "torch_export": _exported(out_dir, seed)}
