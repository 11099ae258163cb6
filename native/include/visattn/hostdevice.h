// visattn — portability macro for small numeric helpers shared by host code and CUDA kernels.
#pragma once
#if defined(__CUDACC__)
#define VA_HD __host__ __device__ __forceinline__
#else
#define VA_HD inline
#endif
