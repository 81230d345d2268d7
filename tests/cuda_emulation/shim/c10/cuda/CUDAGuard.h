// Shim of the c10 CUDA header for the CPU emulation of the CUDA kernels (tests/cuda_emulation).
#pragma once
#include "emu.h"
