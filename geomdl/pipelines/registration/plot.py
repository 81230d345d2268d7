"""PNG of two registered clouds (matplotlib, headless): target grey, aligned source orange."""
from __future__ import annotations

import torch

from geomdl.pipelines.registration.geometry import transform


def save_alignment_png(path, source: torch.Tensor, target: torch.Tensor, pose: torch.Tensor, title: str = "",
                       max_points: int = 20000) -> None:
    """Three orthographic views (xy, xz, yz) of ``target`` and ``transform(source, pose)``, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geomdl.utils.io import atomic_path

    gen = torch.Generator().manual_seed(0)

    def thin(p):
        return p[torch.randperm(p.shape[0], generator=gen)[:max_points]] if p.shape[0] > max_points else p

    tgt = thin(target.double()).numpy()
    src = thin(transform(source.double(), pose.double())).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, (a, b) in zip(axes, ((0, 1), (0, 2), (1, 2))):
        ax.scatter(tgt[:, a], tgt[:, b], s=0.3, c="0.55", label="target")
        ax.scatter(src[:, a], src[:, b], s=0.3, c="tab:orange", alpha=0.6, label="source (aligned)")
        ax.set_xlabel("xyz"[a])
        ax.set_ylabel("xyz"[b])
        ax.set_aspect("equal", adjustable="datalim")
    axes[0].legend(loc="upper right", markerscale=10)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
