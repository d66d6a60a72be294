/* SPDX-License-Identifier: MIT */
/*
 * Poly1305 (RFC 8439) for the MAC frames, through OpenSSL's libcrypto.
 *
 * The tags are exactly libsodium's crypto_onetimeauth's (the link ABI
 * names the algorithm, not the library); libcrypto computes them 2.5-4x
 * faster here: AVX-512/AVX2 code, and no slow path for an update that does
 * not end on a 16-byte block, which every frame's 8-byte header makes
 * (docs/PERFORMANCE.md, "MPKLINK_INTEGRITY=mac in gRPC").
 *
 * A context is one computation at a time: init, updates, final, then init
 * again. Not thread-safe per context; distinct contexts are independent.
 * Functions return 0 or -1 (libcrypto failed: out of memory).
 */
#ifndef MPK_POLY1305_H
#define MPK_POLY1305_H

#include <stddef.h>
#include <stdint.h>

#define MPK_POLY_KEY 32
#define MPK_POLY_TAG 16

struct mpk_poly;

/* A new context in *out, or -1 and *out NULL. */
int mpk_poly_new(struct mpk_poly **out);
/* NULL is allowed. */
void mpk_poly_free(struct mpk_poly *p);

int mpk_poly_init(struct mpk_poly *p, const uint8_t key[MPK_POLY_KEY]);
int mpk_poly_update(struct mpk_poly *p, const void *data, size_t n);
int mpk_poly_final(struct mpk_poly *p, uint8_t tag[MPK_POLY_TAG]);

#endif
