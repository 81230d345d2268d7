"""Device and dtype helpers shared by the layers and the training loops."""
from __future__ import annotations

import torch


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (or buffer); CPU for a module with neither."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


class Float64Buffers(torch.nn.Module):
    """Base for modules whose buffers named by :meth:`float64_buffers` stay float64 when the module is cast
    (``.float()``, ``.half()``, ``.to(dtype)``): constants such as orientation grids, energy shifts or CG
    coefficients, used in the input's dtype at run time. Only their device follows; a cast copies the float64
    original (never a rounded one back), so ``.float().double()`` gives the exact constants again."""

    def float64_buffers(self) -> list[str]:
        """Names of the buffers kept in float64 (absent or ``None`` ones are skipped)."""
        return []

    def _apply(self, fn, recurse=True):
        kept = {name: self._buffers[name] for name in self.float64_buffers() if self._buffers.get(name) is not None}
        super()._apply(fn, recurse)
        for name, original in kept.items():
            moved = self._buffers[name]
            if moved.dtype != torch.float64:  # cast: the float64 original, on the new device
                source = moved if original.is_meta else original  # nothing to copy out of a meta tensor
                self._buffers[name] = source.to(device=moved.device, dtype=torch.float64)
        return self
