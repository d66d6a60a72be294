/* SPDX-License-Identifier: MIT */
/*
 * Requests to our launcher (mpklink/ctl.h), on connections of this
 * process's own, one call in flight on each: a LINKS waits on the
 * server's launcher (up to its rendezvous timeout), so calls from other
 * threads take other connections, and one connect to a stalled server
 * holds up none of the process's other connects and accepts. LINKS
 * never wait for a connection: when 12 are in flight, or none is free,
 * one fails -EBUSY at once (setup is behind; the connection stays TCP),
 * and the other calls keep connections of their own. Connection 0
 * carries only LISTEN and UNLISTEN, which the launcher keys to the
 * connection (a port is released when the connection that listened goes).
 * CLAIMED and CLOSE, notices, go into the notice ring (MPK_CTL_NOTES),
 * shared memory the launcher reads on its own schedule: a connect or close
 * wakes no launcher and makes no system call. A notice that finds the ring
 * full goes as a request on another connection and waits for its answer
 * (the launcher, woken, reads the ring first). A forked child opens
 * connections and a ring of its own on its first call.
 *
 * Only our own launcher is talked to: a socket whose listener is another
 * process (SO_PEERCRED: MPKLINK_CTL_PID and our uid) is refused, -EPERM.
 *
 * Thread-safe. May call: fdtab.h (our fds are internal), settings.h, log.h,
 * real.h.
 */
#ifndef MPK_CTLCLIENT_H
#define MPK_CTLCLIENT_H

#include "mpklink/ctl.h"
#include "preload.h"

/*
 * One request (LISTEN, UNLISTEN, LOOKUP); fds gets the link's fds when the
 * reply carries them (all -1 otherwise; the caller owns them). Returns the
 * launcher's status (0 or -errno), or -errno when the launcher could not
 * be asked.
 */
HIDDEN int ctl_call(uint32_t type, unsigned port, unsigned peer_port, unsigned side,
		    struct mpk_ctl_rep *rep, int fds[MPK_LINK_NFDS]);

/*
 * LINKS (count links to port) or OFFERS (port's, numbered after since): fds (3 *
 * MPK_CTL_BATCH_MAX entries) gets rep->n links' fds, the caller's. Returns
 * the launcher's status (0: rep->n >= 1; -EBUSY: it has too many LINKS in
 * flight; -ENOENT: no server there, or no offers), or -errno when the
 * launcher could not be asked (-EBUSY: this process has too many).
 */
HIDDEN int ctl_batch(uint32_t type, unsigned port, unsigned count, uint32_t since,
		     struct mpk_ctl_batch *rep, int *fds);

/* ctl_batch in two halves, for a batch fetched ahead of need: the
 * request, answered by a handle (>= 0) to its connection, kept busy until
 * ctl_batch_take; or -errno as ctl_batch. */
HIDDEN int ctl_batch_ask(uint32_t type, unsigned port, unsigned count, uint32_t since);
/* The reply to handle's request, as ctl_batch; with wait 0, -EAGAIN
 * while it has not come (the handle stays good). Else the handle is spent.
 * A forked child must not take its parent's handles. */
HIDDEN int ctl_batch_take(int handle, int wait, struct mpk_ctl_batch *rep, int *fds);

/* The link of a batch with token carries connection (port, cport) as
 * side's end now. Waits for the launcher only when the ring is full. */
HIDDEN void ctl_claimed(unsigned port, unsigned cport, unsigned side, const uint8_t *token);

/* The program stopped listening on port. */
HIDDEN void ctl_unlisten(unsigned port);

/* The program closed its end (side) of the link (port, cport). alone: no
 * other process can hold the socket, and the launcher forgets the link at
 * once (within a second: when it reads its notices); else it keeps it
 * while any process holds the socket. Waits for the launcher only when
 * the ring is full. */
HIDDEN void ctl_closed(unsigned port, unsigned cport, unsigned side, int alone);

/* Fork: the connections' lock is held across it; the child's waiters were
 * the parent's threads. */
HIDDEN void ctl_fork_prepare(void);
HIDDEN void ctl_fork_parent(void);
HIDDEN void ctl_fork_child(void);

#endif
