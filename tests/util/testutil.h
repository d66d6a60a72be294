/* SPDX-License-Identifier: MIT */
/* Helpers shared by the tests: fd passing, deterministic randomness,
 * checksums, and links set up across a socketpair. */
#ifndef MPK_TESTUTIL_H
#define MPK_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mpklink/ring.h"

/* Sends fd over a unix socket with one data byte. 0 or -errno. */
int tu_send_fd(int sock, int fd);
/* Receives one fd; returns it or -errno. */
int tu_recv_fd(int sock);

/* xorshift64*: the same seed gives the same stream in both processes. */
static inline uint64_t tu_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

/* Fills buf with the stream position's bytes: byte i of the stream is a
 * function of i and the seed, so the reader checks any chunking. */
void tu_fill(uint8_t *buf, size_t n, uint64_t stream_off, uint64_t seed);
/* Index of the first byte that differs from tu_fill's, or -1. */
ssize_t tu_check(const uint8_t *buf, size_t n, uint64_t stream_off, uint64_t seed);

/* FNV-1a 64, continued from h (start with TU_FNV_INIT). */
#define TU_FNV_INIT UINT64_C(0xcbf29ce484222325)
uint64_t tu_fnv(uint64_t h, const void *p, size_t n);

/* Sleeps a random 0..max_us microseconds (0 often, to keep it fast). */
void tu_jitter(uint64_t *s, unsigned max_us);

/* Blocks in poll() on fd for POLLIN, up to timeout_ms. Returns poll's. */
int tu_wait_in(int fd, int timeout_ms);

#endif
