// CRC-32C (Castagnoli), the checksum of every vectord file and block; SSE4.2 when the CPU has it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vectord::storage {

// Extends `crc` (0 to start) over n bytes. Crc32c(0, "123456789", 9) == 0xE3069283.
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);

}  // namespace vectord::storage
