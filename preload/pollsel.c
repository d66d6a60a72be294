/* SPDX-License-Identifier: MIT */
/* poll, ppoll, select, pselect over upgraded fds (pollsel.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "conn.h"
#include "epoll.h"
#include "pollsel.h"
#include "readiness.h"
#include "real.h"
#include "settings.h"
#include "spin.h"

/* The rings of this thread's last poll/select had news: its next one
 * spins first (as an epoll set's hot). */
static __thread int tl_poll_hot;
/* When this thread's poll/select last asked the kernel, and whether the
 * kernel had anything then (then it is asked again: poll is level
 * triggered, and what was ready is likely ready still). */
static __thread uint64_t tl_poll_kernel_ns;
static __thread int tl_poll_kernel_had;

/* What poll(2) reports for upgraded p (its events, and ERR and HUP
 * always); OUT is looked at only where asked for. */
static short ring_revents(const struct pollfd *p, struct ufd *u)
{
	uint32_t m = conn_events(u, NULL, NULL, !!(p->events & POLLOUT));

	return (short)(m & ((uint32_t)p->events | POLLERR | POLLHUP));
}

/* Ring readiness of the upgraded fds among fds into their revents.
 * Returns how many have any. */
static int poll_rings(struct pollfd *fds, nfds_t nfds, struct ufd **u)
{
	int ready = 0;

	for (nfds_t i = 0; i < nfds; i++) {
		if (!u[i])
			continue;
		fds[i].revents = ring_revents(&fds[i], u[i]);
		ready += !!fds[i].revents;
	}
	return ready;
}

/*
 * Busy-poll for poll, ppoll and select, as eset_spin is for epoll: the
 * rings of the upgraded fds for up to the spin budget or the caller's
 * timeout, and every KERNEL_LOOK_NS a zero-timeout look at the kernel's
 * (k[0..nk), as the caller built it). Returns the fds the rings made
 * ready (their revents set); 0 when the spin ran out or the kernel has
 * something, for the caller's blocking path, which then sees it at once;
 * -1 when the kernel's look failed (EINTR under ppoll's mask).
 */
static int poll_spin(struct spin_clock *c, struct pollfd *fds, nfds_t nfds, struct ufd **u,
		     struct pollfd *k, nfds_t nk, int timeout, const sigset_t *sigmask)
{
	static const struct timespec zero;
	int r, step;

	if (!spin_begin(c, timeout))
		return 0;
	while (!(r = poll_rings(fds, nfds, u))) {
		step = spin_next(c);
		if (step == SPIN_OVER) {
			tl_poll_hot = 0;
			return 0;
		}
		if (step == SPIN_LOOK) {
			r = sigmask ? real.ppoll(k, nk, &zero, sigmask) : real.poll(k, nk, 0);
			tl_poll_kernel_ns = c->now;
			if (r) {
				if (r > 0)
					spin_result(1);
				return r < 0 ? -1 : 0;
			}
		}
	}
	spin_result(1);
	return r;
}

static int real_poll(struct pollfd *fds, nfds_t nfds, int timeout, const sigset_t *sigmask)
{
	if (sigmask) {
		struct timespec ts = {timeout / 1000, (timeout % 1000) * 1000000L};

		return real.ppoll(fds, nfds, timeout < 0 ? NULL : &ts, sigmask);
	}
	return real.poll(fds, nfds, timeout);
}

/* The loop of poll_common over fds, with u[i] the connection (referenced)
 * of each upgraded fds[i], and k room for nfds + nup entries. */
static int poll_links(struct pollfd *fds, nfds_t nfds, struct ufd **u, struct pollfd *k,
		      nfds_t nup, int timeout, const sigset_t *sigmask)
{
	uint64_t deadline = ms_deadline(timeout);
	struct spin_clock c = {0};
	nfds_t i, nk;
	int r = 0;

	for (int pass = 0;; pass++) {
		int ready = 0, t;

		nk = nfds;
		for (i = 0; i < nfds; i++) {
			k[i] = fds[i];
			if (!u[i])
				continue;
			/* A server's client that turned out plain: the kernel's
			 * from now on. */
			if ((u[i]->state == ST_VERIFY || u[i]->state == ST_PROBE) && settle(u[i]) == 1) {
				conn_demote(u[i]);
				ufd_put(u[i]);
				u[i] = NULL;
				continue;
			}
			if (conn_has_rings(u[i]) && u[i]->bell[0] >= 0 && nk < nfds + nup)
				k[nk++] = (struct pollfd){.fd = u[i]->bell[0], .events = POLLIN};
			if (pass == 0 || !(fds[i].revents & POLLNVAL))
				fds[i].revents = ring_revents(&fds[i], u[i]);
			if (fds[i].revents)
				ready++;
			k[i].events = conn_kernel_events(u[i]);
		}
		if (ready && pass)
			spin_woke(&c); /* news since the spin ran out, before arming */
		if (!ready && pass == 0 && timeout != 0 && cfg.spin_ns && tl_poll_hot) {
			ready = poll_spin(&c, fds, nfds, u, k, nk, timeout, sigmask);
			if (ready < 0)
				return -1;
		}
		if (!ready && pass == 0) {
			for (i = 0; i < nfds; i++)
				if (u[i])
					conn_arm(u[i], (uint32_t)fds[i].events);
			continue; /* look again after arming */
		}
		t = ready ? 0 : timeout < 0 ? -1 : timeout == 0 ? 0 : ms_until(deadline);
		if (t < 0 && timeout >= 0)
			t = 0;
		if (ready && !tl_poll_kernel_had && mono_ns() - tl_poll_kernel_ns < KERNEL_LOOK_NS) {
			/* Ring news, with no system call: the kernel's fds were
			 * looked at a moment ago, and are again within
			 * KERNEL_LOOK_NS (as epoll's wait does). */
			for (nfds_t b = 0; b < nk; b++)
				k[b].revents = 0;
			r = 0;
		} else {
			r = real_poll(k, nk, t, sigmask);
			tl_poll_kernel_ns = mono_ns();
			tl_poll_kernel_had = 0;
			for (i = 0; r > 0 && i < nfds; i++)
				tl_poll_kernel_had |= !u[i] && k[i].revents;
		}
		if (r < 0)
			return ready ? ready : -1;
		r = 0;
		/* Level-triggered: a doorbell's count must go, or it fires
		 * again at once. */
		for (nfds_t b = nfds; b < nk; b++) {
			if (!k[b].revents)
				continue;
			for (i = 0; i < nfds; i++) {
				if (u[i] && u[i]->bell[0] == k[b].fd) {
					mpk_link_drain(u[i]->link);
					break;
				}
			}
		}
		for (i = 0; i < nfds; i++) {
			if (!u[i]) {
				fds[i].revents = k[i].revents;
			} else {
				if ((k[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
				    u[i]->state == ST_ACTIVE)
					conn_hangup(u[i]);
				fds[i].revents = ring_revents(&fds[i], u[i]);
				if (k[i].revents & POLLNVAL)
					fds[i].revents = POLLNVAL;
				if (fds[i].revents) {
					tl_poll_hot = 1;
					spin_woke(&c);
				}
			}
			if (fds[i].revents)
				r++;
		}
		if (r || t == 0)
			return r;
		/* Only doorbells rang, for things nobody asked about: again. */
		for (i = 0; i < nfds; i++)
			if (u[i])
				conn_arm(u[i], (uint32_t)fds[i].events);
	}
}

/* After a look that did not wait: the epoll sets of ours that had
 * something are readable (eset_poll_ready said so). r: the look's. */
static int poll_mark_sets(struct pollfd *fds, nfds_t nfds, int r)
{
	if (r < 0)
		return r;
	for (nfds_t i = 0; i < nfds; i++) {
		struct fdobj *o = fdtab_peek(fds[i].fd);

		if (o && o->kind == FDO_EPOLL && (fds[i].events & POLLIN) &&
		    !(fds[i].revents & POLLIN) && eset_poll_ready(fds[i].fd)) {
			r += !fds[i].revents;
			fds[i].revents |= POLLIN;
		}
	}
	return r;
}

int poll_common(struct pollfd *fds, nfds_t nfds, int timeout, const sigset_t *sigmask)
{
	/* The application's fds, then one doorbell per upgraded one. */
	struct pollfd stackbuf[128], *k = stackbuf;
	struct ufd *us[64], **u = us;
	nfds_t i, nup = 0;
	int r;

	int sets_ready = 0;

	for (i = 0; i < nfds; i++) {
		struct fdobj *o = fdtab_peek(fds[i].fd);

		if (!o)
			continue;
		if (o->kind == FDO_CONN)
			nup++;
		/* An epoll set of ours: readable when its rings have news. */
		else if (o->kind == FDO_EPOLL && (fds[i].events & POLLIN) &&
			 eset_poll_ready(fds[i].fd))
			sets_ready = 1;
	}
	if (sets_ready) {
		/* Something is ready: nobody waits. */
		timeout = 0;
	}
	if (!nup) {
		r = real_poll(fds, nfds, timeout, sigmask);
		return sets_ready ? poll_mark_sets(fds, nfds, r) : r;
	}
	if (nfds > 64) {
		k = malloc((nfds + nup) * sizeof(*k));
		u = malloc(nfds * sizeof(*u));
		if (!k || !u) {
			free(k == stackbuf ? NULL : k);
			free(u == us ? NULL : u);
			errno = ENOMEM;
			return -1;
		}
	}
	for (i = 0; i < nfds; i++)
		u[i] = conn_get(fds[i].fd);
	r = poll_links(fds, nfds, u, k, nup, timeout, sigmask);
	if (sets_ready)
		r = poll_mark_sets(fds, nfds, r);
	for (i = 0; i < nfds; i++)
		if (u[i])
			ufd_put(u[i]);
	if (k != stackbuf) {
		free(k);
		free(u);
	}
	return r;
}

int select_common(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int timeout_ms,
		  const sigset_t *sigmask, int use_pselect, const struct timespec *ts,
		  struct timeval *tv)
{
	struct pollfd p[FD_SETSIZE];
	nfds_t n = 0;
	int up = 0, r;

	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		short ev = 0;
		struct fdobj *o;

		if (rd && FD_ISSET(fd, rd))
			ev |= POLLIN;
		if (wr && FD_ISSET(fd, wr))
			ev |= POLLOUT;
		if (ex && FD_ISSET(fd, ex))
			ev |= POLLPRI;
		if (!ev)
			continue;
		o = fdtab_peek(fd);
		up |= o && o->kind == FDO_CONN;
		p[n++] = (struct pollfd){.fd = fd, .events = ev};
	}
	if (!up)
		return use_pselect ? real.pselect(nfds, rd, wr, ex, ts, sigmask)
				   : real.select(nfds, rd, wr, ex, tv);
	r = poll_common(p, n, timeout_ms, sigmask);
	if (r < 0)
		return r;
	if (rd)
		FD_ZERO(rd);
	if (wr)
		FD_ZERO(wr);
	if (ex)
		FD_ZERO(ex);
	r = 0;
	for (nfds_t i = 0; i < n; i++) {
		if (p[i].revents & POLLNVAL) {
			errno = EBADF;
			return -1;
		}
		if (rd && (p[i].events & POLLIN) && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(p[i].fd, rd);
			r++;
		}
		if (wr && (p[i].events & POLLOUT) && (p[i].revents & (POLLOUT | POLLERR))) {
			FD_SET(p[i].fd, wr);
			r++;
		}
		if (ex && (p[i].events & POLLPRI) && (p[i].revents & POLLPRI)) {
			FD_SET(p[i].fd, ex);
			r++;
		}
	}
	return r;
}
