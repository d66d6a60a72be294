/* SPDX-License-Identifier: MIT */
/*
 * The libc calls the transport makes, resolved once past whatever
 * interposes them. libmpklink.so exports close, recv, fcntl, syscall...
 * and links this library in: a plain call from here would bind to the
 * preload's own interposer, a hidden dependency of this layer on the one
 * above it. Through this table every call reaches the next definition
 * after the calling object: libc's (or a sanitizer's) in the preload, and
 * the same in a program linked with the transport directly.
 *
 * Thread-safe; the table is filled on first use.
 */
#ifndef MPK_SYS_H
#define MPK_SYS_H

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

struct mpk_sys {
	int (*close)(int);
	int (*fcntl)(int, int, ...);
	long (*syscall)(long, ...);
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*eventfd)(unsigned, int);
	int (*memfd_create)(const char *, unsigned);
};

/* The table, filled on the first call. */
const struct mpk_sys *mpk__sys(void);

#endif
