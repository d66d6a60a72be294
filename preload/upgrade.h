/* SPDX-License-Identifier: MIT */
/*
 * Turning a TCP connection to a configured loopback endpoint into a link,
 * or leaving it plain, decided before any byte moves.
 *
 * Client (connect to a configured port whose rendezvous socket exists):
 * a link from the process's pool (pool.h), claimed with the socket's
 * cookie, then the real connect with the program's flags, unbound (the
 * kernel picks the port); the 24-byte preamble goes first on the stream
 * once connected. Server (accept on a listener the launcher answers for):
 * the link claimed with the peer socket's cookie (sockdiag.h); one means
 * the preamble is expected first (conn.h's VERIFY). exec: an image started by a process of ours adopts
 * the links behind the sockets it inherited (LOOKUP), as does a process
 * that receives such a socket with SCM_RIGHTS.
 *
 * The functions behave as the calls they stand for: -1 and errno.
 * May call: conn.h, ctlclient.h, pool.h, sockdiag.h, fdtab.h, stats.h, settings.h,
 * log.h.
 */
#ifndef MPK_UPGRADE_H
#define MPK_UPGRADE_H

#include <sys/socket.h>

#include "preload.h"

HIDDEN int upgrade_connect(int fd, const struct sockaddr *addr, socklen_t len);
HIDDEN int upgrade_listen(int fd, int backlog);
HIDDEN int upgrade_accept(int fd, struct sockaddr *addr, socklen_t *alen, int flags, int four);
HIDDEN void upgrade_adopt_inherited(void);

/* A socket that came in an SCM_RIGHTS message: its link, if our launcher
 * keeps one (a program's processes passing connections among them). */
HIDDEN void upgrade_adopt_received(int fd);

#endif
