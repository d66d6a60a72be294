/* SPDX-License-Identifier: MIT */
/*
 * HELLO and REPLY (layouts in keys/FORMATS.md). Every check runs before
 * anything from the peer is used, in an order that makes the error say
 * what is wrong: framing, then the certificate, then the signature made
 * with it, then freshness. The replay cache only ever learns nonces of
 * HELLOs whose signature verified, so garbage cannot fill it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keys_internal.h"

/* HELLO v1 */
#define H_O_CERT  12
#define H_O_EPH   268
#define H_O_NONCE 300
#define H_O_TS    316
#define H_O_SPORT 324
#define H_O_CPORT 326
#define H_O_RING  328
#define H_O_SIG   336

/* REPLY v1 */
#define R_O_STATUS 12
#define R_O_CERT   16
#define R_O_EPH    272
#define R_O_TOKEN  304
#define R_O_RING   320
#define R_O_SIG    328

_Static_assert(H_O_SIG + MPK_KEYS_SIG_BYTES == MPK_KEYS_HELLO_BYTES, "HELLO layout");
_Static_assert(R_O_SIG + MPK_KEYS_SIG_BYTES == MPK_KEYS_REPLY_BYTES, "REPLY layout");
_Static_assert(H_O_EPH - H_O_CERT == MPK_KEYS_CERT_BYTES, "HELLO cert slot");
_Static_assert(R_O_EPH - R_O_CERT == MPK_KEYS_CERT_BYTES, "REPLY cert slot");
_Static_assert(MPK_KEYS_HELLO_BYTES <= MPK_KEYS_MSG_MAX && MPK_KEYS_REPLY_BYTES <= MPK_KEYS_MSG_MAX,
	       "messages fit MPK_KEYS_MSG_MAX");

#define VERSION 1

enum { ST_NONE = 0, ST_CLIENT_SENT = 0x6d6b6331, ST_SERVER_VERIFIED = 0x6d6b7331 };

static const struct mpk__msg_desc hello_desc = {
	"MPKHELLO", VERSION, MPK_KEYS_HELLO_BYTES, "HELLO truncated", "HELLO too long",
	"not a HELLO (bad magic)", "unsupported HELLO version", "HELLO reserved field set",
};

static const struct mpk__msg_desc reply_desc = {
	"MPKREPLY", VERSION, MPK_KEYS_REPLY_BYTES, "REPLY truncated", "REPLY too long",
	"not a REPLY (bad magic)", "unsupported REPLY version", "REPLY reserved field set",
};

/* Reasons for a peer certificate that failed, per side. */
struct cert_why {
	const char *malformed, *version, *other_ca, *bad_sig, *expired, *not_yet;
};

static const struct cert_why client_cert_why = {
	"client certificate malformed",
	"unsupported client certificate version",
	"client certificate issued by another CA",
	"client certificate signature invalid (tampered?)",
	"client certificate expired",
	"client certificate not yet valid",
};

static const struct cert_why server_cert_why = {
	"server certificate malformed",
	"unsupported server certificate version",
	"server certificate issued by another CA",
	"server certificate signature invalid (tampered?)",
	"server certificate expired",
	"server certificate not yet valid",
};

int mpk__ring_bytes_ok(uint64_t v, int zero_ok)
{
	/* The transport's bounds (MPK_LINK_RING_MIN/MAX); a REPLY carries
	 * what the memfd will be sized for. */
	if (v == 0)
		return zero_ok;
	return v >= 4096 && v <= (UINT64_C(1) << 30) && !(v & (v - 1));
}

int mpk__refusal(const uint8_t *p, size_t size, size_t status_at, size_t zero_from,
		 int *peer_status, const char **why)
{
	int32_t status = (int32_t)mpk__get32(p + status_at);

	if (status == 0)
		return 0;
	/* Unsigned, so only "refused" is believed; the status is passed on
	 * as the server's claim. */
	if (status > -1 || status < -4095 || !sodium_is_zero(p + zero_from, size - zero_from)) {
		*why = "malformed refusal";
		return -EPROTO;
	}
	if (peer_status)
		*peer_status = status;
	*why = "refused";
	return -ECONNREFUSED;
}

int mpk__check_frame(const struct mpk__msg_desc *d, const uint8_t *p, size_t len,
		     const char **why)
{
	if (!p || len < 12) {
		*why = p && len >= 8 && memcmp(p, d->magic, 8) ? d->bad_magic : d->truncated;
		return -EPROTO;
	}
	if (memcmp(p, d->magic, 8)) {
		*why = d->bad_magic;
		return -EPROTO;
	}
	/* Version before length: another version may have another size. */
	if (mpk__get16(p + 8) != d->version) {
		*why = d->bad_version;
		return -EPROTONOSUPPORT;
	}
	if (len < d->size) {
		*why = d->truncated;
		return -EPROTO;
	}
	if (len > d->size) {
		*why = d->too_long;
		return -EMSGSIZE;
	}
	if (mpk__get16(p + 10) != 0) {
		*why = d->reserved;
		return -EPROTO;
	}
	return 0;
}

int mpk__check_msg(const struct mpk__msg_desc *d, const uint8_t *p, size_t len,
		   const char **why)
{
	int r = mpk__sodium();

	if (r < 0) {
		*why = "libsodium failed to initialise";
		return r;
	}
	return mpk__check_frame(d, p, len, why);
}

/* The peer's certificate: parse and verify. 0 or -errno with *why. */
static int check_peer_cert(const struct cert_why *cw, const uint8_t *p,
			   const uint8_t ca_pk[MPK_KEYS_PK_BYTES], int64_t now,
			   struct mpk_keys_cert *c, const char **why)
{
	int r = mpk_keys_cert_parse(p, MPK_KEYS_CERT_BYTES, c, NULL);

	if (r < 0) {
		*why = r == -EPROTONOSUPPORT ? cw->version : cw->malformed;
		return r;
	}
	r = mpk_keys_cert_verify(c, ca_pk, now, NULL);
	switch (r) {
	case 0:
		return 0;
	case -EKEYREJECTED:
		*why = cw->other_ca;
		break;
	case -EBADMSG:
		*why = cw->bad_sig;
		break;
	case -EKEYEXPIRED:
		*why = cw->expired;
		break;
	case -ETIME:
		*why = cw->not_yet;
		break;
	default:
		*why = "libsodium failed to initialise";
	}
	sodium_memzero(c, sizeof(*c));
	return r;
}

static void derive(uint8_t key[MPK_KEYS_SESSION_BYTES], const uint8_t shared[32],
		   const uint8_t hello_hash[32], const uint8_t *reply)
{
	static const char label[] = "mpklink-session v1";
	crypto_generichash_state g;
	uint8_t rh[32];

	crypto_generichash(rh, sizeof(rh), reply, MPK_KEYS_REPLY_BYTES, NULL, 0);
	crypto_generichash_init(&g, NULL, 0, MPK_KEYS_SESSION_BYTES);
	crypto_generichash_update(&g, (const uint8_t *)label, sizeof(label) - 1);
	crypto_generichash_update(&g, shared, 32);
	crypto_generichash_update(&g, hello_hash, 32);
	crypto_generichash_update(&g, rh, 32);
	crypto_generichash_final(&g, key, MPK_KEYS_SESSION_BYTES);
	sodium_memzero(&g, sizeof(g));
}

/* -------------------------------------------------------- replay cache */

struct replay_entry {
	uint8_t nonce[MPK_KEYS_NONCE_BYTES];
	int64_t until; /* live while now <= until */
};

struct mpk_keys_replay {
	pthread_mutex_t lock;
	unsigned window;
	size_t cap;
	struct replay_entry *e;
};

int mpk_keys_replay_new(unsigned window_s, size_t capacity, struct mpk_keys_replay **out)
{
	struct mpk_keys_replay *rc;

	*out = NULL;
	if (window_s > 3600 || capacity > ((size_t)1 << 24))
		return -EINVAL;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	rc->window = window_s ? window_s : MPK_KEYS_FRESH_WINDOW;
	rc->cap = capacity ? capacity : 4096;
	rc->e = calloc(rc->cap, sizeof(*rc->e));
	if (!rc->e) {
		free(rc);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rc->cap; i++)
		rc->e[i].until = INT64_MIN;
	pthread_mutex_init(&rc->lock, NULL);
	*out = rc;
	return 0;
}

void mpk_keys_replay_free(struct mpk_keys_replay *rc)
{
	if (!rc)
		return;
	pthread_mutex_destroy(&rc->lock);
	free(rc->e);
	free(rc);
}

/* Remembers nonce until ts + window (ts is already within the window of
 * now, so no overflow). 0, -EALREADY, -ENOBUFS. */
static int replay_insert(struct mpk_keys_replay *rc, const uint8_t *nonce, int64_t ts,
			 int64_t now)
{
	struct replay_entry *free_slot = NULL;
	int r = 0;

	pthread_mutex_lock(&rc->lock);
	for (size_t i = 0; i < rc->cap; i++) {
		struct replay_entry *e = &rc->e[i];

		if (e->until < now) {
			if (!free_slot)
				free_slot = e;
		} else if (!memcmp(e->nonce, nonce, MPK_KEYS_NONCE_BYTES)) {
			r = -EALREADY;
			goto out;
		}
	}
	if (!free_slot) {
		r = -ENOBUFS;
		goto out;
	}
	memcpy(free_slot->nonce, nonce, MPK_KEYS_NONCE_BYTES);
	free_slot->until = ts + (int64_t)rc->window;
out:
	pthread_mutex_unlock(&rc->lock);
	return r;
}

/* -------------------------------------------------------------- client */

int mpk__client_hello_with(struct mpk_keys_client *st, struct mpk_keys_identity *id,
			   const uint8_t eph_sk[32], const uint8_t nonce[MPK_KEYS_NONCE_BYTES],
			   int64_t now, uint16_t server_port, uint16_t client_port,
			   uint64_t ring_bytes, uint8_t hello[MPK_KEYS_HELLO_BYTES])
{
	int r;

	sodium_memzero(st, sizeof(*st));
	memset(hello, 0, MPK_KEYS_HELLO_BYTES);
	if (!id || !server_port || !client_port || !mpk__ring_bytes_ok(ring_bytes, 1))
		return -EINVAL;
	if ((r = mpk__sodium()) < 0)
		return r;
	memcpy(hello, hello_desc.magic, 8);
	mpk__put16(hello + 8, VERSION);
	memcpy(hello + H_O_CERT, mpk_keys_identity_cert(id)->raw, MPK_KEYS_CERT_BYTES);
	if (crypto_scalarmult_base(hello + H_O_EPH, eph_sk) != 0) {
		r = -EINVAL;
		goto fail;
	}
	memcpy(hello + H_O_NONCE, nonce, MPK_KEYS_NONCE_BYTES);
	mpk__put64(hello + H_O_TS, (uint64_t)now);
	mpk__put16(hello + H_O_SPORT, server_port);
	mpk__put16(hello + H_O_CPORT, client_port);
	mpk__put64(hello + H_O_RING, ring_bytes);
	r = mpk_keys_identity_sign(id, hello, H_O_SIG, hello + H_O_SIG);
	if (r < 0)
		goto fail;
	crypto_generichash(st->hello_hash, sizeof(st->hello_hash), hello, MPK_KEYS_HELLO_BYTES,
			   NULL, 0);
	memcpy(st->eph_sk, eph_sk, 32);
	st->state = ST_CLIENT_SENT;
	return 0;
fail:
	memset(hello, 0, MPK_KEYS_HELLO_BYTES);
	return r;
}

int mpk_keys_client_hello(struct mpk_keys_client *st, struct mpk_keys_identity *id, int64_t now,
			  uint16_t server_port, uint16_t client_port, uint64_t ring_bytes,
			  uint8_t hello[MPK_KEYS_HELLO_BYTES])
{
	uint8_t eph_sk[32], nonce[MPK_KEYS_NONCE_BYTES];
	int r = mpk__sodium();

	if (r < 0)
		return r;
	randombytes_buf(eph_sk, sizeof(eph_sk));
	randombytes_buf(nonce, sizeof(nonce));
	r = mpk__client_hello_with(st, id, eph_sk, nonce, now, server_port, client_port,
				   ring_bytes, hello);
	sodium_memzero(eph_sk, sizeof(eph_sk));
	return r;
}

int mpk_keys_client_reply(struct mpk_keys_client *st, const void *reply, size_t len,
			  const uint8_t ca_pk[MPK_KEYS_PK_BYTES], int64_t now,
			  const char *expected_server, struct mpk_keys_session *out,
			  int *peer_status, const char **why)
{
	uint8_t signed_part[32 + R_O_SIG], shared[32];
	const uint8_t *p = reply;
	struct mpk_keys_cert cert;
	const char *w = NULL;
	uint64_t ring;
	int r;

	sodium_memzero(out, sizeof(*out));
	memset(&cert, 0, sizeof(cert));
	if (peer_status)
		*peer_status = 0;
	if (st->state != ST_CLIENT_SENT) {
		r = -EINVAL;
		w = "no HELLO pending";
		goto out;
	}
	r = mpk__check_msg(&reply_desc, p, len, &w);
	if (r < 0)
		goto out;
	r = mpk__refusal(p, MPK_KEYS_REPLY_BYTES, R_O_STATUS, R_O_CERT, peer_status, &w);
	if (r < 0) {
		if (r == -ECONNREFUSED)
			w = "the server refused the handshake";
		goto out;
	}
	r = check_peer_cert(&server_cert_why, p + R_O_CERT, ca_pk, now, &cert, &w);
	if (r < 0)
		goto out;
	if (expected_server && strcmp(cert.name, expected_server)) {
		r = -EPERM;
		w = "the server is not the expected identity";
		goto out;
	}
	ring = mpk__get64(p + R_O_RING);
	if (!mpk__ring_bytes_ok(ring, 0)) {
		r = -EPROTO;
		w = "REPLY ring size out of range";
		goto out;
	}
	/* Binds the REPLY to our HELLO: an answer to any other HELLO, or a
	 * REPLY altered in transit, fails here. */
	memcpy(signed_part, st->hello_hash, 32);
	memcpy(signed_part + 32, p, R_O_SIG);
	if (crypto_sign_verify_detached(p + R_O_SIG, signed_part, sizeof(signed_part), cert.pk) !=
	    0) {
		r = -EBADMSG;
		w = "REPLY signature invalid (tampered, or it answers another HELLO)";
		goto out;
	}
	if (crypto_scalarmult(shared, st->eph_sk, p + R_O_EPH) != 0) {
		r = -EPROTO;
		w = "server ephemeral key is degenerate";
		goto out;
	}
	derive(out->key, shared, st->hello_hash, p);
	memcpy(out->token, p + R_O_TOKEN, MPK_KEYS_TOKEN_BYTES);
	out->ring_bytes = ring;
	memcpy(out->peer_name, cert.name, sizeof(out->peer_name));
	out->peer_not_after = cert.not_after;
	r = 0;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(st, sizeof(*st));
	if (r < 0)
		sodium_memzero(out, sizeof(*out));
	if (why)
		*why = w;
	return r;
}

void mpk_keys_client_clear(struct mpk_keys_client *st)
{
	sodium_memzero(st, sizeof(*st));
}

/* -------------------------------------------------------------- server */

int mpk__server_hello_with(struct mpk_keys_server *st, const void *hello, size_t len,
			   const uint8_t ca_pk[MPK_KEYS_PK_BYTES], int64_t now,
			   struct mpk_keys_replay *rc, const uint8_t eph_sk[32], const char **why)
{
	const uint8_t *p = hello;
	struct mpk_keys_cert cert;
	const char *w = NULL;
	int64_t ts;
	uint64_t ring;
	int r;

	sodium_memzero(st, sizeof(*st));
	memset(&cert, 0, sizeof(cert));
	if (!rc) {
		r = -EINVAL;
		w = "no replay cache";
		goto out;
	}
	r = mpk__check_msg(&hello_desc, p, len, &w);
	if (r < 0)
		goto out;
	ring = mpk__get64(p + H_O_RING);
	if (!mpk__get16(p + H_O_SPORT) || !mpk__get16(p + H_O_CPORT) ||
	    !mpk__ring_bytes_ok(ring, 1)) {
		r = -EPROTO;
		w = "HELLO port or ring size out of range";
		goto out;
	}
	r = check_peer_cert(&client_cert_why, p + H_O_CERT, ca_pk, now, &cert, &w);
	if (r < 0)
		goto out;
	if (crypto_sign_verify_detached(p + H_O_SIG, p, H_O_SIG, cert.pk) != 0) {
		r = -EBADMSG;
		w = "HELLO signature invalid";
		goto out;
	}
	/* No arithmetic on ts, which the peer picks; rc->window is fixed at
	 * creation. */
	ts = (int64_t)mpk__get64(p + H_O_TS);
	if (ts < now - (int64_t)rc->window || ts > now + (int64_t)rc->window) {
		r = -ESTALE;
		w = "HELLO timestamp outside the freshness window";
		goto out;
	}
	r = replay_insert(rc, p + H_O_NONCE, ts, now);
	if (r < 0) {
		w = r == -EALREADY ? "replayed HELLO (nonce already seen)"
				   : "replay cache full; refusing new HELLOs";
		goto out;
	}
	memcpy(st->priv.eph_sk, eph_sk, 32);
	if (crypto_scalarmult_base(st->priv.eph_pk, eph_sk) != 0 ||
	    crypto_scalarmult(st->priv.shared, eph_sk, p + H_O_EPH) != 0) {
		r = -EPROTO;
		w = "client ephemeral key is degenerate";
		goto out;
	}
	crypto_generichash(st->priv.hello_hash, 32, p, MPK_KEYS_HELLO_BYTES, NULL, 0);
	memcpy(st->client_name, cert.name, sizeof(st->client_name));
	st->client_not_after = cert.not_after;
	st->server_port = mpk__get16(p + H_O_SPORT);
	st->client_port = mpk__get16(p + H_O_CPORT);
	st->ring_bytes = ring;
	st->priv.state = ST_SERVER_VERIFIED;
out:
	if (r < 0)
		sodium_memzero(st, sizeof(*st));
	if (why)
		*why = w;
	return r;
}

int mpk_keys_server_hello(struct mpk_keys_server *st, const void *hello, size_t len,
			  const uint8_t ca_pk[MPK_KEYS_PK_BYTES], int64_t now,
			  struct mpk_keys_replay *rc, const char **why)
{
	uint8_t eph_sk[32];
	int r = mpk__sodium();

	if (r < 0) {
		sodium_memzero(st, sizeof(*st));
		if (why)
			*why = "libsodium failed to initialise";
		return r;
	}
	randombytes_buf(eph_sk, sizeof(eph_sk));
	r = mpk__server_hello_with(st, hello, len, ca_pk, now, rc, eph_sk, why);
	sodium_memzero(eph_sk, sizeof(eph_sk));
	return r;
}

int mpk_keys_server_reply(struct mpk_keys_server *st, struct mpk_keys_identity *id,
			  const uint8_t token[MPK_KEYS_TOKEN_BYTES], uint64_t ring_bytes,
			  uint8_t reply[MPK_KEYS_REPLY_BYTES], struct mpk_keys_session *out)
{
	uint8_t signed_part[32 + R_O_SIG];
	int r;

	memset(reply, 0, MPK_KEYS_REPLY_BYTES);
	sodium_memzero(out, sizeof(*out));
	if (st->priv.state != ST_SERVER_VERIFIED || !id || !mpk__ring_bytes_ok(ring_bytes, 0)) {
		r = -EINVAL;
		goto out;
	}
	memcpy(reply, reply_desc.magic, 8);
	mpk__put16(reply + 8, VERSION);
	mpk__put32(reply + R_O_STATUS, 0);
	memcpy(reply + R_O_CERT, mpk_keys_identity_cert(id)->raw, MPK_KEYS_CERT_BYTES);
	memcpy(reply + R_O_EPH, st->priv.eph_pk, 32);
	memcpy(reply + R_O_TOKEN, token, MPK_KEYS_TOKEN_BYTES);
	mpk__put64(reply + R_O_RING, ring_bytes);
	memcpy(signed_part, st->priv.hello_hash, 32);
	memcpy(signed_part + 32, reply, R_O_SIG);
	r = mpk_keys_identity_sign(id, signed_part, sizeof(signed_part), reply + R_O_SIG);
	if (r < 0)
		goto out;
	derive(out->key, st->priv.shared, st->priv.hello_hash, reply);
	memcpy(out->token, token, MPK_KEYS_TOKEN_BYTES);
	out->ring_bytes = ring_bytes;
	memcpy(out->peer_name, st->client_name, sizeof(out->peer_name));
	out->peer_not_after = st->client_not_after;
out:
	sodium_memzero(st, sizeof(*st));
	if (r < 0) {
		memset(reply, 0, MPK_KEYS_REPLY_BYTES);
		sodium_memzero(out, sizeof(*out));
	}
	return r;
}

int mpk_keys_refusal(int status, uint8_t reply[MPK_KEYS_REPLY_BYTES])
{
	memset(reply, 0, MPK_KEYS_REPLY_BYTES);
	if (status > -1 || status < -4095)
		return -EINVAL;
	memcpy(reply, reply_desc.magic, 8);
	mpk__put16(reply + 8, VERSION);
	mpk__put32(reply + R_O_STATUS, (uint32_t)status);
	return 0;
}

void mpk_keys_server_clear(struct mpk_keys_server *st)
{
	sodium_memzero(st, sizeof(*st));
}
