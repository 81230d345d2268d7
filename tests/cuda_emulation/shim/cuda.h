// Shim of the CUDA runtime header for the CPU emulation of the CUDA kernels (tests/cuda_emulation).
#pragma once
#include "emu.h"
