/* SPDX-License-Identifier: MIT */
/*
 * Private to keys/: file headers, the secret-key holder, and the
 * deterministic cores of the handshake (the public functions draw the
 * randomness and call these; the fuzzer and its seed generator call them
 * with fixed values so the seeds stay valid).
 */
#ifndef MPK_KEYS_INTERNAL_H
#define MPK_KEYS_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "mpklink/keys.h"

#define MPK__SEED_BYTES 32

/* File kinds: the header is "mpklink-KIND vN\n". */
#define MPK__KIND_CERT   "cert"
#define MPK__KIND_CA_PUB "ca-pub"
#define MPK__KIND_CA_KEY "ca-key"
#define MPK__KIND_KEY    "key"
#define MPK__HDR_MAX     32 /* longer than any header we write */

/* Certificate v1 layout (keys/FORMATS.md). */
#define MPK__CERT_HDR     "mpklink-cert v1\n"
#define MPK__CERT_O_NAME  16
#define MPK__CERT_NAME_SZ 64
#define MPK__CERT_O_PK    80
#define MPK__CERT_O_DIG   112
#define MPK__CERT_O_NB    144
#define MPK__CERT_O_NA    152
#define MPK__CERT_O_ISS   160
#define MPK__CERT_O_SIG   192

/* Little-endian fields. */
static inline void mpk__put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void mpk__put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void mpk__put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t mpk__get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t mpk__get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t mpk__get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* sodium_init once; 0 or -EIO. */
int mpk__sodium(void);

/* snprintf into why when it is not NULL. */
void mpk__why(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Splits "mpklink-KIND vN\n" off the front of buf. Returns 0 with *hdr_len
 * and *version set (any N, so the caller can name an unknown one), or
 * -EPROTO (not such a header). kind gets the KIND, NUL-terminated.
 */
int mpk__hdr_split(const uint8_t *buf, size_t len, char kind[MPK__HDR_MAX], unsigned *version,
		   size_t *hdr_len);

/*
 * Checks that a file's contents are "mpklink-KIND v1\n" + body_len bytes.
 * Returns 0 with *body set, or -EPROTO / -EMSGSIZE / -EPROTONOSUPPORT with
 * a reason naming path in why.
 */
int mpk__file_body(const char *path, const uint8_t *buf, size_t len, const char *kind,
		   const char *what, size_t body_len, const uint8_t **body, char *why,
		   size_t why_len);

/*
 * Reads a whole file of at most cap - 1 bytes into buf (a file of cap
 * bytes or more reads as cap: too long). secret: the mode and owner rules
 * of secret files. Returns 0 with *len set, or -errno with why naming path.
 */
int mpk__read_file(const char *path, uint8_t *buf, size_t cap, size_t *len, int secret,
		   char *why, size_t why_len);

/*
 * Writes buf to path via a temporary file in the same directory, fsynced,
 * then linked in place (force: renamed over). Returns 0, -EEXIST (path
 * exists and !force), or -errno.
 */
int mpk__write_file(const char *path, const void *buf, size_t len, unsigned mode, int force,
		    char *why, size_t why_len);

/* "dir/name" + suffix (dir NULL: name + suffix) into a malloc'd string,
 * or NULL. */
char *mpk__path(const char *dir, const char *name, const char *suffix);

/* ------------------------------------------------ the secret holder */

/* An Ed25519 secret key in a guarded page (see mpk_keys_identity_load). */
struct mpk__signer;

/* From a 32-byte seed (the caller wipes its copy). 0, -ENOMEM, -errno. */
int mpk__signer_from_seed(const uint8_t seed[MPK__SEED_BYTES], struct mpk__signer **out,
			  char *why, size_t why_len);

/* From a secret file of this kind ("key" or "ca-key"). */
int mpk__signer_load(const char *path, const char *kind, struct mpk__signer **out, char *why,
		     size_t why_len);

int mpk__signer_sign(struct mpk__signer *s, const void *msg, size_t len,
		     uint8_t sig[MPK_KEYS_SIG_BYTES]);
const uint8_t *mpk__signer_pk(const struct mpk__signer *s);
void mpk__signer_free(struct mpk__signer *s);

/* An identity from parts (takes s on success, and on failure frees it). */
int mpk__identity_make(struct mpk__signer *s, const struct mpk_keys_cert *cert,
		       struct mpk_keys_identity **out);

/* Builds and signs a certificate. 0, -EINVAL (name, window), -errno. */
int mpk__cert_make(struct mpk__signer *ca, const char *name, const uint8_t pk[MPK_KEYS_PK_BYTES],
		   const uint8_t digest[MPK_KEYS_DIGEST_BYTES], int64_t not_before,
		   int64_t not_after, struct mpk_keys_cert *out);

/* ------------------------------------------------ handshake cores */

int mpk__client_hello_with(struct mpk_keys_client *st, struct mpk_keys_identity *id,
			   const uint8_t eph_sk[32], const uint8_t nonce[MPK_KEYS_NONCE_BYTES],
			   int64_t now, uint16_t server_port, uint16_t client_port,
			   uint64_t ring_bytes, uint8_t hello[MPK_KEYS_HELLO_BYTES]);

int mpk__server_hello_with(struct mpk_keys_server *st, const void *hello, size_t len,
			   const uint8_t ca_pk[MPK_KEYS_PK_BYTES], int64_t now,
			   struct mpk_keys_replay *rc, const uint8_t eph_sk[32], const char **why);

int mpk__resume_with(struct mpk_keys_ticket *t, const uint8_t nonce[MPK_KEYS_NONCE_BYTES],
		     int64_t now, uint16_t server_port, uint16_t count, uint64_t ring_bytes,
		     uint8_t msg[MPK_KEYS_RESUME_BYTES], uint8_t hash[32]);

/* A fixed-size message: 8-byte magic, u16 version, u16 reserved, ... */
struct mpk__msg_desc {
	const char *magic; /* 8 bytes */
	unsigned version;
	size_t size;
	const char *truncated, *too_long, *bad_magic, *bad_version, *reserved;
};

/* Framing, in the order that makes the reason say what is wrong: length
 * for a header, magic, version (before the exact length: another version
 * may have another size), exact length, reserved. 0 or -errno with *why. */
int mpk__check_frame(const struct mpk__msg_desc *d, const uint8_t *p, size_t len,
		     const char **why);

/* What a parser that goes on to crypto checks first: libsodium ready
 * (-errno, "libsodium failed to initialise"), then mpk__check_frame. */
int mpk__check_msg(const struct mpk__msg_desc *d, const uint8_t *p, size_t len,
		   const char **why);

/* An answer's status (int32 at status_at of a size-byte message whose
 * frame was checked): 0 (not a refusal), -ECONNREFUSED (a refusal: its
 * status into *peer_status when not NULL), or -EPROTO (a status out of
 * [-4095, -1], or a byte from zero_from on set: refusals carry nothing). */
int mpk__refusal(const uint8_t *p, size_t size, size_t status_at, size_t zero_from,
		 int *peer_status, const char **why);

/* Whether v is a ring size a REPLY may carry (0 allowed when zero_ok). */
int mpk__ring_bytes_ok(uint64_t v, int zero_ok);

#endif
