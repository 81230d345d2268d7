// Shim of the ATen CUDA header for the CPU emulation of the CUDA kernels (tests/cuda_emulation).
#pragma once
#include "emu.h"
