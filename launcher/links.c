/* SPDX-License-Identifier: MIT */
/*
 * The launcher's tables of links: pending ones (of a batch, not yet
 * claimed by a connection) and live ones (claimed by a connection of our
 * program, kept while any process holds their socket, for an image after
 * exec), and how a batch's tokens and keys are derived. See
 * ctl_internal.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl_internal.h"
#include "sockdiag.h"

/* Close-on-exec duplicates of a link's fds, or -errno (nothing open). */
int fds_dup(const int *src, int *dst)
{
	for (int i = 0; i < MPK_LINK_NFDS; i++)
		dst[i] = -1;
	for (int i = 0; i < MPK_LINK_NFDS; i++) {
		dst[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 0);
		if (dst[i] < 0) {
			int e = errno;

			mpk_ctl_fds_close(dst);
			return -e;
		}
	}
	return 0;
}

/* ---------------------------------------------------- deriving a batch */

void mpk_link_derive(const uint8_t seed[MPK_TOKEN_BYTES], unsigned i, const uint8_t *session,
		     uint8_t token[MPK_TOKEN_BYTES], uint8_t key[32])
{
	uint8_t msg[16 + MPK_TOKEN_BYTES] = "mpklink link";

	msg[12] = (uint8_t)i;
	msg[13] = (uint8_t)(i >> 8);
	msg[14] = (uint8_t)(i >> 16);
	msg[15] = (uint8_t)(i >> 24);
	crypto_generichash(token, MPK_TOKEN_BYTES, msg, 16, seed, MPK_TOKEN_BYTES);
	if (!session)
		return;
	memcpy(msg, "mpklink mac\0\0\0\0", 16);
	memcpy(msg + 16, token, MPK_TOKEN_BYTES);
	crypto_generichash(key, 32, msg, sizeof(msg), session, 32);
	explicit_bzero(msg, sizeof(msg));
}

/* ------------------------------------------------------- pending links */

/* Under c->lock: removes entry i, keeping the order (OFFERS walks it). */
static void pending_del(struct mpk_ctl *c, size_t i)
{
	memmove(c->pending + i, c->pending + i + 1, (c->npending - i - 1) * sizeof(*c->pending));
	c->npending--;
}

void pending_purge(struct mpk_ctl *c, int64_t now)
{
	for (size_t i = 0; i < c->npending;) {
		if (c->pending[i].expiry_ms > now) {
			i++;
			continue;
		}
		/* A batch's links outlive the connects that needed them. Ours
		 * may be made over (the client released it unused). */
		ctl_log(c, 3, "port %u: a link of a batch was never claimed; dropped",
			c->pending[i].server_port);
		if (c->pending[i].side == 0)
			spare_add(c, c->pending[i].fds, c->pending[i].peer);
		else
			mpk_ctl_fds_close(c->pending[i].fds);
		explicit_bzero(c->pending[i].key, sizeof(c->pending[i].key));
		pending_del(c, i);
	}
}

int pending_add(struct mpk_ctl *c, struct pending *p)
{
	struct pending *n;

	pthread_mutex_lock(&c->lock);
	/* Grown by doubling, never shrunk: a batch adds up to 32 at once,
	 * and a realloc per link is a copy of the table per link. */
	if (c->npending == c->pending_cap) {
		size_t cap = c->pending_cap ? 2 * c->pending_cap : 64;

		n = realloc(c->pending, cap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&c->lock);
			mpk_ctl_fds_close(p->fds);
			return -ENOMEM;
		}
		c->pending = n;
		c->pending_cap = cap;
	}
	if (p->side == 0)
		p->seq = ++c->seq ? c->seq : ++c->seq; /* 0 is "none yet" */
	c->pending[c->npending++] = *p;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

size_t pending_offers(struct mpk_ctl *c, unsigned port, uint32_t since, struct pending *out,
		      size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->npending && n < max; i++) {
		struct pending *p = &c->pending[i];

		/* Numbers grow with the table's order; one that wrapped
		 * around (2^32 links) is after since too. */
		if (p->side != 0 || p->server_port != port || (int32_t)(p->seq - since) <= 0)
			continue;
		out[n++] = *p; /* the entry's own fds: see ctl_internal.h */
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

int pending_claim(struct mpk_ctl *c, unsigned side, const uint8_t *token, unsigned port,
		  unsigned cport)
{
	struct pending p;
	int found = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->npending; i++) {
		if (c->pending[i].side == side && c->pending[i].server_port == port &&
		    !memcmp(c->pending[i].token, token, MPK_TOKEN_BYTES)) {
			p = c->pending[i];
			pending_del(c, i);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (!found)
		return -ENOENT;
	live_add(c, port, cport, side, p.fds, p.has_key ? p.key : NULL, p.peer);
	explicit_bzero(&p, sizeof(p));
	return 0;
}

/* Takes ownership of fds. The oldest entry goes when the table is full:
 * only an exec'd image of a program with that many links would miss it. */
void live_add(struct mpk_ctl *c, unsigned sport, unsigned cport, unsigned side, int *fds,
	      const uint8_t *key, const uint8_t *peer)
{
	struct live *e;

	pthread_mutex_lock(&c->lock);
	if (!c->live)
		c->live = calloc(MAX_LIVE, sizeof(*c->live));
	if (!c->live) {
		pthread_mutex_unlock(&c->lock);
		mpk_ctl_fds_close(fds);
		return;
	}
	if (c->nlive == MAX_LIVE) {
		mpk_ctl_fds_close(c->live[0].fds);
		memmove(c->live, c->live + 1, (MAX_LIVE - 1) * sizeof(*c->live));
		c->nlive--;
	}
	e = &c->live[c->nlive++];
	*e = (struct live){sport, cport, side, {-1, -1, -1}, 0, {0}, now_ms(), 0, {0}};
	memcpy(e->fds, fds, sizeof(e->fds));
	memcpy(e->peer, peer, sizeof(e->peer));
	if (key) {
		e->has_key = 1;
		memcpy(e->key, key, sizeof(e->key));
	}
	if (!c->sweep_at_ms)
		__atomic_store_n(&c->sweep_at_ms, now_ms() + SWEEP_EVERY_MS, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
}

/* Returns the index of side's end of (sport, cport), or -1. Under
 * c->lock. A program that connects to itself holds both. */
ssize_t live_find(struct mpk_ctl *c, unsigned sport, unsigned cport, unsigned side)
{
	for (size_t i = c->nlive; i-- > 0;)
		if (c->live[i].server_port == sport && c->live[i].client_port == cport &&
		    c->live[i].side == side)
			return (ssize_t)i;
	return -1;
}

/* Under c->lock. */
static void live_drop(struct mpk_ctl *c, size_t i)
{
	mpk_ctl_fds_close(c->live[i].fds);
	explicit_bzero(c->live[i].key, sizeof(c->live[i].key));
	c->live[i] = c->live[--c->nlive];
}

/*
 * The program closed (sport, cport). A forked child of it may still hold
 * the socket, and be about to exec an image that asks for the link
 * (LOOKUP): the link goes once no process holds the socket (live_sweep).
 * The program knows when no other can (alone): then at once, which spares
 * a sweep (a read of the kernel's whole TCP table, milliseconds under
 * churn, on the thread that answers everything else) per 200 ms.
 */
void live_closing(struct mpk_ctl *c, unsigned sport, unsigned cport, unsigned side, int alone)
{
	int fds[MPK_LINK_NFDS] = {-1, -1, -1}, ours = 0;
	uint8_t peer[32];
	ssize_t i;

	pthread_mutex_lock(&c->lock);
	i = live_find(c, sport, cport, side);
	if (i >= 0 && alone) {
		/* Its fds closed (or kept as a spare, when we made it) once the
		 * lock is let go: the last close of the memfd frees its pages,
		 * and LINKS workers wait on it. */
		for (int k = 0; k < MPK_LINK_NFDS; k++) {
			fds[k] = c->live[i].fds[k];
			c->live[i].fds[k] = -1;
		}
		ours = c->live[i].side == 0;
		memcpy(peer, c->live[i].peer, sizeof(peer));
		live_drop(c, (size_t)i);
	} else if (i >= 0) {
		c->live[i].closing = 1;
		if (!c->sweep_at_ms || c->sweep_at_ms > now_ms() + SWEEP_SOON_MS)
			__atomic_store_n(&c->sweep_at_ms, now_ms() + SWEEP_SOON_MS,
					 __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&c->lock);
	if (ours)
		spare_add(c, fds, peer);
	else
		mpk_ctl_fds_close(fds);
}

/* ---------------------------------------------------------------- spares */

void spare_add(struct mpk_ctl *c, int *fds, const uint8_t *peer)
{
	struct spare *s;

	if (!c->spares)
		c->spares = calloc(SPARES_MAX, sizeof(*c->spares));
	if (!c->spares || c->nspares == SPARES_MAX) {
		mpk_ctl_fds_close(fds);
		return;
	}
	s = &c->spares[c->nspares++];
	memcpy(s->fds, fds, sizeof(s->fds));
	memcpy(s->peer, peer, sizeof(s->peer));
	s->ready = 0;
	/* The client's POOL_USE_MS is within it: a link it holds unused is
	 * released by then, or was claimed. */
	s->until_ms = now_ms() + PENDING_MS;
	for (int k = 0; k < MPK_LINK_NFDS; k++)
		fds[k] = -1;
	if (!c->spares_at_ms)
		c->spares_at_ms = now_ms() + SPARES_EVERY_MS;
}

static void spare_del(struct mpk_ctl *c, size_t i)
{
	c->spares[i] = c->spares[--c->nspares];
}

/* Makes spare i over when both programs released it: 1 (ready now), 0
 * (not yet), -1 (never: closed and removed). */
static int spare_try(struct mpk_ctl *c, size_t i)
{
	struct spare *s = &c->spares[i];
	int r = mpk_link_recycle(s->fds[0], c->cfg.ring_bytes, c->cfg.link_flags);

	if (r == -EAGAIN)
		return 0;
	if (r < 0) {
		mpk_ctl_fds_close(s->fds);
		spare_del(c, i);
		return -1;
	}
	/* The bells are not read here: a count left in one is a wake-up for
	 * nothing, which the waiter's arm reads away (mpk_link_arm), and a
	 * peer holding a bell could make it blocking (its flags are the open
	 * file's): a read of an empty one would stop this thread. */
	s->ready = 1;
	s->until_ms = now_ms() + PENDING_MS;
	return 1;
}

void spares_ripen(struct mpk_ctl *c, const uint8_t *peer)
{
	for (size_t i = 0; i < c->nspares;) {
		struct spare *s = &c->spares[i];

		if (!s->ready && !memcmp(s->peer, peer, sizeof(s->peer)) && spare_try(c, i) < 0)
			continue; /* removed: i holds another now */
		i++;
	}
}

int spare_take(struct mpk_ctl *c, const uint8_t *peer, int *fds)
{
	for (size_t i = 0; i < c->nspares; i++) {
		struct spare *s = &c->spares[i];

		if (s->ready && !memcmp(s->peer, peer, sizeof(s->peer))) {
			memcpy(fds, s->fds, sizeof(s->fds));
			spare_del(c, i);
			return 0;
		}
	}
	return -ENOENT;
}

void spares_tend(struct mpk_ctl *c, int64_t now)
{
	if (!c->spares_at_ms || now < c->spares_at_ms)
		return;
	for (size_t i = 0; i < c->nspares;) {
		struct spare *s = &c->spares[i];

		if (now >= s->until_ms) {
			mpk_ctl_fds_close(s->fds);
			spare_del(c, i);
			continue;
		}
		if (!s->ready && spare_try(c, i) < 0)
			continue; /* removed: i holds another now */
		i++;
	}
	c->spares_at_ms = c->nspares ? now + SPARES_EVERY_MS : 0;
}

void spares_free(struct mpk_ctl *c)
{
	for (size_t i = 0; i < c->nspares; i++)
		mpk_ctl_fds_close(c->spares[i].fds);
	free(c->spares);
	c->spares = NULL;
	c->nspares = 0;
}

struct held {
	uint32_t *v;
	size_t n, cap;
};

static void held_add(void *arg, unsigned lport, unsigned rport)
{
	struct held *h = arg;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		uint32_t *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return;
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = (uint32_t)lport << 16 | (rport & 0xffff);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Drops the links whose socket no process holds any more: closed by the
 * program (and by every child it forked), or left by one that died.
 * Young links stay (their connect may be still to come). */
void live_sweep(struct mpk_ctl *c)
{
	struct held h = {0};
	int64_t now = now_ms();
	int r = mpk_tcp_held(held_add, &h);

	if (r == 0 && h.n)
		qsort(h.v, h.n, sizeof(*h.v), u32_cmp);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nlive;) {
		struct live *e = &c->live[i];
		uint32_t key = e->side == 0 ? (uint32_t)e->server_port << 16 | e->client_port
					    : (uint32_t)e->client_port << 16 | e->server_port;
		int held = r == 0 && h.n && bsearch(&key, h.v, h.n, sizeof(*h.v), u32_cmp);

		/* Without the table, a CLOSE is taken at its word. */
		if ((e->closing && !held) ||
		    (r == 0 && !held && now - e->born_ms > LIVE_YOUNG_MS)) {
			live_drop(c, i);
			continue;
		}
		i++;
	}
	__atomic_store_n(&c->sweep_at_ms, c->nlive ? now + SWEEP_EVERY_MS : 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
	free(h.v);
}
