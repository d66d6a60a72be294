/* SPDX-License-Identifier: MIT */
/*
 * The links this process holds ahead of its connections (mpklink/ctl.h's
 * batches), attached and ready:
 *
 *   a client's, per server port: one taken by each connect (pool_take),
 *   refilled from the launcher (LINKS) when empty, in batches that double
 *   from 2 to MPK_CTL_BATCH_MAX while connects keep using them up;
 *
 *   a server's, per listening port: the links its launcher made for the
 *   port's clients (OFFERS), the one an accepted connection carries found
 *   by the cookie its client claimed it with (pool_find).
 *
 * A client uses a link for at most POOL_USE_MS after it came; a server
 * keeps one unclaimed for POOL_HOLD_MS (its launcher keeps it pending for
 * PENDING_MS, 10 s, from its making: a client's claim always comes first).
 * A forked child starts with empty pools: a link is for one process.
 *
 * Thread-safe. May call: conn.h (attaching), ctlclient.h, fdtab.h (the bells are internal
 * fds), log.h, real.h.
 */
#ifndef MPK_POOL_H
#define MPK_POOL_H

#include <stdint.h>

#include "mpklink/ctl.h"
#include "mpklink/ring.h"
#include "preload.h"

#define POOL_USE_MS 5000
#define POOL_HOLD_MS 12000

/* Which server launcher a client's links came from: its rendezvous
 * socket file as a connect saw it (a restarted launcher binds a new file:
 * another inode, or the same number with another change time). */
struct pool_server {
	uint64_t dev, ino;
	int64_t ctime_ns;
};

struct pool_link {
	struct mpk_link *link; /* attached as our side */
	struct pool_server from; /* a client's: the launcher asked */
	int bell[2];           /* internal: [0] we wait on, [1] we ring */
	uint8_t token[MPK_TOKEN_BYTES];
	int has_key;
	uint8_t mac_key[32];
	int64_t born_ms;
	/* A server's: we refused its PENDING claim (pool_find_addr). Our own
	 * word, not the link's: the peer may write PENDING or a claim there
	 * again, and a refused link is never waited for nor taken. */
	int refused;
};

/*
 * A client's link to port, taken: the caller owns it (pool_link_free, or
 * the connection takes it over). server is the launcher that answers for
 * the port now: links from any other (one that restarted since their
 * batch was asked for) are dropped unused, since its successor would
 * reset their connections. Returns 0, or the launcher's -errno (-ENOENT:
 * nobody serves the port under mpklink; -EBUSY: setup is behind) or
 * another -errno; the connection then stays TCP.
 */
HIDDEN int pool_take(unsigned port, const struct pool_server *server, struct pool_link *out);

/*
 * A server's link on port whose claim is cookie (the client's socket), or
 * -ENOENT (the client holds no link of ours: a plain client, or a link
 * made by another launcher), or -errno.
 */
HIDDEN int pool_find(unsigned port, uint64_t cookie, struct pool_link *out);

/* Detaches a link nobody will use and closes its bells. */
HIDDEN void pool_link_free(struct pool_link *p);

/* A client's link taken and not used after all (its connect failed, or
 * the server refused its claim): released to the server's launcher, which
 * may make it over (mpk_link_release), then freed as pool_link_free. */
HIDDEN void pool_link_unused(struct pool_link *p);

/*
 * A server's link on port whose claim is key (mpk_claim_of_addr of a
 * client in another network namespace: its address and port), or
 * -ENOENT. While a link of ours is claimed PENDING (a client's connect
 * under way; it claims by address right after), it waits for that, at
 * most POOL_CLAIM_WAIT_MS; then it refuses the PENDING claims it saw
 * (their clients stay plain TCP: mpklink/ring.h).
 */
HIDDEN int pool_find_addr(unsigned port, uint64_t key, struct pool_link *out);
#define POOL_CLAIM_WAIT_MS 100

/* Fork: the lock is held across it; the child empties its pools. */
HIDDEN void pool_fork_prepare(void);
HIDDEN void pool_fork_parent(void);
HIDDEN void pool_fork_child(void);

#endif
