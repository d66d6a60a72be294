/* SPDX-License-Identifier: MIT */
/*
 * Which TCP connections of this network namespace some process still
 * holds, from the kernel's socket table (NETLINK_SOCK_DIAG, what `ss`
 * reads): a socket no fd refers to any more (closed, on its way out) has
 * no inode. The launcher keeps a link's memory for a later image of its
 * program (exec) while the link's socket is held by anyone.
 *
 * Thread-safe: each call opens a netlink socket of its own.
 */
#ifndef MPK_LAUNCHER_SOCKDIAG_H
#define MPK_LAUNCHER_SOCKDIAG_H

/*
 * Calls fn for every TCP socket (IPv4 and IPv6, any state but LISTEN) that
 * an fd still refers to, with its local and remote ports. Returns 0, or
 * -errno when the table could not be read (then fn may have been called
 * for part of it).
 */
int mpk_tcp_held(void (*fn)(void *arg, unsigned lport, unsigned rport), void *arg);

#endif
