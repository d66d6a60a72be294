/* SPDX-License-Identifier: MIT */
/*
 * The launcher's tables of links: pending ones (made for a client
 * launcher, waiting for our program's accept) and live ones (handed to our
 * program, kept while any process holds their socket, for an image after
 * exec). See ctl_internal.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ------------------------------------------------------- pending links */

void pending_purge(struct mpk_ctl *c, int64_t now)
{
	for (size_t i = 0; i < c->npending;) {
		if (c->pending[i].expiry_ms > now) {
			i++;
			continue;
		}
		ctl_log(c, 1, "port %u: link for client port %u never accepted; dropped",
		     c->pending[i].server_port, c->pending[i].client_port);
		mpk_ctl_fds_close(c->pending[i].fds);
		explicit_bzero(c->pending[i].key, sizeof(c->pending[i].key));
		c->pending[i] = c->pending[--c->npending];
	}
}

int pending_add(struct mpk_ctl *c, const struct pending *p)
{
	struct pending *n;

	pthread_mutex_lock(&c->lock);
	/* A client port names one connection: a new link replaces a stale one. */
	for (size_t i = 0; i < c->npending; i++) {
		if (c->pending[i].server_port == p->server_port &&
		    c->pending[i].client_port == p->client_port) {
			mpk_ctl_fds_close(c->pending[i].fds);
			c->pending[i] = *p;
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
	}
	n = realloc(c->pending, (c->npending + 1) * sizeof(*n));
	if (!n) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	c->pending = n;
	c->pending[c->npending++] = *p;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* The handshake's session key, for the program's ACCEPT of that link. */
int pending_set_key(struct mpk_ctl *c, unsigned sport, unsigned cport, const uint8_t *key)
{
	int r = -ENOENT;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->npending; i++) {
		if (c->pending[i].server_port == sport && c->pending[i].client_port == cport) {
			memcpy(c->pending[i].key, key, sizeof(c->pending[i].key));
			c->pending[i].has_key = 1;
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int pending_take(struct mpk_ctl *c, unsigned sport, unsigned cport, struct pending *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->npending; i++) {
		if (c->pending[i].server_port == sport && c->pending[i].client_port == cport) {
			*out = c->pending[i];
			c->pending[i] = c->pending[--c->npending];
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Takes ownership of fds. The oldest entry goes when the table is full:
 * only an exec'd image of a program with that many links would miss it. */
void live_add(struct mpk_ctl *c, unsigned sport, unsigned cport, unsigned side, int *fds,
		     const uint8_t *key)
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
	*e = (struct live){sport, cport, side, {-1, -1, -1}, 0, {0}, now_ms(), 0};
	memcpy(e->fds, fds, sizeof(e->fds));
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
 */
void live_closing(struct mpk_ctl *c, unsigned sport, unsigned cport, unsigned side)
{
	ssize_t i;

	pthread_mutex_lock(&c->lock);
	i = live_find(c, sport, cport, side);
	if (i >= 0) {
		c->live[i].closing = 1;
		if (!c->sweep_at_ms || c->sweep_at_ms > now_ms() + SWEEP_SOON_MS)
			__atomic_store_n(&c->sweep_at_ms, now_ms() + SWEEP_SOON_MS,
					 __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&c->lock);
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
