/* SPDX-License-Identifier: MIT */
/*
 * The kernel's table of TCP sockets (sock_diag), for the one question an
 * accept asks it: the cookie (SO_COOKIE) of the socket at the other end of
 * a loopback connection, which a client under mpklink wrote into the link
 * it claimed (pool.h). Any user may ask it for a socket in its network
 * namespace; a peer in another namespace is not found.
 *
 * Thread-safe (one netlink socket per call in flight, kept per thread).
 * May call: fdtab.h (the netlink socket is internal), real.h.
 */
#ifndef MPK_SOCKDIAG_H
#define MPK_SOCKDIAG_H

#include <stdint.h>

#include "preload.h"

/* The cookie of the socket connected to sock (ours), or 0 when there is
 * none in our namespace (a remote peer, one already gone) or the table
 * cannot be read. */
HIDDEN uint64_t sockdiag_peer_cookie(int sock);

/* The cookie of sock itself, or 0. */
HIDDEN uint64_t sockdiag_cookie(int sock);

#endif
