// SPDX-License-Identifier: MIT
// The server-stream payload pattern, shared by the C++ server and client.
// py_echo.py and node/client.js spell the same formula.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mpktest {

inline std::uint8_t pattern_byte(std::uint64_t seq, std::size_t j)
{
	std::uint32_t s = static_cast<std::uint32_t>(seq);
	std::uint32_t k = static_cast<std::uint32_t>(j);
	return static_cast<std::uint8_t>(s * 31u + k * 7u + (k >> 8));
}

inline std::string pattern(std::uint64_t seq, std::size_t size)
{
	std::string out(size, '\0');
	for (std::size_t j = 0; j < size; j++)
		out[j] = static_cast<char>(pattern_byte(seq, j));
	return out;
}

} // namespace mpktest
