/* SPDX-License-Identifier: MIT */
/*
 * Session resumption (keys.h, "resumption"; layouts in keys/FORMATS.md):
 * the tickets a handshake opens, and the RESUME and RESUMED that make a
 * batch under one without a signature. Checks run in the handshake's
 * order: framing, then what the message names, then its tag, and only
 * then anything that changes state (the number taken).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "keys_internal.h"

/* RESUME v1 */
#define Q_O_SPORT  12
#define Q_O_COUNT  14
#define Q_O_ID     16
#define Q_O_NUMBER 32
#define Q_O_NONCE  40
#define Q_O_RING   56
#define Q_O_TAG    64

/* RESUMED v1 */
#define D_O_STATUS 12
#define D_O_TOKEN  16
#define D_O_RING   32
#define D_O_TAG    40

_Static_assert(Q_O_ID + MPK_KEYS_TICKET_ID_BYTES == Q_O_NUMBER, "RESUME id slot");
_Static_assert(Q_O_NONCE + MPK_KEYS_NONCE_BYTES == Q_O_RING, "RESUME nonce slot");
_Static_assert(Q_O_TAG + 32 == MPK_KEYS_RESUME_BYTES, "RESUME layout");
_Static_assert(D_O_TOKEN + MPK_KEYS_TOKEN_BYTES == D_O_RING, "RESUMED token slot");
_Static_assert(D_O_TAG + 32 == MPK_KEYS_RESUMED_BYTES, "RESUMED layout");
_Static_assert(MPK_KEYS_RESUME_WINDOW == 64, "the window is one uint64_t of bits");

static const struct mpk__msg_desc resume_desc = {
	"MPKRESUM", 1, MPK_KEYS_RESUME_BYTES, "RESUME truncated", "RESUME too long",
	"not a RESUME (bad magic)", "unsupported RESUME version", "RESUME reserved field set",
};

static const struct mpk__msg_desc resumed_desc = {
	"MPKRSUMD", 1, MPK_KEYS_RESUMED_BYTES, "RESUMED truncated", "RESUMED too long",
	"not a RESUMED (bad magic)", "unsupported RESUMED version", "RESUMED reserved field set",
};

static void kdf(uint8_t *out, size_t outlen, const uint8_t key[32], const char *label)
{
	crypto_generichash(out, outlen, (const uint8_t *)label, strlen(label), key, 32);
}

int mpk_keys_ticket_open(const struct mpk_keys_session *s, int64_t expires,
			 struct mpk_keys_ticket *out)
{
	int r = mpk__sodium();

	sodium_memzero(out, sizeof(*out));
	if (r < 0)
		return r;
	if (!s->peer_name[0])
		return -EINVAL;
	kdf(out->id, sizeof(out->id), s->key, "mpklink-ticket-id v1");
	kdf(out->secret, sizeof(out->secret), s->key, "mpklink-ticket v1");
	out->expires = expires < s->peer_not_after ? expires : s->peer_not_after;
	memcpy(out->peer_name, s->peer_name, sizeof(out->peer_name));
	return 0;
}

void mpk_keys_ticket_clear(struct mpk_keys_ticket *t)
{
	sodium_memzero(t, sizeof(*t));
}

/* The RESUME's tag: over its bytes before the tag. */
static void resume_tag(const struct mpk_keys_ticket *t, const uint8_t *msg, uint8_t tag[32])
{
	crypto_generichash(tag, 32, msg, Q_O_TAG, t->secret, sizeof(t->secret));
}

/* The RESUMED's tag: over the RESUME's hash and its bytes before the tag. */
static void resumed_tag(const struct mpk_keys_ticket *t, const uint8_t hash[32],
			const uint8_t *msg, uint8_t tag[32])
{
	crypto_generichash_state g;

	crypto_generichash_init(&g, t->secret, sizeof(t->secret), 32);
	crypto_generichash_update(&g, hash, 32);
	crypto_generichash_update(&g, msg, D_O_TAG);
	crypto_generichash_final(&g, tag, 32);
	sodium_memzero(&g, sizeof(g));
}

/* The batch key: both messages whole, so a fresh nonce or token makes it
 * new. */
static void batch_key(const struct mpk_keys_ticket *t, const uint8_t hash[32],
		      const uint8_t *resumed, uint8_t key[MPK_KEYS_SESSION_BYTES])
{
	static const char label[] = "mpklink-resumed v1";
	crypto_generichash_state g;
	uint8_t dh[32];

	crypto_generichash(dh, sizeof(dh), resumed, MPK_KEYS_RESUMED_BYTES, NULL, 0);
	crypto_generichash_init(&g, t->secret, sizeof(t->secret), MPK_KEYS_SESSION_BYTES);
	crypto_generichash_update(&g, (const uint8_t *)label, sizeof(label) - 1);
	crypto_generichash_update(&g, hash, 32);
	crypto_generichash_update(&g, dh, sizeof(dh));
	crypto_generichash_final(&g, key, MPK_KEYS_SESSION_BYTES);
	sodium_memzero(&g, sizeof(g));
}

static void session_from(const struct mpk_keys_ticket *t, const uint8_t *token,
			 uint64_t ring_bytes, struct mpk_keys_session *out)
{
	memcpy(out->token, token, MPK_KEYS_TOKEN_BYTES);
	out->ring_bytes = ring_bytes;
	memcpy(out->peer_name, t->peer_name, sizeof(out->peer_name));
	out->peer_not_after = t->expires;
}

/* -------------------------------------------------------------- client */

int mpk__resume_with(struct mpk_keys_ticket *t, const uint8_t nonce[MPK_KEYS_NONCE_BYTES],
		     int64_t now, uint16_t server_port, uint16_t count, uint64_t ring_bytes,
		     uint8_t msg[MPK_KEYS_RESUME_BYTES], uint8_t hash[32])
{
	int r = mpk__sodium();

	memset(msg, 0, MPK_KEYS_RESUME_BYTES);
	memset(hash, 0, 32);
	if (r < 0)
		return r;
	if (!server_port || !count || !mpk__ring_bytes_ok(ring_bytes, 1))
		return -EINVAL;
	if (now > t->expires)
		return -EKEYEXPIRED;
	if (t->number == UINT64_MAX)
		return -EOVERFLOW;
	t->number++;
	memcpy(msg, resume_desc.magic, 8);
	mpk__put16(msg + 8, (uint16_t)resume_desc.version);
	mpk__put16(msg + Q_O_SPORT, server_port);
	mpk__put16(msg + Q_O_COUNT, count);
	memcpy(msg + Q_O_ID, t->id, MPK_KEYS_TICKET_ID_BYTES);
	mpk__put64(msg + Q_O_NUMBER, t->number);
	memcpy(msg + Q_O_NONCE, nonce, MPK_KEYS_NONCE_BYTES);
	mpk__put64(msg + Q_O_RING, ring_bytes);
	resume_tag(t, msg, msg + Q_O_TAG);
	crypto_generichash(hash, 32, msg, MPK_KEYS_RESUME_BYTES, NULL, 0);
	return 0;
}

int mpk_keys_resume(struct mpk_keys_ticket *t, int64_t now, uint16_t server_port,
		    uint16_t count, uint64_t ring_bytes, uint8_t msg[MPK_KEYS_RESUME_BYTES],
		    uint8_t hash[32])
{
	uint8_t nonce[MPK_KEYS_NONCE_BYTES];
	int r = mpk__sodium();

	if (r < 0)
		return r;
	randombytes_buf(nonce, sizeof(nonce));
	return mpk__resume_with(t, nonce, now, server_port, count, ring_bytes, msg, hash);
}

int mpk_keys_resumed_check(const struct mpk_keys_ticket *t, const uint8_t hash[32],
			   const void *msg, size_t len, struct mpk_keys_session *out,
			   int *peer_status, const char **why)
{
	const uint8_t *p = msg;
	const char *w = NULL;
	uint8_t tag[32];
	uint64_t ring;
	int r;

	sodium_memzero(out, sizeof(*out));
	if (peer_status)
		*peer_status = 0;
	r = mpk__check_msg(&resumed_desc, p, len, &w);
	if (r < 0)
		goto out;
	r = mpk__refusal(p, MPK_KEYS_RESUMED_BYTES, D_O_STATUS, D_O_TOKEN, peer_status, &w);
	if (r < 0) {
		if (r == -ECONNREFUSED)
			w = "the server refused the RESUME";
		goto out;
	}
	ring = mpk__get64(p + D_O_RING);
	if (!mpk__ring_bytes_ok(ring, 0)) {
		r = -EPROTO;
		w = "RESUMED ring size out of range";
		goto out;
	}
	resumed_tag(t, hash, p, tag);
	if (crypto_verify_32(tag, p + D_O_TAG) != 0) {
		r = -EBADMSG;
		w = "RESUMED tag invalid (tampered, or it answers another RESUME)";
		goto out;
	}
	batch_key(t, hash, p, out->key);
	session_from(t, p + D_O_TOKEN, ring, out);
	r = 0;
out:
	sodium_memzero(tag, sizeof(tag));
	if (r < 0)
		sodium_memzero(out, sizeof(*out));
	if (why)
		*why = w;
	return r;
}

/* -------------------------------------------------------------- server */

int mpk_keys_resume_id(const void *msg, size_t len, uint8_t id[MPK_KEYS_TICKET_ID_BYTES],
		       const char **why)
{
	const char *w = NULL;
	int r = mpk__check_frame(&resume_desc, msg, len, &w);

	memset(id, 0, MPK_KEYS_TICKET_ID_BYTES);
	if (r == 0)
		memcpy(id, (const uint8_t *)msg + Q_O_ID, MPK_KEYS_TICKET_ID_BYTES);
	if (why)
		*why = w;
	return r;
}

/* Takes number n in t's window: 0, or -EALREADY (taken, or too old). */
static int take_number(struct mpk_keys_ticket *t, uint64_t n)
{
	uint64_t d;

	if (n > t->number) {
		d = n - t->number;
		t->seen = d >= MPK_KEYS_RESUME_WINDOW ? 0 : t->seen << d;
		t->seen |= 1;
		t->number = n;
		return 0;
	}
	d = t->number - n;
	if (d >= MPK_KEYS_RESUME_WINDOW || (t->seen >> d) & 1)
		return -EALREADY;
	t->seen |= UINT64_C(1) << d;
	return 0;
}

int mpk_keys_resume_check(struct mpk_keys_ticket *t, const void *msg, size_t len, int64_t now,
			  struct mpk_keys_resume_req *req, const char **why)
{
	const uint8_t *p = msg;
	const char *w = NULL;
	uint8_t tag[32];
	uint64_t ring, n;
	int r;

	memset(req, 0, sizeof(*req));
	r = mpk__check_msg(&resume_desc, p, len, &w);
	if (r < 0)
		goto out;
	if (sodium_memcmp(p + Q_O_ID, t->id, MPK_KEYS_TICKET_ID_BYTES) != 0) {
		r = -EBADMSG;
		w = "RESUME names another ticket";
		goto out;
	}
	if (now > t->expires) {
		r = -EKEYEXPIRED;
		w = "RESUME under an expired ticket";
		goto out;
	}
	ring = mpk__get64(p + Q_O_RING);
	n = mpk__get64(p + Q_O_NUMBER);
	if (!mpk__get16(p + Q_O_SPORT) || !mpk__get16(p + Q_O_COUNT) || !n ||
	    !mpk__ring_bytes_ok(ring, 1)) {
		r = -EPROTO;
		w = "RESUME port, count, number or ring size out of range";
		goto out;
	}
	resume_tag(t, p, tag);
	if (crypto_verify_32(tag, p + Q_O_TAG) != 0) {
		r = -EBADMSG;
		w = "RESUME tag invalid";
		goto out;
	}
	if ((r = take_number(t, n)) < 0) {
		w = "replayed RESUME (its number was taken, or is older than the window)";
		goto out;
	}
	req->server_port = mpk__get16(p + Q_O_SPORT);
	req->count = mpk__get16(p + Q_O_COUNT);
	req->ring_bytes = ring;
	crypto_generichash(req->hash, sizeof(req->hash), p, MPK_KEYS_RESUME_BYTES, NULL, 0);
	r = 0;
out:
	sodium_memzero(tag, sizeof(tag));
	if (r < 0)
		memset(req, 0, sizeof(*req));
	if (why)
		*why = w;
	return r;
}

int mpk_keys_resumed(const struct mpk_keys_ticket *t, const struct mpk_keys_resume_req *req,
		     const uint8_t token[MPK_KEYS_TOKEN_BYTES], uint64_t ring_bytes,
		     uint8_t msg[MPK_KEYS_RESUMED_BYTES], struct mpk_keys_session *out)
{
	int r = mpk__sodium();

	memset(msg, 0, MPK_KEYS_RESUMED_BYTES);
	sodium_memzero(out, sizeof(*out));
	if (r < 0)
		return r;
	if (!req->server_port || !mpk__ring_bytes_ok(ring_bytes, 0))
		return -EINVAL;
	memcpy(msg, resumed_desc.magic, 8);
	mpk__put16(msg + 8, (uint16_t)resumed_desc.version);
	memcpy(msg + D_O_TOKEN, token, MPK_KEYS_TOKEN_BYTES);
	mpk__put64(msg + D_O_RING, ring_bytes);
	resumed_tag(t, req->hash, msg, msg + D_O_TAG);
	batch_key(t, req->hash, msg, out->key);
	session_from(t, token, ring_bytes, out);
	return 0;
}

int mpk_keys_resumed_refusal(int status, uint8_t msg[MPK_KEYS_RESUMED_BYTES])
{
	memset(msg, 0, MPK_KEYS_RESUMED_BYTES);
	if (status > -1 || status < -4095)
		return -EINVAL;
	memcpy(msg, resumed_desc.magic, 8);
	mpk__put16(msg + 8, (uint16_t)resumed_desc.version);
	mpk__put32(msg + D_O_STATUS, (uint32_t)status);
	return 0;
}
