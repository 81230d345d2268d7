// Include first in any translation unit whose floating-point results must be rounded exactly like
// the pure-PyTorch references: it turns off fused multiply-add contraction for the rest of the unit
// (each a*b+c is rounded twice, as PyTorch's elementwise ops round it).
#pragma once

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && defined(__FP_FAST_FMA)
#pragma GCC optimize("fp-contract=off")
#endif
