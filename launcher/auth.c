/* SPDX-License-Identifier: MIT */
/*
 * The launcher's side of identities: it holds the service's secret key
 * (in keys/' guarded page; the program it runs never does) and runs the
 * handshake of keys.h on the rendezvous socket, through ctl.h's hooks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth.h"
#include "mpklink/keys.h"

struct mpk_auth {
	struct mpk_keys_identity *id;
	uint8_t ca[MPK_KEYS_PK_BYTES];
	struct mpk_keys_allow *allow; /* NULL: any identity the CA signed */
	struct mpk_keys_replay *replay;
	char *endpoints;
	struct mpk_ctl_auth ops;
};

/* A handshake in flight: a connect worker's (client) or the control
 * thread's (server). */
struct hs {
	int server;
	unsigned port;
	struct mpk_keys_client c;
	struct mpk_keys_server s;
};

static void a_done(void *ctx, void *state);

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static void hex(char *out, const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* A plain (same-uid) HELLO or REPLY where a signed one was due: the peer's
 * launcher runs without an identity. */
static int is_plain(const uint8_t *msg, size_t len, size_t plain_len)
{
	uint32_t magic;

	if (len != plain_len)
		return 0;
	memcpy(&magic, msg, sizeof(magic));
	return magic == MPK_RDV_MAGIC;
}

static ssize_t a_hello(void *ctx, const struct mpk_rdv_want *w, void **state, uint8_t *buf,
		       size_t cap, char *why, size_t whylen)
{
	struct mpk_auth *a = ctx;
	struct hs *st;
	int r;

	*state = NULL;
	if (cap < MPK_KEYS_HELLO_BYTES)
		return -ENOBUFS;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->port = w->server_port;
	/* The handshake's client_port field carries the batch's count: links
	 * are made ahead of connects, before any client port exists. */
	r = mpk_keys_client_hello(&st->c, a->id, now_s(), (uint16_t)w->server_port,
				  (uint16_t)w->count, w->ring_bytes, buf);
	if (r < 0) {
		snprintf(why, whylen, "signing the HELLO: %s", strerror(-r));
		free(st);
		return r;
	}
	*state = st;
	return MPK_KEYS_HELLO_BYTES;
}

static int a_check_reply(void *ctx, void *state, const uint8_t *msg, size_t len, int *status,
			 uint8_t *token, uint64_t *ring_bytes, uint8_t *session, char *why,
			 size_t whylen)
{
	struct mpk_auth *a = ctx;
	struct hs *st = state;
	struct mpk_keys_session s;
	char expect[MPK_KEYS_NAME_MAX + 1], ewhy[256];
	const char *w = NULL;
	int r, peer_status = 0, named;

	if (is_plain(msg, len, sizeof(struct mpk_rdv_reply))) {
		snprintf(why, whylen, "it presented no certificate (it runs without "
				      "MPKLINK_IDENTITY); refused");
		return -EKEYREJECTED;
	}
	named = mpk_keys_endpoint_name(a->endpoints, (uint16_t)st->port, expect, ewhy,
				       sizeof(ewhy));
	r = mpk_keys_client_reply(&st->c, msg, len, a->ca, now_s(), named == 1 ? expect : NULL, &s,
				  &peer_status, &w);
	if (r == -ECONNREFUSED) {
		/* Unsigned: all it says is that it refused, and why it claims. */
		*status = peer_status < 0 ? peer_status : -ECONNREFUSED;
		return 0;
	}
	if (r < 0) {
		snprintf(why, whylen, "%s", w ? w : strerror(-r));
		return r;
	}
	memcpy(token, s.token, MPK_TOKEN_BYTES);
	*ring_bytes = s.ring_bytes;
	*status = 0;
	memcpy(session, s.key, MPK_KEYS_SESSION_BYTES);
	sodium_memzero(&s, sizeof(s));
	return 0;
}

static int a_check_hello(void *ctx, unsigned port, const uint8_t *msg, size_t len,
			 struct mpk_rdv_want *want, void **state, char *why, size_t whylen)
{
	struct mpk_auth *a = ctx;
	struct hs *st;
	const char *w = NULL;
	int r;

	*state = NULL;
	if (is_plain(msg, len, sizeof(struct mpk_rdv_hello))) {
		snprintf(why, whylen, "the client's launcher presented no certificate (it runs "
				      "without MPKLINK_IDENTITY)");
		return -EKEYREJECTED;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->server = 1;
	st->port = port;
	r = mpk_keys_server_hello(&st->s, msg, len, a->ca, now_s(), a->replay, &w);
	if (r < 0) {
		snprintf(why, whylen, "the client's HELLO: %s", w ? w : strerror(-r));
		goto fail;
	}
	if (a->allow &&
	    (r = mpk_keys_allow_check(a->allow, (uint16_t)port, st->s.client_name, &w)) < 0) {
		snprintf(why, whylen, "client \"%s\" is not allowed on port %u (MPKLINK_ALLOW)%s%s",
			 st->s.client_name, port, w ? ": " : "", w ? w : "");
		goto fail;
	}
	want->server_port = st->s.server_port;
	crypto_generichash(want->peer, sizeof(want->peer), (const uint8_t *)st->s.client_name,
			   strlen(st->s.client_name), NULL, 0);
	want->count = st->s.client_port; /* the count: see a_hello */
	want->ring_bytes = st->s.ring_bytes;
	*state = st;
	return 0;
fail:
	a_done(a, st);
	return r;
}

static ssize_t a_reply(void *ctx, void *state, int status, const uint8_t *token,
		       uint64_t ring_bytes, uint8_t *buf, size_t cap, uint8_t *session)
{
	struct mpk_auth *a = ctx;
	struct mpk_keys_session s;
	int r;

	if (cap < MPK_KEYS_REPLY_BYTES)
		return -ENOBUFS;
	if (status < 0 || !state)
		r = mpk_keys_refusal(status < 0 ? status : -EPROTO, buf);
	else
		r = mpk_keys_server_reply(&((struct hs *)state)->s, a->id, token, ring_bytes, buf, &s);
	if (r < 0)
		return r;
	if (status == 0 && state) {
		if (session)
			memcpy(session, s.key, MPK_KEYS_SESSION_BYTES);
		sodium_memzero(&s, sizeof(s));
	}
	return MPK_KEYS_REPLY_BYTES;
}

static void a_done(void *ctx, void *state)
{
	struct hs *st = state;

	(void)ctx;
	if (st->server)
		mpk_keys_server_clear(&st->s);
	else
		mpk_keys_client_clear(&st->c);
	free(st);
}

int mpk_auth_load(const char *identity, const char *trust, const char *allow,
		  const char *endpoints, struct mpk_auth **out, char *why, size_t whylen)
{
	struct mpk_auth *a;
	const char *w = NULL;
	int r;

	*out = NULL;
	if (sodium_init() < 0) {
		snprintf(why, whylen, "libsodium cannot start");
		return -EIO;
	}
	if (!trust || !*trust) {
		snprintf(why, whylen, "MPKLINK_IDENTITY needs MPKLINK_TRUST (the CA's ca.pub)");
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	r = mpk_keys_ca_load(trust, a->ca, why, whylen);
	if (r < 0)
		goto fail;
	r = mpk_keys_identity_load(identity, &a->id, why, whylen);
	if (r < 0)
		goto fail;
	r = mpk_keys_identity_keep_from_children(a->id);
	if (r < 0) {
		snprintf(why, whylen, "cannot keep the secret key out of the program: %s",
			 strerror(-r));
		goto fail;
	}
	r = mpk_keys_cert_verify(mpk_keys_identity_cert(a->id), a->ca, now_s(), &w);
	if (r < 0) {
		snprintf(why, whylen, "%s.cert: %s (checked against %s)", identity,
			 w ? w : strerror(-r), trust);
		goto fail;
	}
	if (allow && *allow) {
		r = mpk_keys_allow_parse(allow, &a->allow, why, whylen);
		if (r < 0)
			goto fail;
	}
	r = mpk_keys_replay_new(MPK_KEYS_FRESH_WINDOW, 4096, &a->replay);
	if (r < 0) {
		snprintf(why, whylen, "replay cache: %s", strerror(-r));
		goto fail;
	}
	a->endpoints = strdup(endpoints ? endpoints : "");
	if (!a->endpoints) {
		r = -ENOMEM;
		goto fail;
	}
	{
		/* Every entry is parsed (port 0 names none): a malformed "=NAME"
		 * is refused now, not at the first connect. */
		char name[MPK_KEYS_NAME_MAX + 1];

		r = mpk_keys_endpoint_name(a->endpoints, 0, name, why, whylen);
		if (r < 0)
			goto fail;
	}
	a->ops = (struct mpk_ctl_auth){.ctx = a,
				       .hello = a_hello,
				       .check_hello = a_check_hello,
				       .reply = a_reply,
				       .check_reply = a_check_reply,
				       .done = a_done};
	*out = a;
	return 0;
fail:
	mpk_auth_free(a);
	return r;
}

int mpk_auth_check_binary(const struct mpk_auth *a, int fd, const char *path, char *why,
			  size_t whylen)
{
	const struct mpk_keys_cert *c = mpk_keys_identity_cert(a->id);
	uint8_t d[MPK_KEYS_DIGEST_BYTES];
	char have[2 * MPK_KEYS_DIGEST_BYTES + 1], want[2 * MPK_KEYS_DIGEST_BYTES + 1];
	int r = mpk_keys_digest_fd(fd, d);

	if (r < 0) {
		snprintf(why, whylen, "cannot read %s to check it: %s", path, strerror(-r));
		return r;
	}
	if (!memcmp(d, c->digest, sizeof(d)))
		return 0;
	hex(have, d, sizeof(d));
	hex(want, c->digest, sizeof(d));
	snprintf(why, whylen,
		 "%s is not the binary certificate \"%s\" was issued for: its SHA-256 is %s, "
		 "the certificate says %s",
		 path, c->name, have, want);
	return -EPERM;
}

const char *mpk_auth_name(const struct mpk_auth *a)
{
	return mpk_keys_identity_cert(a->id)->name;
}

int mpk_auth_has_allow(const struct mpk_auth *a)
{
	return a->allow != NULL;
}

const struct mpk_ctl_auth *mpk_auth_ops(struct mpk_auth *a)
{
	return &a->ops;
}

void mpk_auth_free(struct mpk_auth *a)
{
	if (!a)
		return;
	mpk_keys_identity_free(a->id);
	mpk_keys_allow_free(a->allow);
	mpk_keys_replay_free(a->replay);
	free(a->endpoints);
	sodium_memzero(a, sizeof(*a));
	free(a);
}
