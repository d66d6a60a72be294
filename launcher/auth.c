/* SPDX-License-Identifier: MIT */
/*
 * The launcher's side of identities: it holds the service's secret key
 * (in keys/' guarded page; the program it runs never does) and runs the
 * handshake of keys.h on the rendezvous socket, through ctl.h's hooks.
 * A handshake opens a session both launchers keep as a ticket (the
 * client's per server port, the server's per client session); later
 * batches resume it with one keyed hash each way instead of signatures
 * and X25519 (keys.h, "resumption").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth.h"
#include "mpklink/keys.h"

/* How long a session lives at most (also bounded by both certificates):
 * an hour of batches for one handshake. */
#define TICKET_S 3600
/* Sessions a server keeps: past it, the one nearest its expiry goes (its
 * client's next batch makes a handshake). */
#define SERVER_TICKETS 1024

/* The client's session with the server's launcher on one port. */
struct client_ticket {
	unsigned port;
	struct mpk_keys_ticket t;
};

struct mpk_auth {
	struct mpk_keys_identity *id;
	uint8_t ca[MPK_KEYS_PK_BYTES];
	struct mpk_keys_allow *allow; /* NULL: any identity the CA signed */
	struct mpk_keys_replay *replay;
	char *endpoints;
	struct mpk_ctl_auth ops;
	/* Sessions, under lock: connect workers (client) run concurrently. */
	pthread_mutex_t lock;
	struct client_ticket *mine;   /* client side, one per port */
	size_t nmine;
	struct mpk_keys_ticket *theirs; /* server side */
	size_t ntheirs;
};

/* A handshake or a resumption in flight: a connect worker's (client) or
 * the control thread's (server). */
struct hs {
	int resume; /* a RESUME/RESUMED, under t */
	unsigned port;
	struct mpk_keys_client c;
	struct mpk_keys_server s;
	struct mpk_keys_ticket t;
	struct mpk_keys_resume_req req; /* server */
	uint8_t hash[32];               /* client: the RESUME's */
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

/* When our own certificate stops being valid: no session outlives it. */
static int64_t ticket_expiry(const struct mpk_auth *a)
{
	int64_t own = mpk_keys_identity_cert(a->id)->not_after, t = now_s() + TICKET_S;

	return t < own ? t : own;
}

/* Client, under a->lock: our session for port, or NULL. */
static struct client_ticket *mine_find(struct mpk_auth *a, unsigned port)
{
	for (size_t i = 0; i < a->nmine; i++)
		if (a->mine[i].port == port)
			return &a->mine[i];
	return NULL;
}

/* Client: keeps the session a handshake on port opened (replacing any). */
static void mine_keep(struct mpk_auth *a, unsigned port, const struct mpk_keys_session *s)
{
	struct client_ticket *ct;

	pthread_mutex_lock(&a->lock);
	ct = mine_find(a, port);
	if (!ct) {
		struct client_ticket *m = realloc(a->mine, (a->nmine + 1) * sizeof(*m));

		if (m) {
			a->mine = m;
			ct = &m[a->nmine++];
			ct->port = port;
		}
	}
	/* Without memory, no session kept: the next batch makes a handshake. */
	if (ct && mpk_keys_ticket_open(s, ticket_expiry(a), &ct->t) < 0) {
		*ct = a->mine[--a->nmine];
		mpk_keys_ticket_clear(&a->mine[a->nmine].t);
	}
	pthread_mutex_unlock(&a->lock);
}

/* Client: forgets our session for port, if it is still the one with id
 * (a concurrent handshake may have replaced it). */
static void mine_drop(struct mpk_auth *a, unsigned port, const uint8_t *id)
{
	struct client_ticket *ct;

	pthread_mutex_lock(&a->lock);
	ct = mine_find(a, port);
	if (ct && (!id || !memcmp(ct->t.id, id, MPK_KEYS_TICKET_ID_BYTES))) {
		mpk_keys_ticket_clear(&ct->t);
		*ct = a->mine[--a->nmine];
		mpk_keys_ticket_clear(&a->mine[a->nmine].t);
	}
	pthread_mutex_unlock(&a->lock);
}

/* Whether a RESUME's refusal says the session cannot serve (an unknown
 * or expired ticket, a tag or number that failed): the client then forgets
 * it and makes a handshake. Other statuses (the policy) are answers. */
static int session_refused(int status)
{
	return status == -ENOKEY || status == -EKEYEXPIRED || status == -EBADMSG ||
	       status == -EALREADY || status == -EPROTO;
}

/* Client: a RESUME under our session for w's port into buf, when we have
 * a live one. Returns its length, or 0 (no session: make a handshake). */
static ssize_t resume_hello(struct mpk_auth *a, struct mpk_rdv_want *w, struct hs *st,
			    uint8_t *buf)
{
	struct client_ticket *ct;
	int r = -ENOENT;

	pthread_mutex_lock(&a->lock);
	ct = mine_find(a, w->server_port);
	if (ct) {
		r = mpk_keys_resume(&ct->t, now_s(), (uint16_t)w->server_port, (uint16_t)w->count,
				    w->ring_bytes, buf, st->hash);
		if (r == 0)
			st->t = ct->t; /* to check the RESUMED with, unlocked */
	}
	pthread_mutex_unlock(&a->lock);
	if (r == -EKEYEXPIRED || r == -EOVERFLOW)
		mine_drop(a, w->server_port, NULL);
	if (r < 0)
		return 0;
	st->resume = 1;
	w->resumed = 1;
	return MPK_KEYS_RESUME_BYTES;
}

/* Server, under a->lock: the session with id, or NULL. */
static struct mpk_keys_ticket *theirs_find(struct mpk_auth *a, const uint8_t *id)
{
	for (size_t i = 0; i < a->ntheirs; i++)
		if (!memcmp(a->theirs[i].id, id, MPK_KEYS_TICKET_ID_BYTES))
			return &a->theirs[i];
	return NULL;
}

/* Server: keeps the session a handshake opened; when full, the one that
 * expires first goes (it may already have). */
static void theirs_keep(struct mpk_auth *a, const struct mpk_keys_session *s)
{
	struct mpk_keys_ticket t, *slot = NULL;

	if (mpk_keys_ticket_open(s, ticket_expiry(a), &t) < 0)
		return;
	pthread_mutex_lock(&a->lock);
	if (!a->theirs)
		a->theirs = calloc(SERVER_TICKETS, sizeof(*a->theirs));
	if (a->theirs) {
		if (a->ntheirs < SERVER_TICKETS) {
			slot = &a->theirs[a->ntheirs++];
		} else {
			slot = &a->theirs[0];
			for (size_t i = 1; i < a->ntheirs; i++)
				if (a->theirs[i].expires < slot->expires)
					slot = &a->theirs[i];
		}
		*slot = t;
	}
	pthread_mutex_unlock(&a->lock);
	mpk_keys_ticket_clear(&t);
}

static ssize_t a_hello(void *ctx, struct mpk_rdv_want *w, void **state, uint8_t *buf,
		       size_t cap, char *why, size_t whylen)
{
	struct mpk_auth *a = ctx;
	struct hs *st;
	ssize_t k;
	int r;

	*state = NULL;
	w->resumed = 0;
	if (cap < MPK_KEYS_HELLO_BYTES || cap < MPK_KEYS_RESUME_BYTES)
		return -ENOBUFS;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->port = w->server_port;
	if ((k = resume_hello(a, w, st, buf)) > 0) {
		*state = st;
		return k;
	}
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
	if (st->resume) {
		r = mpk_keys_resumed_check(&st->t, st->hash, msg, len, &s, &peer_status, &w);
		if (r == -ECONNREFUSED && !session_refused(peer_status)) {
			*status = peer_status < 0 ? peer_status : -ECONNREFUSED;
			return 0;
		}
		if (r < 0) {
			/* Unknown to the server (it restarted, or let the
			 * session go), or an answer that fails its tag: a
			 * handshake decides, on a new connection. */
			mine_drop(a, st->port, st->t.id);
			if (r == -ECONNREFUSED) {
				snprintf(why, whylen, "it refused our session (%s)",
					 strerror(-peer_status));
				return -ENOKEY;
			}
			snprintf(why, whylen, "%s", w ? w : strerror(-r));
			return r;
		}
		goto done;
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
	mine_keep(a, st->port, &s);
done:
	memcpy(token, s.token, MPK_TOKEN_BYTES);
	*ring_bytes = s.ring_bytes;
	*status = 0;
	memcpy(session, s.key, MPK_KEYS_SESSION_BYTES);
	sodium_memzero(&s, sizeof(s));
	return 0;
}

/* Server: the client whose session st->t is asks for a batch on port;
 * fills *want. 0, or -EACCES with why. */
static int allowed(struct mpk_auth *a, unsigned port, const char *name, char *why,
		   size_t whylen)
{
	const char *w = NULL;
	int r;

	if (!a->allow || (r = mpk_keys_allow_check(a->allow, (uint16_t)port, name, &w)) == 0)
		return 0;
	snprintf(why, whylen, "client \"%s\" is not allowed on port %u (MPKLINK_ALLOW)%s%s", name,
		 port, w ? ": " : "", w ? w : "");
	return r;
}

/* Server: what a verified HELLO or RESUME from client name asks for. */
static void want_of(struct mpk_rdv_want *want, unsigned server_port, unsigned count,
		    uint64_t ring_bytes, const char *name)
{
	want->server_port = server_port;
	want->count = count;
	want->ring_bytes = ring_bytes;
	crypto_generichash(want->peer, sizeof(want->peer), (const uint8_t *)name, strlen(name),
			   NULL, 0);
}

/* Server: a RESUME. What fails about the session itself is refused with
 * a status the client takes as "make a handshake" (session_refused); why
 * says what. The state is kept on failure too: its refusal must be a
 * RESUMED. */
static int check_resume(struct mpk_auth *a, unsigned port, const uint8_t *msg, size_t len,
			struct mpk_rdv_want *want, struct hs *st, char *why, size_t whylen)
{
	uint8_t id[MPK_KEYS_TICKET_ID_BYTES];
	struct mpk_keys_ticket *t;
	const char *w = NULL;
	int r;

	st->resume = 1;
	r = mpk_keys_resume_id(msg, len, id, &w);
	if (r < 0) {
		snprintf(why, whylen, "the client's RESUME: %s", w);
		return r;
	}
	pthread_mutex_lock(&a->lock);
	t = theirs_find(a, id);
	if (!t) {
		r = -ENOKEY;
		w = "a session this launcher does not know (it restarted, or let it go)";
	} else {
		r = mpk_keys_resume_check(t, msg, len, now_s(), &st->req, &w);
		if (r == 0)
			st->t = *t;
		else if (r == -EKEYEXPIRED) {
			*t = a->theirs[--a->ntheirs];
			mpk_keys_ticket_clear(&a->theirs[a->ntheirs]);
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (r < 0) {
		snprintf(why, whylen, "the client's RESUME: %s", w ? w : strerror(-r));
		return r;
	}
	r = allowed(a, port, st->t.peer_name, why, whylen);
	if (r < 0)
		return r;
	want_of(want, st->req.server_port, st->req.count, st->req.ring_bytes, st->t.peer_name);
	want->resumed = 1;
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
	want->resumed = 0;
	if (is_plain(msg, len, sizeof(struct mpk_rdv_hello))) {
		snprintf(why, whylen, "the client's launcher presented no certificate (it runs "
				      "without MPKLINK_IDENTITY)");
		return -EKEYREJECTED;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->port = port;
	if (len >= 8 && !memcmp(msg, "MPKRESUM", 8)) {
		*state = st;
		return check_resume(a, port, msg, len, want, st, why, whylen);
	}
	r = mpk_keys_server_hello(&st->s, msg, len, a->ca, now_s(), a->replay, &w);
	if (r < 0) {
		snprintf(why, whylen, "the client's HELLO: %s", w ? w : strerror(-r));
		goto fail;
	}
	if ((r = allowed(a, port, st->s.client_name, why, whylen)) < 0)
		goto fail;
	/* The client-port field carries the count: see a_hello. */
	want_of(want, st->s.server_port, st->s.client_port, st->s.ring_bytes, st->s.client_name);
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
	struct hs *st = state;
	struct mpk_keys_session s;
	size_t len;
	int r;

	if (cap < MPK_KEYS_REPLY_BYTES || cap < MPK_KEYS_RESUMED_BYTES)
		return -ENOBUFS;
	if (st && st->resume) {
		len = MPK_KEYS_RESUMED_BYTES;
		r = status < 0 ? mpk_keys_resumed_refusal(status, buf)
			       : mpk_keys_resumed(&st->t, &st->req, token, ring_bytes, buf, &s);
	} else {
		len = MPK_KEYS_REPLY_BYTES;
		r = status < 0 || !st
			    ? mpk_keys_refusal(status < 0 ? status : -EPROTO, buf)
			    : mpk_keys_server_reply(&st->s, a->id, token, ring_bytes, buf, &s);
	}
	if (r < 0)
		return r;
	if (status == 0 && st) {
		/* A handshake opens the session later batches resume. */
		if (!st->resume)
			theirs_keep(a, &s);
		if (session)
			memcpy(session, s.key, MPK_KEYS_SESSION_BYTES);
		sodium_memzero(&s, sizeof(s));
	}
	return (ssize_t)len;
}

static void a_done(void *ctx, void *state)
{
	struct hs *st = state;

	(void)ctx;
	sodium_memzero(st, sizeof(*st));
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
	pthread_mutex_init(&a->lock, NULL);
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
	if (a->mine)
		sodium_memzero(a->mine, a->nmine * sizeof(*a->mine));
	free(a->mine);
	if (a->theirs)
		sodium_memzero(a->theirs, SERVER_TICKETS * sizeof(*a->theirs));
	free(a->theirs);
	pthread_mutex_destroy(&a->lock);
	sodium_memzero(a, sizeof(*a));
	free(a);
}
