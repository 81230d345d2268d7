"""geomdl.utils.allocator.keep_freed_memory: repeated multi-MB tensors stop page-faulting (glibc)."""
import resource
import sys

import pytest
import torch

from geomdl.utils.allocator import keep_freed_memory


def _faults_per_alloc(n=20):
    a = torch.ones(1_500_000)  # 6 MB, like a PONITA message tensor [E, O, C]
    (a * 2).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        b = a * 2
        del b
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_stops_page_faults_of_repeated_large_tensors():
    assert keep_freed_memory() is True
    assert _faults_per_alloc() < 50  # a fresh 6 MB block would fault ~1500 4 KiB pages in


def test_keep_freed_memory_rejects_bad_top_pad():
    with pytest.raises(ValueError, match="top_pad"):
        keep_freed_memory(-1)
