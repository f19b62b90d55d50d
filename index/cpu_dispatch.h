// Runtime CPU dispatch shared by the SIMD kernel files: a kernel table per level (scalar, AVX2,
// AVX-512) and one atomically switchable active table, chosen once from the CPU's features.
#pragma once

#include <atomic>
#include <string_view>

namespace vectord::index {

inline bool CpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}
inline bool CpuHasAvx512() {
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

// The int8 dot-product extensions (vpdpbusd): AVX-512 VNNI (with the AVX-512 level above) and
// AVX-VNNI (its VEX-encoded 256-bit form, e.g. Alder Lake, Zen 4).
inline bool CpuHasAvx512Vnni() { return CpuHasAvx512() && __builtin_cpu_supports("avx512vnni"); }
inline bool CpuHasAvxVnni() { return CpuHasAvx2() && __builtin_cpu_supports("avxvnni"); }

// Holds the three tables of one kernel family (each a struct with a `name` member) and the one
// in use. SetLevel("auto"|"scalar"|"avx2"|"avx512") returns false when the CPU lacks the level.
template <typename Kernels>
class KernelDispatch {
 public:
  constexpr KernelDispatch(const Kernels* scalar, const Kernels* avx2, const Kernels* avx512)
      : scalar_(scalar), avx2_(avx2), avx512_(avx512) {}
  const Kernels& Get() const { return *Active().load(std::memory_order_relaxed); }
  bool SetLevel(const char* level) const {
    const std::string_view l = level == nullptr ? "auto" : level;
    const Kernels* k = nullptr;
    if (l == "auto") {
      k = Best();
    } else if (l == "scalar") {
      k = scalar_;
    } else if (l == "avx2") {
      if (CpuHasAvx2()) k = avx2_;
    } else if (l == "avx512") {
      if (CpuHasAvx512()) k = avx512_;
    }
    if (k == nullptr) return false;
    Active().store(k, std::memory_order_relaxed);
    return true;
  }

 private:
  const Kernels* Best() const { return CpuHasAvx512() ? avx512_ : CpuHasAvx2() ? avx2_ : scalar_; }
  std::atomic<const Kernels*>& Active() const {
    static std::atomic<const Kernels*> active{Best()};
    return active;
  }
  const Kernels* scalar_;
  const Kernels* avx2_;
  const Kernels* avx512_;
};

}  // namespace vectord::index
