/* SPDX-License-Identifier: MIT */
/* Upgrading connects, listens and accepts to links (upgrade.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conn.h"
#include "ctlclient.h"
#include "fdtab.h"
#include "log.h"
#include "pool.h"
#include "process.h"
#include "real.h"
#include "settings.h"
#include "sockdiag.h"
#include "stats.h"
#include "upgrade.h"

/* Port of a loopback (or, for local=1, wildcard) TCP address; 0 if it is
 * none of ours. */
static unsigned addr_port(const struct sockaddr *sa, socklen_t len, int local)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const void *)sa;
		uint32_t ip = ntohl(a->sin_addr.s_addr);
		if ((ip >> 24) == 127 || (local && ip == INADDR_ANY))
			return ntohs(a->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127) ||
		    (local && IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)))
			return ntohs(a->sin6_port);
	}
	return 0;
}

static int is_tcp(int fd)
{
	int type = 0, proto = 0;
	socklen_t l = sizeof(type);

	if (real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM)
		return 0;
	l = sizeof(proto);
	return real.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0 &&
	       proto == IPPROTO_TCP;
}

/* Both ends' ports of a connected loopback TCP socket. */
static int sock_ports(int fd, unsigned *local, unsigned *peer)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &l) < 0 || !addr_port((struct sockaddr *)&ss, l, 0))
		return -1;
	*peer = addr_port((struct sockaddr *)&ss, l, 0);
	l = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0)
		return -1;
	*local = addr_port((struct sockaddr *)&ss, l, 0);
	return *local ? 0 : -1;
}

static unsigned sock_port(int fd, int peer)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &l)
		     : getsockname(fd, (struct sockaddr *)&ss, &l);

	if (r < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* Whether a launcher answers for port: its rendezvous socket, and which
 * one it is into *who (pool.h). */
static int rendezvous_exists(unsigned port, struct pool_server *who)
{
	char path[160];
	struct stat st;

	if (!cfg.rundir[0])
		return 0;
	snprintf(path, sizeof(path), "%s/tcp-%u.sock", cfg.rundir, port);
	if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return 0;
	who->dev = st.st_dev;
	who->ino = st.st_ino;
	who->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	return 1;
}

/* Whether fd may become ours: we track its number, no object has it, and
 * this process is not a vfork child borrowing our memory. */
static int upgradable(int fd)
{
	return (unsigned)fd < FDTAB_MAX && !fdtab_peek(fd) && !process_borrowed();
}

int upgrade_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct pool_server server;
	struct pool_link pl;
	struct ufd *u;
	unsigned port, cport;
	uint64_t cookie;
	int r, e;

	if (!cfg.enabled || !addr || !(port = addr_port(addr, len, 0)) ||
	    !settings_port_configured(port) || !upgradable(fd) || !is_tcp(fd))
		return real.connect(fd, addr, len);
	/* No launcher answers for the port: the server is not under mpklink. */
	if (!rendezvous_exists(port, &server))
		goto plain;
	/* io_uring's reads and writes would go past the link. */
	if (process_uses_io_uring()) {
		slog(2, "port %u: this process uses io_uring; plain TCP", port);
		goto plain;
	}
	cookie = sockdiag_cookie(fd);
	if (!cookie)
		goto plain;
	r = pool_take(port, &server, &pl);
	if (r < 0) {
		if (r == -EBUSY)
			slog(2, "port %u: no link: setup is behind (too many connects in flight); plain TCP",
			     port);
		else
			slog(r == -ENOENT ? 3 : 1, "port %u: no link (%s); plain TCP", port,
			     strerror(-r));
		goto plain;
	}
	/* Before the connect: the server's accept finds the link by it. */
	mpk_link_claim(pl.link, cookie);
	u = conn_new_link(fd, pl.link, pl.bell, 1, port, 0, ST_CONNECTING, pl.token,
			  pl.has_key ? pl.mac_key : NULL);
	explicit_bzero(pl.mac_key, sizeof(pl.mac_key));
	if (!u)
		goto plain;
	r = real.connect(fd, addr, len);
	e = errno;
	/* EINTR: a blocking connect interrupted goes on in the background,
	 * as EINPROGRESS does (the link claimed for it stays its own). */
	if (r < 0 && e != EINPROGRESS && e != EINTR) {
		ufd_put(u);
		errno = e;
		return r;
	}
	/* The port is the connect's own choice (a TIME_WAIT one on loopback,
	 * as over TCP): known now, for the launcher's tables. */
	cport = sock_port(fd, 0);
	u->cport = cport;
	if (cport)
		ctl_claimed(port, cport, 1, pl.token);
	if (fdtab_hook(fd, &u->obj) < 0) {
		/* Cannot be: upgradable() checked the number. The preamble is
		 * not sent, the connection stays plain. */
		ufd_put(u);
		errno = e;
		return r;
	}
	if (r == 0)
		settle(u);
	ufd_put(u); /* the table's name holds it now */
	slog(3, "port %u: connection from port %u upgraded", port, cport);
	errno = e;
	return r;
plain:
	stats_count(&totals.fallbacks);
	if (cfg.deny) {
		slog(0, "port %u: no shared-memory link and MPKLINK_FALLBACK=deny", port);
		errno = ECONNREFUSED;
		return -1;
	}
	return real.connect(fd, addr, len);
}

int upgrade_listen(int fd, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	struct mpk_ctl_rep rep;
	struct ufd *u;
	unsigned port;
	int r, e, lfds[MPK_LINK_NFDS];

	r = real.listen(fd, backlog);
	if (r < 0 || !cfg.enabled || !upgradable(fd) || !is_tcp(fd))
		return r;
	if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0)
		return r;
	port = addr_port((struct sockaddr *)&ss, l, 1);
	if (!port || !settings_port_configured(port))
		return r;
	u = listener_new(port);
	if (!u)
		return r;
	/* io_uring's reads and writes would go past links: offer none (the
	 * probe still resets a client that came with one). */
	e = process_uses_io_uring() ? -EOPNOTSUPP : ctl_call(MPK_CTL_LISTEN, port, 0, 0, &rep, lfds);
	if (e < 0) {
		/* Its clients may still come with links another launcher made
		 * (SO_REUSEPORT): they are reset, never read as data. */
		slog(e == -EADDRINUSE || e == -EOPNOTSUPP ? 2 : 1,
		     "port %u: %s; plain TCP", port,
		     e == -EOPNOTSUPP  ? "this process uses io_uring"
		     : e == -EADDRINUSE ? "another launcher's program listens on it too"
					 : "the launcher cannot answer for it");
		u->probe_only = 1;
	}
	if (fdtab_hook(fd, &u->obj) == 0 && !u->probe_only)
		slog(2, "port %u: listening, links offered", port);
	ufd_put(u);
	return r;
}

int upgrade_accept(int fd, struct sockaddr *addr, socklen_t *alen, int flags, int four)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	struct pool_link pl;
	struct ufd *lu, *u = NULL;
	unsigned cport, port;
	int nfd, r, probe_only;

	lu = process_borrowed() ? NULL : listener_get(fd);
	if (!lu) {
		nfd = four ? real.accept4(fd, addr, alen, flags) : real.accept(fd, addr, alen);
		if (nfd >= 0 && !process_borrowed())
			fdtab_fresh(nfd);
		return nfd;
	}
	port = lu->port;
	probe_only = lu->probe_only;
	/* The listener lives while the accept waits, as the kernel keeps the
	 * file (another thread's close does not end its rendezvous before). */
	nfd = four ? real.accept4(fd, (struct sockaddr *)&ss, &l, flags)
		   : real.accept(fd, (struct sockaddr *)&ss, &l);
	if (nfd < 0) {
		int e = errno;

		ufd_put(lu);
		errno = e;
		return nfd;
	}
	fdtab_fresh(nfd);
	if (addr && alen) {
		memcpy(addr, &ss, *alen < l ? *alen : l);
		*alen = l;
	}
	cport = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
		: ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : 0;
	if (!cport || !addr_port((struct sockaddr *)&ss, l, 0) || (unsigned)nfd >= FDTAB_MAX) {
		ufd_put(lu);
		return nfd;
	}
	/* The client's link, if it has one of ours: it claimed it with its
	 * socket's cookie before its connect. */
	r = probe_only ? -ENOENT : pool_find(port, sockdiag_peer_cookie(nfd), &pl);
	ufd_put(lu);
	if (r == 0) {
		u = conn_new_link(nfd, pl.link, pl.bell, 0, port, cport, ST_VERIFY, pl.token,
				  pl.has_key ? pl.mac_key : NULL);
		if (u)
			ctl_claimed(port, cport, 0, pl.token);
		explicit_bzero(pl.mac_key, sizeof(pl.mac_key));
	}
	if (!u && cfg.deny) {
		/* MPKLINK_FALLBACK=deny: the port takes links only. No link for
		 * this connection (a plain client, a client its launcher could
		 * not or would not link: no identity, one not allowed, a link
		 * another launcher made; a preamble replayed or guessed): reset
		 * (a connect to AF_UNSPEC: RST, and what it sent is dropped)
		 * before the program reads a byte of it. The program's first
		 * call on it says ECONNRESET, as for a client that reset. */
		struct sockaddr sa = {.sa_family = AF_UNSPEC};

		slog(1, "port %u: connection from port %u is no link (%s); reset, as "
			"MPKLINK_FALLBACK=deny says", port, cport,
		     probe_only ? "no rendezvous here" : strerror(r < 0 ? -r : EPROTO));
		real.connect(nfd, &sa, sizeof(sa));
		return nfd;
	}
	if (!u) {
		/* A plain client, or one with a link we do not have: its first
		 * bytes say which. */
		u = conn_new_probe(nfd, port, cport);
		if (u) {
			fdtab_hook(nfd, &u->obj);
			ufd_put(u);
		}
		return nfd;
	}
	fdtab_hook(nfd, &u->obj);
	ufd_put(u);
	slog(3, "port %u: connection from port %u upgraded", port, cport);
	return nfd;
}

/* fd, a socket this image did not make (inherited across exec, or received
 * with SCM_RIGHTS): when it is a loopback TCP connection on a configured
 * port whose link our launcher keeps, the link is its again. how: for the
 * log. Returns whether it was adopted. */
static int adopt(int fd, const char *how)
{
	struct mpk_ctl_rep rep;
	unsigned l, p, sport, cport;
	int lfds[MPK_LINK_NFDS], side;
	struct ufd *u;

	if (!upgradable(fd) || !is_tcp(fd) || sock_ports(fd, &l, &p) < 0)
		return 0;
	/* Our end: the server's when our port is the configured one (a
	 * program may hold both ends, the launcher both links). */
	if (settings_port_configured(l)) {
		sport = l, cport = p, side = 0;
	} else if (settings_port_configured(p)) {
		sport = p, cport = l, side = 1;
	} else {
		return 0;
	}
	if (ctl_call(MPK_CTL_LOOKUP, sport, cport, (unsigned)side, &rep, lfds) < 0 || lfds[0] < 0)
		return 0;
	u = conn_new(fd, lfds, side, sport, cport, ST_ACTIVE, NULL, &rep);
	if (!u)
		return 0;
	u->passed = 1;
	if (fdtab_hook(fd, &u->obj) == 0)
		slog(2, "port %u: link of connection from port %u %s", sport, cport, how);
	ufd_put(u);
	return 1;
}

void upgrade_adopt_received(int fd)
{
	if (cfg.enabled)
		adopt(fd, "received with SCM_RIGHTS");
}

void upgrade_adopt_inherited(void)
{
	struct dirent *d;
	DIR *dir;

	if (!cfg.enabled || !getenv("MPKLINK_EXECED"))
		return;
	dir = real.opendir("/proc/self/fd");
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		int fd = atoi(d->d_name);

		if (d->d_name[0] >= '0' && d->d_name[0] <= '9' && fd != dirfd(dir))
			adopt(fd, "inherited across exec");
	}
	closedir(dir);
}
