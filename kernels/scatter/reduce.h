// The reductions of geomdl::scatter_reduce, shared by the CPU and CUDA kernels.
#pragma once
#include <torch/all.h>

#include <string>

namespace geomdl {

enum class Reduce { Sum, Mean, Max, Min };

inline Reduce parse_reduce(const std::string& r) {
  if (r == "sum") return Reduce::Sum;
  if (r == "mean") return Reduce::Mean;
  if (r == "max") return Reduce::Max;
  if (r == "min") return Reduce::Min;
  TORCH_CHECK(false, "reduce must be one of sum, mean, max, min; got ", r);
}

}  // namespace geomdl
