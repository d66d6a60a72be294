/* SPDX-License-Identifier: MIT */
/* epoll emulation (epoll.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "conn.h"
#include "epoll.h"
#include "fdtab.h"
#include "log.h"
#include "readiness.h"
#include "real.h"
#include "settings.h"
#include "signals.h"
#include "spin.h"

/* Our epoll_data for an upgraded fd: non-canonical, so never a pointer of
 * the application's, and never a small integer. */
#define ETAG UINT64_C(0xfeed4d504b000000)
#define ETAG_MASK UINT64_C(0xffffffffff000000)
/* A link's doorbell eventfd in a set: nothing to do when it fires but look
 * at the rings, which every epoll_wait does anyway. */
#define BTAG UINT64_C(0xfeed4d504c000000)

/* One upgraded fd in a set. It holds no reference on u: as the kernel's
 * registration lives while the file does (a dup keeps it reporting after
 * the registered number is closed), an entry lives until its connection
 * is destroyed, which first removes it (eset_forget_conn, under each
 * set's mu, so no one looking at the entry sees u go). */
struct ereg {
	int fd;
	struct ufd *u;
	uint32_t events;
	epoll_data_t data;
	uint64_t rxg, txg;
	unsigned wblock_seen;
	uint32_t last;
	int fresh, disabled;
};

struct eset {
	struct fdobj obj; /* first: FDO_EPOLL */
	pthread_mutex_t mu;
	int epfd;
	struct ereg *v;
	size_t n, cap;
	struct eset **nested; /* sets registered in this one (each referenced) */
	uint32_t *nested_ev;  /* how each is registered here (EPOLLET...) */
	size_t nnested;
	uint64_t rung_sig;    /* as a nested set: its news when it last rang */
	size_t rr;          /* where the next collect starts: LT round robin */
	int waited;         /* a thread waited in it once: an addition rings */
	struct eset *next;  /* the live sets, under esets_lock */
	int hot;            /* the rings had news at the last look: spin first */
	uint64_t kernel_ns; /* when the kernel's events were last harvested */
};

static pthread_mutex_t esets_lock = PTHREAD_MUTEX_INITIALIZER;
static struct eset *esets;

static struct eset *eset_of(struct fdobj *o)
{
	return (struct eset *)o;
}

static void eset_init(struct fdobj *o)
{
	pthread_mutex_init(&eset_of(o)->mu, NULL);
}

static void eset_destroy(struct fdobj *o, int quiet)
{
	struct eset *es = eset_of(o), **pp;

	(void)quiet;
	pthread_mutex_lock(&esets_lock);
	for (pp = &esets; *pp; pp = &(*pp)->next) {
		if (*pp == es) {
			*pp = es->next;
			break;
		}
	}
	pthread_mutex_unlock(&esets_lock);
	free(es->v);
	es->v = NULL;
	es->n = es->cap = 0;
	for (size_t i = 0; i < es->nnested; i++)
		fdobj_put(&es->nested[i]->obj);
	free(es->nested);
	free(es->nested_ev);
	es->nested = NULL;
	es->nested_ev = NULL;
	es->nnested = 0;
	pthread_mutex_destroy(&es->mu);
}

static void eset_fork_child(struct fdobj *o)
{
	pthread_mutex_init(&eset_of(o)->mu, NULL);
}

static const struct fdobj_ops eset_ops = {
	.size = sizeof(struct eset),
	.init = eset_init,
	.destroy = eset_destroy,
	.fork_child = eset_fork_child,
};

/* es->n changes under es->mu, and epoll_wait reads it without: whether
 * the set has any link at all (a stale answer is corrected by the doorbell
 * an addition rings). */
static void eset_set_n(struct eset *es, size_t n)
{
	__atomic_store_n(&es->n, n, __ATOMIC_RELAXED);
}

/* A link's doorbell sits in a set once, for all of its fds there (dup):
 * it leaves when the last of them does. Under es->mu. */
static void eset_bell_unused(struct eset *es, struct ufd *u)
{
	if (u->bell[0] < 0)
		return;
	for (size_t k = 0; k < es->n; k++)
		if (es->v[k].u == u)
			return;
	real.epoll_ctl(es->epfd, EPOLL_CTL_DEL, u->bell[0], NULL);
}

/* Removes entry k. Under es->mu. */
static void eset_remove(struct eset *es, size_t k)
{
	struct ufd *u = es->v[k].u;

	es->v[k] = es->v[es->n - 1];
	eset_set_n(es, es->n - 1);
	eset_bell_unused(es, u);
}

/* Drops fd's entries from every set; restore=1 gives the kernel back the
 * application's own registration (a connection that turned out plain). */
static void eset_drop_fd(int fd, int restore)
{
	pthread_mutex_lock(&esets_lock);
	for (struct eset *es = esets; es; es = es->next) {
		pthread_mutex_lock(&es->mu);
		for (size_t k = 0; k < es->n; k++) {
			if (es->v[k].fd != fd)
				continue;
			if (restore) {
				struct epoll_event ev = {.events = es->v[k].events,
							 .data = es->v[k].data};
				real.epoll_ctl(es->epfd, EPOLL_CTL_MOD, fd, &ev);
			}
			eset_remove(es, k);
			break;
		}
		pthread_mutex_unlock(&es->mu);
	}
	pthread_mutex_unlock(&esets_lock);
}

static void eset_forget_fd(int fd)
{
	eset_drop_fd(fd, 0);
}

static void eset_plain_fd(int fd)
{
	eset_drop_fd(fd, 1);
}

/* u is being destroyed: no set may hold it any longer (its file is being
 * released, which ends the kernel's registrations too). */
static void eset_forget_conn(struct ufd *u)
{
	pthread_mutex_lock(&esets_lock);
	for (struct eset *es = esets; es; es = es->next) {
		pthread_mutex_lock(&es->mu);
		for (size_t k = 0; k < es->n;) {
			if (es->v[k].u == u)
				eset_remove(es, k);
			else
				k++;
		}
		pthread_mutex_unlock(&es->mu);
	}
	pthread_mutex_unlock(&esets_lock);
}

void epoll_register(void)
{
	fdtab_register(FDO_EPOLL, &eset_ops);
	conn_hooks.forget = eset_forget_fd;
	conn_hooks.plain = eset_plain_fd;
	conn_hooks.forget_conn = eset_forget_conn;
}

static void eset_put(struct eset *es);
static int eset_arm_depth(struct eset *es, int depth, uint64_t *sig);

/* The set of epfd with a reference, made when create and there is none. */
static struct eset *eset_get(int epfd, int create)
{
	struct eset *es = eset_of(fdtab_get(epfd, FDO_BIT(FDO_EPOLL)));

	if (es || !create)
		return es;
	pthread_mutex_lock(&esets_lock);
	es = eset_of(fdtab_get(epfd, FDO_BIT(FDO_EPOLL)));
	if (!es) {
		es = eset_of(fdobj_new(FDO_EPOLL));
		if (es) {
			es->epfd = epfd;
			if (fdtab_hook(epfd, &es->obj) < 0) {
				fdobj_put(&es->obj);
				es = NULL;
			} else {
				es->next = esets;
				esets = es;
			}
		}
	}
	pthread_mutex_unlock(&esets_lock);
	return es;
}

int eset_poll_ready(int epfd)
{
	struct eset *es = eset_get(epfd, 0);
	uint64_t sig = 0;
	int r = 0;

	if (es && (__atomic_load_n(&es->n, __ATOMIC_RELAXED) ||
		   __atomic_load_n(&es->nnested, __ATOMIC_RELAXED)))
		r = eset_arm_depth(es, 1, &sig);
	eset_put(es);
	return r;
}

void eset_created(int epfd)
{
	eset_put(eset_get(epfd, 1));
}

static void eset_put(struct eset *es)
{
	if (es)
		fdobj_put(&es->obj);
}

void eset_close(int epfd)
{
	int last;
	struct fdobj *o;

	if (fdtab_peek(epfd) == NULL)
		return;
	o = fdtab_unhook(epfd, &last);
	if (o && o->kind == FDO_EPOLL)
		fdobj_put(o);
	else if (o)
		fdobj_put(o); /* cannot be: epfd named a set */
}

/*
 * What entry e reports now (0: nothing), from its connection's events.
 * Edge-triggered entries report IN when new data arrived (the peer's tail
 * moved) or a hang-up is new, OUT when a write hit EAGAIN since the last
 * OUT; a spurious edge is harmless, a missing one hangs gRPC forever.
 * commit: the report is made, and the entry's edge state moves on (0: a
 * look for a nesting set, which reports nothing itself). Under es->mu.
 */
static uint32_t ereg_report(struct ereg *e, int commit)
{
	uint64_t rxg, txg;
	uint32_t full, m, rep, want;
	unsigned wb = __atomic_load_n(&e->u->wblock, __ATOMIC_RELAXED);
	/* Edge-triggered OUT is news only after a write's EAGAIN (or on the
	 * first look): until then, a spin leaves the TX ring to the peer
	 * (conn_events). The kernel would also report the peer's reads as OUT
	 * edges; gRPC looks for one only after an EAGAIN. */
	int look_out = (e->events & EPOLLOUT) &&
		       (!(e->events & EPOLLET) || e->fresh || wb != e->wblock_seen);

	full = conn_events(e->u, &rxg, &txg, look_out);
	want = (e->events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP)) | EPOLLERR | EPOLLHUP;
	m = full & want;
	if (!(e->events & EPOLLET))
		return m;
	/* End of stream is news even to a registration without EPOLLRDHUP
	 * (gRPC's): it makes the fd readable (0) without moving the peer's
	 * tail. */
	uint32_t fresh_bits = full & ~e->last & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
	rep = 0;
	if ((m & EPOLLIN) && (e->fresh || rxg != e->rxg || fresh_bits))
		rep |= EPOLLIN;
	/* OUT while looked for (above): whenever space was freed (the peer's
	 * head moved), and after an EAGAIN. */
	if ((m & EPOLLOUT) &&
	    (e->fresh || wb != e->wblock_seen || txg != e->txg || (fresh_bits & (EPOLLHUP | EPOLLERR))))
		rep |= EPOLLOUT;
	if (rep || fresh_bits)
		rep |= m & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
	if (!commit)
		return rep;
	e->last = full;
	if (m & EPOLLIN)
		e->rxg = rxg;
	if (m & EPOLLOUT) {
		e->wblock_seen = wb;
		e->txg = txg;
	}
	e->fresh = 0;
	if (slog_on(3))
		slog(3, "epoll: fd %d ring 0x%x rxg %llu -> report 0x%x", e->fd, m,
		     (unsigned long long)rxg, rep);
	return rep;
}

#define PLAIN_BATCH 16

/* Whether e's connection turned out plain (settle says so): it is to be
 * demoted, unless it is being destroyed (its entries go then). Under
 * es->mu. */
static int is_plain(struct ereg *e)
{
	return (e->u->state == ST_VERIFY || e->u->state == ST_PROBE) && settle(e->u) == 1;
}

/* The kernel re-evaluates a MOD'ed fd: its readiness comes next. */
static void demote_all(struct ufd **plain, int n)
{
	for (int i = 0; i < n; i++) {
		conn_demote(plain[i]);
		ufd_put(plain[i]);
	}
}

/*
 * The plain connections a collect found past its batch: demoted now, in
 * batches, reporting nothing (the kernel reports them once they are its
 * own again). Their bytes' edge has been and gone in the kernel: a wait
 * that left them would sleep past them. Bounded, for an entry that stays
 * (a registration under a name that no longer names the connection):
 * what is left, the next wait's collect finds.
 */
static void eset_demote_rest(struct eset *es)
{
	for (int round = 0; round < 64; round++) {
		struct ufd *plain[PLAIN_BATCH];
		int np = 0, more = 0;

		pthread_mutex_lock(&es->mu);
		for (size_t i = 0; i < es->n; i++) {
			struct ereg *e = &es->v[i];

			if (e->disabled || !is_plain(e))
				continue;
			if (np == PLAIN_BATCH) {
				more = 1;
				break;
			}
			if (fdobj_tryref(&e->u->obj))
				plain[np++] = e->u;
		}
		pthread_mutex_unlock(&es->mu);
		demote_all(plain, np);
		if (!more)
			return;
	}
}

/* Ring-derived events of the set's upgraded fds, into out. */
static int eset_collect(struct eset *es, struct epoll_event *out, int max)
{
	struct ufd *plain[PLAIN_BATCH];
	int n = 0, nplain = 0, more = 0;

	pthread_mutex_lock(&es->mu);
	/* From where the last collect stopped, as the kernel moves a
	 * level-triggered entry it reported to the back of its ready list:
	 * with maxevents 1, two ready fds take turns. */
	size_t start = es->rr < es->n ? es->rr : 0;

	for (size_t j = 0, i = start; j < es->n && n < max; j++, i = i + 1 < es->n ? i + 1 : 0) {
		struct ereg *e = &es->v[i];
		uint32_t rep;

		if (e->disabled)
			continue;
		if (is_plain(e)) {
			if (nplain == PLAIN_BATCH)
				more = 1;
			else if (fdobj_tryref(&e->u->obj))
				plain[nplain++] = e->u;
			continue;
		}
		rep = ereg_report(e, 1);
		if (!rep)
			continue;
		out[n].events = rep;
		out[n].data = e->data;
		n++;
		es->rr = i + 1;
		if (e->events & EPOLLONESHOT)
			e->disabled = 1;
	}
	pthread_mutex_unlock(&es->mu);
	demote_all(plain, nplain);
	if (more)
		eset_demote_rest(es);
	return n;
}

/* Makes es's kernel set readable: one of its links' doorbells, rung. */
static void eset_ring_self(struct eset *es)
{
	pthread_mutex_lock(&es->mu);
	for (size_t i = 0; i < es->n; i++) {
		if (es->v[i].u->bell[0] >= 0) {
			conn_self_ring(es->v[i].u);
			break;
		}
	}
	pthread_mutex_unlock(&es->mu);
}

/*
 * A nested set with something ready (its news summed in sig): its kernel
 * set must be readable for the set it is in to see it. As the kernel's:
 * an outer level-triggered registration sees it readable while anything
 * is (rung when the kernel set is not readable now); an edge-triggered
 * one sees one edge per piece of news (rung when sig moved).
 */
static void nested_ring(struct eset *inner, uint32_t how, uint64_t sig)
{
	if (how & EPOLLET) {
		if (sig == __atomic_load_n(&inner->rung_sig, __ATOMIC_RELAXED))
			return;
	} else {
		struct pollfd p = {.fd = inner->epfd, .events = POLLIN};

		if (real.poll(&p, 1, 0) > 0)
			return;
	}
	__atomic_store_n(&inner->rung_sig, sig, __ATOMIC_RELAXED);
	eset_ring_self(inner);
}

/* Nesting sets go this deep at most, as the kernel's (EP_MAX_NESTS). */
#define NEST_MAX 4

/*
 * Before a wait on es sleeps in the kernel: every link of es (and of the
 * sets registered in it) asks its peer to ring. Returns whether something
 * of es is ready already, for a caller that then does not sleep.
 * A nested set that has something makes its own kernel set readable (one
 * of its doorbells, rung by us), which the kernel passes up to es as the
 * program registered it: the program's epoll_wait on the nested set then
 * collects the rings.
 */
static int eset_arm_depth(struct eset *es, int depth, uint64_t *sig)
{
	struct eset *nested[16];
	uint32_t nev[16];
	size_t nn;
	int ready = 0;

	pthread_mutex_lock(&es->mu);
	for (size_t i = 0; i < es->n; i++) {
		struct ereg *e = &es->v[i];

		if (e->disabled)
			continue;
		conn_arm(e->u, e->events);
		if (depth > 0 && ereg_report(e, 0)) {
			uint64_t g = 0;

			ready = 1;
			if (e->u->link)
				mpk_link_poll_rx(e->u->link, &g);
			*sig += g + e->txg + (uint64_t)e->fd;
		}
	}
	nn = es->nnested < 16 ? es->nnested : 16;
	for (size_t i = 0; i < nn; i++) {
		nested[i] = es->nested[i];
		nev[i] = es->nested_ev[i];
		fdobj_ref(&nested[i]->obj);
	}
	pthread_mutex_unlock(&es->mu);
	for (size_t i = 0; i < nn; i++) {
		uint64_t s = 0;

		if (depth < NEST_MAX && eset_arm_depth(nested[i], depth + 1, &s))
			nested_ring(nested[i], nev[i], s);
		fdobj_put(&nested[i]->obj);
	}
	return ready;
}

static void eset_arm(struct eset *es)
{
	uint64_t sig = 0;

	eset_arm_depth(es, 0, &sig);
}

/*
 * Moves the application's events of kev[0..k) to out (which may be kev)
 * and keeps ours back: doorbells need nothing (the rings say what
 * happened), a link's socket may say the peer hung up. Returns how many
 * went to out. Our data values must never reach the application: gRPC
 * takes them for pointers.
 */
static int keep_app_events(struct epoll_event *kev, int k, struct epoll_event *out, int *ours)
{
	int n = 0;

	for (int i = 0; i < k; i++) {
		if (kev[i].data.u64 == BTAG) {
			*ours = 1;
			continue;
		}
		if ((kev[i].data.u64 & ETAG_MASK) == ETAG) {
			*ours = 1;
			struct ufd *du = conn_get((int)(kev[i].data.u64 & ~ETAG_MASK));

			if (du) {
				if (du->state == ST_ACTIVE)
					conn_hangup(du);
				ufd_put(du);
			}
			continue;
		}
		out[n++] = kev[i];
	}
	return n;
}

/*
 * One real epoll_wait of up to t ms; the application's events go to
 * ev[n...] (keep_app_events). Returns the new n, or -1 (errno set) when
 * the kernel failed and n was 0.
 */
static int kernel_look(struct eset *es, struct epoll_event *ev, int n, int max, int t,
		       const sigset_t *sigmask, int use_pwait, int *ring)
{
	struct epoll_event kev[256];
	int k, room = max - n < 256 ? max - n : 256, ours = 0, had = n;

	k = use_pwait ? real.epoll_pwait(es->epfd, kev, room, t, sigmask)
		      : real.epoll_wait(es->epfd, kev, room, t);
	__atomic_store_n(&es->kernel_ns, mono_ns(), __ATOMIC_RELAXED);
	if (k < 0)
		return n ? n : -1;
	n += keep_app_events(kev, k, ev + n, &ours);
	/* A hang-up or a doorbell: what it changed is in the rings now. An
	 * entry the caller collected just before gets the new bits too.
	 * No more than there is room for: a collected edge-triggered event
	 * is reported (its edge moved on), so one dropped here would be
	 * lost for good; one not collected is still news at the next wait.
	 * (gRPC's 100 events fill up with 128 connections.) */
	if (ours && n < max) {
		struct epoll_event more[64];
		int m = eset_collect(es, more, max - n < 64 ? max - n : 64);

		for (int j = 0; j < m; j++) {
			int i;

			for (i = 0; i < had && ev[i].data.u64 != more[j].data.u64; i++)
				;
			if (i < had)
				ev[i].events |= more[j].events;
			else
				ev[n++] = more[j]; /* m <= max - n: it fits */
		}
		if (ring)
			*ring = m;
	}
	return n;
}

/*
 * Busy-poll (MPKLINK_SPIN_US): the rings of the set, for up to the spin
 * budget or the caller's timeout, the kernel every KERNEL_LOOK_NS. Only
 * for a set whose rings had news at the last look: an idle program does
 * not spin, it blocks. Returns events, 0 (nothing: block now), or -1.
 */
static int eset_spin(struct eset *es, struct spin_clock *c, struct epoll_event *ev, int max,
		     int timeout, const sigset_t *sigmask, int use_pwait)
{
	struct sig_mark sm;
	int n, step;

	if (!spin_begin(c, timeout))
		return 0;
	sig_mark(&sm);
	while (!(n = eset_collect(es, ev, max))) {
		/* A handler ran: a sleeping epoll_wait would have failed.
		 * (Looked at as often as the clock: turns are many.) */
		if ((c->turns & (SPIN_CLOCK_EVERY - 1)) == 0 && sig_since(&sm) != SIG_NONE) {
			errno = EINTR;
			return -1;
		}
		step = spin_next(c);
		if (step == SPIN_OVER) {
			__atomic_store_n(&es->hot, 0, __ATOMIC_RELAXED);
			return 0;
		}
		if (step == SPIN_LOOK) {
			n = kernel_look(es, ev, 0, max, 0, sigmask, use_pwait, NULL);
			if (n)
				return n; /* the application's events, or EINTR */
		}
	}
	spin_result(1);
	return n;
}

/* A set with links: the rings, a spin, then arm and block. */
static int eset_wait_links(struct eset *es, struct epoll_event *ev, int max, int timeout,
			   uint64_t deadline, const sigset_t *sigmask, int use_pwait)
{
	struct spin_clock c = {0};
	int n, t, ring;

	n = eset_collect(es, ev, max);
	if (n) {
		__atomic_store_n(&es->hot, 1, __ATOMIC_RELAXED);
		/* Ring news, with no system call, unless the kernel's events
		 * have not been looked at for a while (they must not starve). */
		if (mono_ns() - __atomic_load_n(&es->kernel_ns, __ATOMIC_RELAXED) < KERNEL_LOOK_NS)
			return n;
		return kernel_look(es, ev, n, max, 0, sigmask, use_pwait, NULL);
	}
	/* Not under the caller's signal mask: it applies only inside the
	 * kernel's wait, and a handler must run exactly where it would. */
	if (timeout != 0 && cfg.spin_ns && !sigmask &&
	    __atomic_load_n(&es->hot, __ATOMIC_RELAXED)) {
		n = eset_spin(es, &c, ev, max, timeout, sigmask, use_pwait);
		if (n)
			return n;
	}
	for (;;) {
		/* Arm, then look again: a change after this rings (a nested
		 * set's news has rung its own kernel set already). */
		eset_arm(es);
		n = eset_collect(es, ev, max);
		if (n) {
			__atomic_store_n(&es->hot, 1, __ATOMIC_RELAXED);
			spin_woke(&c);
		}
		t = n ? 0 : timeout < 0 ? -1 : timeout == 0 ? 0 : ms_until(deadline);
		if (t < 0 && timeout >= 0)
			t = 0;
		ring = 0;
		n = kernel_look(es, ev, n, max, t, sigmask, use_pwait, &ring);
		if (ring) {
			/* Woken by the rings' news: spin next time. */
			__atomic_store_n(&es->hot, 1, __ATOMIC_RELAXED);
			spin_woke(&c);
		}
		if (n)
			return n;
		if (t == 0)
			return 0;
		/* Only doorbells or hang-ups: what changed is in the rings. */
		n = eset_collect(es, ev, max);
		if (n) {
			__atomic_store_n(&es->hot, 1, __ATOMIC_RELAXED);
			spin_woke(&c);
			return n;
		}
	}
}

/* The set of epfd, marked as waited in (an addition rings for it). Once:
 * a store on every wait would take the line from other threads' caches. */
static struct eset *wait_get(int epfd)
{
	struct eset *es = eset_get(epfd, 0);

	if (es && !__atomic_load_n(&es->waited, __ATOMIC_RELAXED))
		__atomic_store_n(&es->waited, 1, __ATOMIC_RELAXED);
	return es;
}

static void wait_put(struct eset *es)
{
	eset_put(es);
}

static int eset_wait_in(struct eset *es, int epfd, struct epoll_event *ev, int max, int timeout,
			const sigset_t *sigmask, int use_pwait);

int eset_wait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *sigmask,
	      int use_pwait)
{
	return eset_wait_in(wait_get(epfd), epfd, ev, max, timeout, sigmask, use_pwait);
}

/* eset_wait with es (NULL: not ours yet) counted as waited on; puts es. */
static int eset_wait_in(struct eset *es, int epfd, struct epoll_event *ev, int max, int timeout,
			const sigset_t *sigmask, int use_pwait)
{
	uint64_t deadline = ms_deadline(timeout);
	int n;

	while (!es || max <= 0 ||
	       !(__atomic_load_n(&es->n, __ATOMIC_RELAXED) ||
		 __atomic_load_n(&es->nnested, __ATOMIC_RELAXED))) {
		/* No link in the set now; but another thread may add one while
		 * this one sleeps in the kernel, whose events are then ours. */
		int k = use_pwait ? real.epoll_pwait(epfd, ev, max, timeout, sigmask)
				  : real.epoll_wait(epfd, ev, max, timeout);

		if (k <= 0) {
			wait_put(es);
			return k;
		}
		int ours = 0;

		n = keep_app_events(ev, k, ev, &ours);
		if (n) {
			wait_put(es);
			return n;
		}
		/* Only ours woke it: go on waiting, as the set is now. */
		wait_put(es);
		es = wait_get(epfd);
		if (timeout > 0) {
			timeout = ms_until(deadline);
			if (timeout <= 0) {
				wait_put(es);
				return 0;
			}
		} else if (timeout == 0) {
			wait_put(es);
			return 0;
		}
	}
	n = eset_wait_links(es, ev, max, timeout, deadline, sigmask, use_pwait);
	wait_put(es);
	return n;
}

/* Records (op ADD, MOD: how) or forgets (DEL) that set inner is
 * registered in set outer. */
static void eset_nest(struct eset *outer, struct eset *inner, int op, uint32_t how)
{
	pthread_mutex_lock(&outer->mu);
	for (size_t i = 0; i < outer->nnested; i++) {
		if (outer->nested[i] != inner)
			continue;
		if (op == EPOLL_CTL_DEL) {
			outer->nnested--;
			outer->nested[i] = outer->nested[outer->nnested];
			outer->nested_ev[i] = outer->nested_ev[outer->nnested];
			pthread_mutex_unlock(&outer->mu);
			fdobj_put(&inner->obj);
			return;
		}
		outer->nested_ev[i] = how;
		pthread_mutex_unlock(&outer->mu);
		return;
	}
	if (op == EPOLL_CTL_ADD) {
		struct eset **v = realloc(outer->nested, (outer->nnested + 1) * sizeof(*v));
		uint32_t *e = v ? realloc(outer->nested_ev, (outer->nnested + 1) * sizeof(*e)) : NULL;

		if (v)
			outer->nested = v;
		if (e) {
			outer->nested_ev = e;
			fdobj_ref(&inner->obj);
			v[outer->nnested] = inner;
			e[outer->nnested] = how;
			__atomic_store_n(&outer->nnested, outer->nnested + 1, __ATOMIC_RELAXED);
		}
	}
	pthread_mutex_unlock(&outer->mu);
}

int eset_ctl_plain(int epfd, int op, int fd, struct epoll_event *ev)
{
	int r = real.epoll_ctl(epfd, op, fd, ev);
	struct fdobj *o;

	if (r < 0)
		return r;
	/* A registration of ours under this number in this set is stale:
	 * the number was closed behind our back and reused. */
	if (op == EPOLL_CTL_ADD) {
		struct eset *es = eset_get(epfd, 0);

		if (es && __atomic_load_n(&es->n, __ATOMIC_RELAXED)) {
			pthread_mutex_lock(&es->mu);
			for (size_t k = 0; k < es->n; k++) {
				if (es->v[k].fd == fd) {
					eset_remove(es, k);
					break;
				}
			}
			pthread_mutex_unlock(&es->mu);
		}
		eset_put(es);
	}
	/* An epoll set of ours inside another: the outer's waits arm it. */
	o = fdtab_peek(fd);
	if (o && o->kind == FDO_EPOLL) {
		struct eset *inner = eset_of(fdtab_get(fd, FDO_BIT(FDO_EPOLL)));
		struct eset *outer = eset_get(epfd, op == EPOLL_CTL_ADD);

		if (inner && outer)
			eset_nest(outer, inner, op, ev ? ev->events : 0);
		eset_put(inner);
		eset_put(outer);
	}
	return r;
}

/* What epoll_ctl(2) refuses in ev before looking at anything else. */
static int ctl_invalid(int op, const struct epoll_event *ev)
{
	const uint32_t excl_ok = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLWAKEUP | EPOLLEXCLUSIVE;

	if (op == EPOLL_CTL_DEL)
		return 0;
	if (!ev)
		return -EFAULT;
	/* EPOLLEXCLUSIVE: on ADD only, and with none but these beside it. */
	if ((ev->events & EPOLLEXCLUSIVE) && (op != EPOLL_CTL_ADD || (ev->events & ~excl_ok)))
		return -EINVAL;
	return 0;
}

int eset_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct ufd *u = conn_get(fd);
	struct eset *es = NULL;
	struct epoll_event kev;
	size_t i;
	int r;

	if (!u)
		return eset_ctl_plain(epfd, op, fd, ev);
	r = ctl_invalid(op, ev);
	if (r < 0)
		goto out;
	/* The kernel watches the doorbell (and the connect); the rings say
	 * what is ready. */
	if (ev) {
		/* EPOLLEXCLUSIVE takes only IN, OUT, ET and WAKEUP beside it;
		 * the hang-up is still reported (as HUP, or IN at EOF). */
		kev.events = EPOLLIN | EPOLLET | (ev->events & EPOLLEXCLUSIVE ? EPOLLEXCLUSIVE
									      : EPOLLRDHUP);
		if (u->state == ST_CONNECTING)
			kev.events |= EPOLLOUT;
		kev.data.u64 = ETAG | (uint64_t)fd;
	}
	/* The kernel first: it says what epfd is (not an epoll fd, not open,
	 * fd already there or absent), and only then is the set ours to
	 * change. */
	if (real.epoll_ctl(epfd, op, fd, ev ? &kev : NULL) < 0) {
		r = -errno;
		goto out;
	}
	es = eset_get(epfd, 1);
	if (!es) {
		real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
		r = -ENOMEM;
		goto out;
	}
	if (op == EPOLL_CTL_ADD && u->bell[0] >= 0) {
		struct epoll_event bev = {.events = EPOLLIN | EPOLLET | (ev->events & EPOLLEXCLUSIVE),
					  .data.u64 = BTAG};

		/* Edge-triggered: every ring is an edge, and the count never
		 * needs reading. EEXIST: a dup of fd put it there. */
		if (real.epoll_ctl(epfd, EPOLL_CTL_ADD, u->bell[0], &bev) < 0 && errno != EEXIST) {
			r = -errno;
			real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
			goto out;
		}
	}
	pthread_mutex_lock(&es->mu);
	for (i = 0; i < es->n && es->v[i].fd != fd; i++)
		;
	if (op == EPOLL_CTL_DEL) {
		if (i < es->n)
			eset_remove(es, i);
	} else {
		if (i == es->n) {
			if (es->n == es->cap) {
				size_t cap = es->cap ? es->cap * 2 : 16;
				struct ereg *v = realloc(es->v, cap * sizeof(*v));

				if (!v) {
					eset_bell_unused(es, u);
					pthread_mutex_unlock(&es->mu);
					real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
					r = -ENOMEM;
					goto out;
				}
				es->v = v;
				es->cap = cap;
			}
			eset_set_n(es, es->n + 1);
		}
		es->v[i] = (struct ereg){.fd = fd, .u = u, .events = ev->events,
					 .data = ev->data, .fresh = 1};
	}
	pthread_mutex_unlock(&es->mu);
	/* A thread may sleep in this set already, in the kernel alone (the
	 * set had no link when it went in): nothing it armed rings for this
	 * link. Our own doorbell, now that the entry is there, sends it
	 * round again to look at the rings. (Only in a set waited in: the
	 * ring would make it readable, to a set it is nested in, for nothing.
	 * A waiter marks the set before it arms, and the entry was added
	 * under es->mu, which its arm takes: either it arms this link, or
	 * this sees its mark.) */
	if (op == EPOLL_CTL_ADD && __atomic_load_n(&es->waited, __ATOMIC_RELAXED))
		conn_self_ring(u);
out:
	eset_put(es);
	ufd_put(u);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}
