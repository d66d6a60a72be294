/* SPDX-License-Identifier: MIT */
/* The links held ahead of connections (pool.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "ctlclient.h"
#include "fdtab.h"
#include "log.h"
#include "pool.h"

/* pool_port.ask: none in flight, or a thread is sending one. */
#define ASK_NONE (-1)
#define ASK_SENDING (-2)

/* One port's links, newest last. */
struct pool_port {
	unsigned port;
	int side;       /* 1: a client's pool; 0: a server's */
	unsigned next;  /* client: the next batch's size */
	int ask;        /* client: ASK_NONE, ASK_SENDING, or ctlclient's handle
			 * of a LINKS in flight */
	uint32_t since; /* server: the last offer's number we have */
	struct pool_server ask_to; /* client: the launcher the ask went to */
	struct pool_link *v;
	size_t n, cap;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_port *ports;
static size_t nports;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pool_link_free(struct pool_link *p)
{
	if (p->link)
		mpk_link_detach(p->link);
	fdtab_internal_close(p->bell[0]);
	fdtab_internal_close(p->bell[1]);
	explicit_bzero(p, sizeof(*p));
	p->bell[0] = p->bell[1] = -1;
}

/* A client's link it will not use: released to the server's launcher,
 * which may make it over (mpk_link_release), then freed. Not for a server's
 * offers (a link this process did not take is not its to release), nor a
 * fork child's copies of its parent's. */
void pool_link_unused(struct pool_link *p)
{
	if (p->link)
		mpk_link_release(p->link);
	pool_link_free(p);
}

/* Under pool_lock. */
static struct pool_port *port_of(unsigned port, int side)
{
	struct pool_port *n;

	for (size_t i = 0; i < nports; i++)
		if (ports[i].port == port && ports[i].side == side)
			return &ports[i];
	n = realloc(ports, (nports + 1) * sizeof(*n));
	if (!n)
		return NULL;
	ports = n;
	ports[nports] = (struct pool_port){.port = port, .side = side, .next = 2, .ask = ASK_NONE};
	return &ports[nports++];
}

/* Drops links past their time (under pool_lock); returns how many. */
static size_t expire(struct pool_port *pp, int64_t now)
{
	int64_t keep = pp->side ? POOL_USE_MS : POOL_HOLD_MS;
	size_t k = 0, dropped = 0;

	for (size_t i = 0; i < pp->n; i++) {
		if (now - pp->v[i].born_ms >= keep) {
			if (pp->side)
				pool_link_unused(&pp->v[i]);
			else
				pool_link_free(&pp->v[i]);
			dropped++;
		} else {
			pp->v[k++] = pp->v[i];
		}
	}
	pp->n = k;
	return dropped;
}

/* Under pool_lock: keeps l (the pool owns it then), or frees it. */
static void keep(struct pool_port *pp, struct pool_link *l)
{
	if (pp && pp->n == pp->cap) {
		size_t cap = pp->cap ? pp->cap * 2 : 16;
		struct pool_link *v = realloc(pp->v, cap * sizeof(*v));

		if (v) {
			pp->v = v;
			pp->cap = cap;
		}
	}
	if (!pp || pp->n == pp->cap) {
		pool_link_free(l);
		return;
	}
	pp->v[pp->n++] = *l;
}

static int same_server(const struct pool_server *a, const struct pool_server *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->ctime_ns == b->ctime_ns;
}

/* Under pool_lock: drops a client's links that came from another
 * launcher than server. */
static void drop_others(struct pool_port *pp, const struct pool_server *server)
{
	size_t k = 0;

	for (size_t i = 0; i < pp->n; i++) {
		if (same_server(&pp->v[i].from, server))
			pp->v[k++] = pp->v[i];
		else
			pool_link_unused(&pp->v[i]);
	}
	if (k < pp->n)
		slog(2, "port %u: its launcher restarted: %zu links from the one before dropped",
		     pp->port, pp->n - k);
	pp->n = k;
}

/* A batch's reply (rep, fds) attached as side: into out, *n of them. */
static void attach_batch(unsigned port, int side, struct mpk_ctl_batch *rep, int *fds,
			 const struct pool_server *from, struct pool_link *out, size_t *n)
{
	int64_t now = now_ms();

	*n = 0;
	for (uint32_t i = 0; i < rep->n; i++) {
		int *f = fds + MPK_LINK_NFDS * i;
		struct pool_link l = {.bell = {-1, -1}, .born_ms = now};

		if (from)
			l.from = *from;
		/* The bells are not looked at again (a readlink and an fcntl
		 * each, a fifth of a link's attach): our launcher made them
		 * (a server's) or checked that the server's launcher sent
		 * nonblocking eventfds (a client's), and they are the same
		 * open files. */
		int e = conn_attach_fds(f, side, 0, &l.link, l.bell);

		if (e < 0) {
			slog(1, "port %u: a link from the launcher cannot be attached: %s", port,
			     strerror(-e));
			continue;
		}
		memcpy(l.token, rep->link[i].token, MPK_TOKEN_BYTES);
		if (rep->flags & MPK_REP_MAC) {
			l.has_key = 1;
			memcpy(l.mac_key, rep->link[i].mac_key, sizeof(l.mac_key));
		}
		out[(*n)++] = l;
	}
	explicit_bzero(rep, sizeof(*rep));
}

/* A batch from the launcher, asked now (handle < 0: type's request,
 * waited for) or earlier (handle: its reply; wait 0 may say -EAGAIN). */
static int fetch(int handle, int wait, uint32_t type, unsigned port, unsigned count,
		 uint32_t *since, int side, const struct pool_server *from, struct pool_link *out,
		 size_t *n)
{
	static __thread struct mpk_ctl_batch rep;
	int fds[MPK_LINK_NFDS * MPK_CTL_BATCH_MAX], r;

	*n = 0;
	r = handle >= 0 ? ctl_batch_take(handle, wait, &rep, fds)
			: ctl_batch(type, port, count, since ? *since : 0, &rep, fds);
	if (r == 0 && since)
		*since = rep.last;
	if (r < 0) {
		explicit_bzero(&rep, sizeof(rep));
		return r;
	}
	attach_batch(port, side, &rep, fds, from, out, n);
	return *n ? 0 : -EPROTO;
}

/* A batch in flight nobody will keep: taken and freed. */
static void drop_ask(unsigned port, int ask)
{
	struct pool_link got[MPK_CTL_BATCH_MAX];
	size_t n = 0;

	if (fetch(ask, 1, 0, port, 0, NULL, 1, NULL, got, &n) == 0)
		for (size_t i = 0; i < n; i++)
			pool_link_unused(&got[i]);
}

/* Takes pp's batch in flight when it came (or, wait, when it comes) into
 * the pool. Under pool_lock, which it drops meanwhile; returns pp anew
 * (ports may move). */
static struct pool_port *collect(unsigned port, struct pool_port *pp, int wait)
{
	struct pool_link got[MPK_CTL_BATCH_MAX];
	struct pool_server to = pp->ask_to;
	int ask = pp->ask, r;
	size_t n;

	if (ask < 0)
		return pp;
	pp->ask = ASK_NONE;
	pthread_mutex_unlock(&pool_lock);
	r = fetch(ask, wait, 0, port, 0, NULL, 1, &to, got, &n);
	pthread_mutex_lock(&pool_lock);
	pp = port_of(port, 1);
	if (r == -EAGAIN) {
		if (pp)
			pp->ask = ask;
		else
			drop_ask(port, ask); /* out of memory */
		return pp;
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		keep(pp, &got[i]);
	return pp;
}

int pool_take(unsigned port, const struct pool_server *server, struct pool_link *out)
{
	struct pool_link got[MPK_CTL_BATCH_MAX];
	struct pool_port *pp;
	unsigned count = 1;
	int r, ask_now = 0;
	size_t n;

	pthread_mutex_lock(&pool_lock);
	pp = port_of(port, 1);
	if (pp && expire(pp, now_ms()))
		pp->next = 2; /* links went unused: smaller batches */
	/* A batch asked for ahead of need: taken when it came, waited for
	 * when nothing else is left. */
	if (pp)
		pp = collect(port, pp, pp->n == 0);
	if (pp)
		drop_others(pp, server);
	if (pp && pp->n) {
		/* Newest last: the oldest first, before it expires. */
		*out = pp->v[0];
		memmove(pp->v, pp->v + 1, (pp->n - 1) * sizeof(*pp->v));
		pp->n--;
		/* Under half a batch left: the next one is asked for now, and
		 * comes while these are used. */
		if (pp->ask == ASK_NONE && pp->n < pp->next / 2) {
			count = pp->next;
			if (pp->next < MPK_CTL_BATCH_MAX)
				pp->next *= 2;
			pp->ask = ASK_SENDING;
			pp->ask_to = *server;
			ask_now = 1;
		}
		pthread_mutex_unlock(&pool_lock);
		if (ask_now) {
			int h = ctl_batch_ask(MPK_CTL_LINKS, port, count, 0);

			pthread_mutex_lock(&pool_lock);
			pp = port_of(port, 1);
			if (pp)
				pp->ask = h >= 0 ? h : ASK_NONE;
			pthread_mutex_unlock(&pool_lock);
			if (!pp && h >= 0)
				drop_ask(port, h); /* out of memory */
		}
		return 0;
	}
	if (pp) {
		count = pp->next;
		if (pp->next < MPK_CTL_BATCH_MAX)
			pp->next *= 2;
	}
	pthread_mutex_unlock(&pool_lock);

	r = fetch(-1, 1, MPK_CTL_LINKS, port, count, NULL, 1, server, got, &n);
	if (r < 0)
		return r;
	*out = got[0];
	pthread_mutex_lock(&pool_lock);
	pp = port_of(port, 1);
	for (size_t i = 1; i < n; i++)
		keep(pp, &got[i]);
	pthread_mutex_unlock(&pool_lock);
	return 0;
}

/* Under pool_lock: takes the link of pp claimed as cookie, dropping
 * those another process (a worker accepting on the same socket) took, and
 * offers of a link made over since (a newer offer of it may be here:
 * its token is the one the client holds). */
static int find(struct pool_port *pp, uint64_t cookie, struct pool_link *out)
{
	for (size_t i = 0; pp && i < pp->n;) {
		struct pool_link *l = &pp->v[i];
		int stale = mpk_link_stale(l->link);

		if (!stale && !l->refused && mpk_link_claimed(l->link) == cookie &&
		    mpk_link_take(l->link) == 0) {
			*out = *l;
			pp->v[i] = pp->v[--pp->n];
			return 0;
		}
		if (stale || mpk_link_taken(l->link)) {
			pool_link_free(l);
			pp->v[i] = pp->v[--pp->n];
			continue;
		}
		i++;
	}
	return -ENOENT;
}

/* The offers the launcher made for port since the last we have, into the
 * pool, a batch at a time (at most 8). */
static void offers_fetch(unsigned port)
{
	struct pool_link got[MPK_CTL_BATCH_MAX];
	struct pool_port *pp;
	uint32_t since;
	size_t n;

	pthread_mutex_lock(&pool_lock);
	pp = port_of(port, 0);
	since = pp ? pp->since : 0;
	pthread_mutex_unlock(&pool_lock);
	for (int tries = 0; tries < 8; tries++) {
		if (fetch(-1, 1, MPK_CTL_OFFERS, port, 0, &since, 0, NULL, got, &n) < 0)
			break;
		pthread_mutex_lock(&pool_lock);
		pp = port_of(port, 0);
		if (pp && (int32_t)(since - pp->since) > 0)
			pp->since = since;
		for (size_t i = 0; i < n; i++)
			keep(pp, &got[i]);
		pthread_mutex_unlock(&pool_lock);
		if (n < MPK_CTL_BATCH_MAX)
			break;
	}
}

/* Takes the link of port's pool claimed as claim (find), under pool_lock. */
static int find_locked(unsigned port, uint64_t claim, struct pool_link *out)
{
	struct pool_port *pp;
	int r;

	pthread_mutex_lock(&pool_lock);
	pp = port_of(port, 0);
	if (pp)
		expire(pp, now_ms());
	r = find(pp, claim, out);
	pthread_mutex_unlock(&pool_lock);
	return r;
}

int pool_find(unsigned port, uint64_t cookie, struct pool_link *out)
{
	if (!cookie)
		return -ENOENT;
	if (find_locked(port, cookie, out) == 0)
		return 0;
	/* Not among those we hold: what the launcher made since (the claim
	 * was written before the client's connect, so a link it claimed is
	 * there by now, or expired). */
	offers_fetch(port);
	return find_locked(port, cookie, out);
}

/* Under pool_lock: port's links claimed PENDING (a client's connect under
 * way); with refuse, each is refused instead (mpk_link_claim_swap). */
static size_t pending_claims(unsigned port, int refuse)
{
	struct pool_port *pp = port_of(port, 0);
	size_t n = 0;

	for (size_t i = 0; pp && i < pp->n; i++) {
		struct mpk_link *l = pp->v[i].link;

		if (pp->v[i].refused || mpk_link_stale(l) ||
		    mpk_link_claimed(l) != MPK_CLAIM_PENDING)
			continue;
		if (!refuse) {
			n++;
		} else if (mpk_link_claim_swap(l, MPK_CLAIM_PENDING, MPK_CLAIM_REFUSED) == 0) {
			pp->v[i].refused = 1;
			n++;
		}
	}
	return n;
}

int pool_find_addr(unsigned port, uint64_t key, struct pool_link *out)
{
	int64_t start = now_ms(), fetched = start;
	const struct timespec nap = {0, 20000};
	size_t pending, refused;

	if (find_locked(port, key, out) == 0)
		return 0;
	offers_fetch(port);
	for (;;) {
		/* PENDING first, then the claim: a link's claim goes from
		 * PENDING to its key once, so a swap between the two looks
		 * is seen by the second (in the other order, a claim that
		 * became ours between them looked like none at all). */
		pthread_mutex_lock(&pool_lock);
		pending = pending_claims(port, 0);
		pthread_mutex_unlock(&pool_lock);
		if (find_locked(port, key, out) == 0)
			return 0;
		if (!pending) {
			slog(3, "port %u: no link claimed as %016llx among our offers", port,
			     (unsigned long long)key);
			return -ENOENT;
		}
		if (now_ms() - start >= POOL_CLAIM_WAIT_MS)
			break;
		nanosleep(&nap, NULL);
		/* The claim may be in an offer made since. */
		if (now_ms() - fetched >= 1) {
			offers_fetch(port);
			fetched = now_ms();
		}
	}
	pthread_mutex_lock(&pool_lock);
	refused = pending_claims(port, 1);
	pthread_mutex_unlock(&pool_lock);
	/* A claim may have become ours between the look and the refusal. */
	if (find_locked(port, key, out) == 0)
		return 0;
	slog(1, "port %u: %zu links claimed by connects still under way after %d ms; refused "
		"(those connections stay plain TCP)",
	     port, refused, POOL_CLAIM_WAIT_MS);
	return -ENOENT;
}

void pool_fork_prepare(void)
{
	pthread_mutex_lock(&pool_lock);
}

void pool_fork_parent(void)
{
	pthread_mutex_unlock(&pool_lock);
}

void pool_fork_child(void)
{
	/* The parent's links stay the parent's: unmapped and closed here, so
	 * no two processes ever take one. */
	for (size_t i = 0; i < nports; i++) {
		for (size_t k = 0; k < ports[i].n; k++)
			pool_link_free(&ports[i].v[k]);
		free(ports[i].v);
	}
	free(ports);
	ports = NULL;
	nports = 0;
	pthread_mutex_unlock(&pool_lock);
}
