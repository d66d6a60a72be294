/* SPDX-License-Identifier: MIT */
/*
 * A listener or a connection of ours: the object behind their fd numbers
 * (fdtab.h), and a connection's setup states.
 *
 * A connection holds its link (the rings, ring.h), the link's two doorbell
 * eventfds, and `sock`: a dup of the program's TCP socket of our own
 * (internal, close-on-exec). Every socket call the preload makes for the
 * connection goes to sock, never to the program's number, which another
 * thread may close and the kernel hand out again while a call of ours is
 * in flight; and sock keeps the socket open exactly as long as the object
 * lives, which is what the kernel does for a file a call is using. The
 * program's last close, with no call in flight, closes sock at once (FIN).
 *
 * Setup, client: CONNECTING (the preamble is owed on the stream) ->
 * ACTIVE. Server: VERIFY (the client's preamble is expected first) ->
 * ACTIVE, or plain (the client is not under mpklink: conn_demote) or
 * BROKEN (a wrong token: the connection is reset). A server's connection
 * for which its launcher has no link (the link was made by another
 * launcher whose program shares the port, or it expired) is a PROBE: no
 * link and no doorbells; its first bytes decide: a link's preamble resets
 * the connection loudly (the client would wait on a ring nobody reads),
 * anything else makes it plain, as does the server writing first.
 *
 * May call: fdtab.h, ctlclient.h, stats.h, process.h, settings.h, log.h.
 */
#ifndef MPK_CONN_H
#define MPK_CONN_H

#include <pthread.h>
#include <stdint.h>

#include "fdtab.h"
#include "mpklink/ctl.h"
#include "mpklink/ring.h"
#include "preload.h"
#include "process.h"

enum ufd_state {
	ST_CONNECTING = 1, /* client: the preamble is owed on the stream */
	ST_VERIFY,         /* server: a pending link; its preamble comes first */
	ST_ACTIVE,
	ST_BROKEN,
	ST_PROBE,          /* server, no link here: a client's preamble is reset */
};

struct ufd {
	struct fdobj obj;   /* first: FDO_LISTEN or FDO_CONN */
	unsigned port;      /* the server's (configured) port */
	unsigned cport;     /* FDO_CONN: the client's port */
	unsigned side;      /* FDO_CONN: 0 the server's end, 1 the client's */

	/* FDO_CONN */
	struct mpk_link *link;
	int sock;    /* our own dup of the socket (internal); -1: none */
	int bell[2]; /* our eventfds: [0] we wait on, [1] we ring; -1: none */
	int state;
	int conn_err; /* the connect's failure, for SO_ERROR */
	uint8_t pre[MPK_PREAMBLE_BYTES];
	size_t pre_off;
	int nonblock;
	uint64_t rcvtimeo_ns, sndtimeo_ns; /* SO_RCVTIMEO, SO_SNDTIMEO; 0: none */
	int rcvlowat; /* SO_RCVLOWAT: readable (to poll) from this many bytes */
	int rd_shut;
	int inq;
	/* The TCP connection's state, as the program sees it: our SHUT_WR
	 * (the ring carries it), a reset (the peer's, or ours when we wrote
	 * to a peer that had closed), and an error the next call reports
	 * once (sk_err: ECONNRESET, EPIPE). */
	int wr_shut, reset, err_pending;
	int rst_first; /* the peer's reset came before any end of stream */
	uint64_t shut_arrived; /* after SHUT_RDWR: bytes that had come by then */
	unsigned wblock; /* writes that returned EAGAIN: an OUT edge is owed */
	int wblocked;
	int reported;      /* its stats are in the totals (exit report) */
	int broke;         /* conn_break ran */
	int probe_only;    /* FDO_LISTEN: our launcher has no rendezvous for it */
	/* MSG_ZEROCOPY: SO_ZEROCOPY is on; the next send's number, and the
	 * completed range not yet read from the error queue (slock). */
	int zerocopy, zc_pending;
	uint32_t zc_next, zc_lo, zc_hi;
	unsigned fork_gen; /* process_fork_gen when this process last synced it */
	unsigned born_gen; /* process_fork_gen when it was made or adopted */
	int passed;        /* inherited across exec, or sent or received with
			    * SCM_RIGHTS: another process may hold the socket */
	pthread_mutex_t rlock, wlock, slock;
};

static inline struct ufd *ufd_of(struct fdobj *o)
{
	return (struct ufd *)o;
}

/* The connection fd names, with a reference (ufd_put it); NULL if none. */
static inline struct ufd *conn_get(int fd)
{
	return ufd_of(fdtab_get(fd, FDO_BIT(FDO_CONN)));
}

/* The listener fd names, with a reference; NULL if none. */
static inline struct ufd *listener_get(int fd)
{
	return ufd_of(fdtab_get(fd, FDO_BIT(FDO_LISTEN)));
}

static inline void ufd_put(struct ufd *u)
{
	fdobj_put(&u->obj);
}

/* Whether another process may hold u's socket and use its link as well:
 * a fork since it was made, or it was passed. Only then does a read or
 * write first look whether the other moved the ring (a shared line's load
 * on every call, measured at 50 ns a round trip otherwise), and a close
 * leaves the connection's fate to the other (no reset for unread bytes). */
static inline int conn_maybe_shared(const struct ufd *u)
{
	return __atomic_load_n(&u->passed, __ATOMIC_RELAXED) || u->born_gen != process_fork_gen();
}

/* Registers the kinds' ops with fdtab. */
HIDDEN void conn_register(void);

/* A listener on a configured port, one reference, no name yet. */
HIDDEN struct ufd *listener_new(unsigned port);

/*
 * The link the launcher handed over (lfds: memfd and doorbells, consumed
 * whatever happens) attached for socket fd as side, connection port <-
 * cport, starting in state; token, when given, makes the preamble to send
 * or expect. Returns the connection with one reference and no name, or
 * NULL (nothing of it is left open).
 */
HIDDEN struct ufd *conn_new(int fd, int *lfds, int side, unsigned port, unsigned cport, int state,
			    const uint8_t *token, struct mpk_ctl_rep *rep);

/*
 * A link handed over as lfds (memfd, bells[0], bells[1]; all consumed)
 * attached as side into *link, its bells internal fds in bell ([0] we
 * wait on, [1] we ring). check_bells: they must be nonblocking eventfds
 * (mpk_link_bell_check), else our launcher made or checked them. Returns
 * 0 or -errno (nothing of lfds left open).
 */
HIDDEN int conn_attach_fds(int *lfds, int side, int check_bells, struct mpk_link **link,
			   int *bell);

/*
 * The same for a link already attached as side (link, and bell: [0] we
 * wait on, [1] we ring, internal fds; all consumed whatever happens), with
 * its MAC key when it has one.
 */
HIDDEN struct ufd *conn_new_link(int fd, struct mpk_link *link, int *bell, int side,
				 unsigned port, unsigned cport, int state, const uint8_t *token,
				 const uint8_t *mac_key);

/* A server's connection without a link (ST_PROBE), one reference, no
 * name; NULL when out of memory or fds. */
HIDDEN struct ufd *conn_new_probe(int fd, unsigned port, unsigned cport);

/*
 * Moves a connection through its setup states. Returns 0 when it is
 * active, -EAGAIN while setup is in flight, 1 when it turned out plain
 * (the caller demotes it and passes through), -EPIPE when the client left
 * before its first byte, or -errno.
 */
HIDDEN int settle(struct ufd *u);

/* settle() said 1: fd goes back to pure pass-through, with every other
 * number naming the connection; the epoll sets get the program's own
 * registrations back (conn_hooks.plain). */
HIDDEN void conn_demote(struct ufd *u);

/* The program closes the last fd naming u: its counters go to the totals
 * and any unread byte on the socket is read first, so that the kernel's
 * close sends FIN, not RST. Before the real close. */
HIDDEN void conn_last_close(struct ufd *u);

/* Reads the socket's SO_RCVTIMEO, SO_SNDTIMEO and SO_RCVLOWAT into u
 * (after a setsockopt of one: the kernel's value, as it keeps it). */
HIDDEN void conn_read_timeouts(struct ufd *u);

/* The kernel says u's socket is readable or hung up: the peer closed,
 * died or reset it, or bytes arrived that went past the link (then the
 * link breaks loudly: conn_break). Active connections only. */
HIDDEN void conn_hangup(struct ufd *u);

/* The connection is reset (by the peer, or as the peer's kernel would on
 * our write after its close): err is reported once, by the next call. */
HIDDEN void conn_reset(struct ufd *u, int err);

/* After SHUT_RDWR, bytes that arrive are an error, as they are to TCP (a
 * socket that shut both ways answers data with a reset): then the
 * connection resets here and at the peer. Returns whether it did. */
HIDDEN int conn_late_data(struct ufd *u);

/* A write found the peer gone: as its TCP peer would, it answers with a
 * reset (sent to it now), and our next call fails with EPIPE. */
HIDDEN void conn_reset_peer_after_write(struct ufd *u);

/* The bytes that ever arrived on u's link (read or waiting). */
HIDDEN uint64_t conn_rx_total(struct ufd *u);

/* The error to report now, once: 0 or a positive errno, cleared. */
static inline int conn_take_error(struct ufd *u)
{
	return __atomic_exchange_n(&u->err_pending, 0, __ATOMIC_ACQ_REL);
}

/* Breaks the link loudly, once: one log line naming why, the link broken
 * (every call ECONNRESET) and the TCP connection reset, so that the peer
 * gets ECONNRESET too. */
HIDDEN void conn_break(struct ufd *u, const char *why);

/* 1 for the one caller that adds u's counters to the totals. */
HIDDEN int conn_claim_report(struct ufd *u);

/* What the epoll emulation does when fd stops naming a connection (a
 * close, a stale number: forget) or a connection turns out plain (plain:
 * give the kernel back the program's registration). Set by epoll.c. */
struct conn_hooks {
	void (*forget)(int fd);
	void (*plain)(int fd);
	void (*forget_conn)(struct ufd *u); /* u is destroyed: no entry of it */
};
HIDDEN extern struct conn_hooks conn_hooks;

#endif
