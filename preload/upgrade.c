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

/* What kind of TCP address sa is. */
enum addr_kind { A_NONE, A_LOOPBACK, A_WILDCARD, A_OTHER };

/* sa's kind, its address (16 bytes, IPv4 as ::ffff:a.b.c.d) and port. */
static int addr_of(const struct sockaddr *sa, socklen_t len, uint8_t addr[16], unsigned *port)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const void *)sa;
		uint32_t ip = ntohl(a->sin_addr.s_addr);

		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &a->sin_addr.s_addr, 4);
		*port = ntohs(a->sin_port);
		return (ip >> 24) == 127 ? A_LOOPBACK : ip == INADDR_ANY ? A_WILDCARD : A_OTHER;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const void *)sa;

		memcpy(addr, a->sin6_addr.s6_addr, 16);
		*port = ntohs(a->sin6_port);
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127))
			return A_LOOPBACK;
		if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && !memcmp(addr + 12, "\0\0\0\0", 4)))
			return A_WILDCARD;
		return A_OTHER;
	}
	return A_NONE;
}

/*
 * The configured port a connect to sa (a server's address) reaches: a
 * loopback address at a loopback entry's port, or exactly a remote entry's
 * address and port; else 0. *remote says which.
 */
static unsigned server_port(const struct sockaddr *sa, socklen_t len, int *remote)
{
	const struct mpk_endpoint *e;
	uint8_t addr[16];
	unsigned port;
	int k = addr_of(sa, len, addr, &port);

	if (k == A_NONE || !(e = settings_endpoint(port)))
		return 0;
	*remote = e->remote;
	if (k == A_LOOPBACK && !e->remote)
		return port;
	if (k == A_OTHER && e->remote && !memcmp(addr, e->addr, 16))
		return port;
	return 0;
}

/* The configured port a listener bound at sa answers for: a wildcard
 * address, a loopback one at a loopback entry's port, or a remote entry's
 * own address; else 0. */
static unsigned listen_port(const struct sockaddr *sa, socklen_t len)
{
	int remote;
	uint8_t addr[16];
	unsigned port;

	if (addr_of(sa, len, addr, &port) == A_WILDCARD)
		return settings_port_configured(port) ? port : 0;
	return server_port(sa, len, &remote);
}

/* Whether a connection from peer (a client) to the server's configured
 * port may be a link: from loopback, or to a remote entry from anywhere
 * (the claim says whether it is one: pool_find_addr). *remote says which;
 * addr and *cport get the peer's address and port. */
static int client_ok(unsigned port, const struct sockaddr *peer, socklen_t len, uint8_t addr[16],
		     unsigned *cport, int *remote)
{
	const struct mpk_endpoint *e = settings_endpoint(port);
	int k = addr_of(peer, len, addr, cport);

	if (!e || !*cport)
		return 0;
	*remote = k == A_OTHER;
	return k == A_LOOPBACK || (k == A_OTHER && e->remote);
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

/* A connected TCP socket's addresses: ours and the peer's. */
static int sock_addrs(int fd, struct sockaddr_storage *self, socklen_t *slen,
		      struct sockaddr_storage *peer, socklen_t *plen)
{
	*slen = *plen = sizeof(struct sockaddr_storage);
	if (getpeername(fd, (struct sockaddr *)peer, plen) < 0 ||
	    getsockname(fd, (struct sockaddr *)self, slen) < 0)
		return -1;
	return 0;
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

/* Whether a launcher answers for port: its rendezvous socket (tcp-PORT.sock,
 * or tcp-ADDR-PORT.sock for a remote entry: mpk_endpoint_rdv_name), and
 * which one it is into *who (pool.h). */
static int rendezvous_exists(unsigned port, struct pool_server *who)
{
	const struct mpk_endpoint *e = settings_endpoint(port);
	char path[256], name[64];
	struct stat st;

	if (!cfg.rundir[0] || !e || mpk_endpoint_rdv_name(e, name, sizeof(name)) < 0)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", cfg.rundir, name);
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

/* A client's connection whose connect started (result r, errno e): its
 * launcher told (CLAIMED), the fd ours, and the preamble sent now when the
 * connect is done already. Returns r with errno e. */
static int client_connected(int fd, struct ufd *u, const uint8_t *token, int r, int e)
{
	unsigned port = u->port, cport = u->cport;

	if (cport)
		ctl_claimed(port, cport, 1, token);
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
}

/*
 * A connect to a remote entry (a server in another network namespace):
 * the server cannot see our socket's cookie, so the link is claimed as
 * PENDING before the connect and by our address and port after it
 * (mpklink/ring.h). The server may have refused the PENDING claim by then
 * (it stopped waiting for it): the connection stays plain, and nothing was
 * sent on the link. Returns the connect's result, errno set.
 */
static int connect_remote(int fd, const struct sockaddr *addr, socklen_t len, unsigned port,
			  struct pool_link *pl)
{
	struct sockaddr_storage self;
	socklen_t sl = sizeof(self);
	uint8_t a[16];
	unsigned cport = 0;
	struct ufd *u;
	int r, e;

	mpk_link_claim(pl->link, MPK_CLAIM_PENDING);
	r = real.connect(fd, addr, len);
	e = errno;
	if (r < 0 && e != EINPROGRESS && e != EINTR) {
		mpk_link_claim_swap(pl->link, MPK_CLAIM_PENDING, 0);
		pool_link_unused(pl);
		errno = e;
		return r;
	}
	/* Our address and port are set once the connect started (the peer's
	 * is not, before a nonblocking connect completes). */
	if (getsockname(fd, (struct sockaddr *)&self, &sl) < 0 ||
	    addr_of((struct sockaddr *)&self, sl, a, &cport) == A_NONE || !cport ||
	    mpk_link_claim_swap(pl->link, MPK_CLAIM_PENDING, mpk_claim_of_addr(a, cport)) < 0) {
		slog(cport ? 1 : 2, "port %u: the server stopped waiting for this connection's "
				    "link before the connect was done; plain TCP",
		     port);
		mpk_link_claim_swap(pl->link, MPK_CLAIM_PENDING, 0);
		pool_link_unused(pl);
		stats_count(&totals.fallbacks);
		if (cfg.deny) {
			/* Connected (or on its way) already: reset, before the
			 * program sends a byte. */
			struct sockaddr sa = {.sa_family = AF_UNSPEC};

			slog(0, "port %u: no shared-memory link and MPKLINK_FALLBACK=deny; "
				"connection reset", port);
			real.connect(fd, &sa, sizeof(sa));
		}
		errno = e;
		return r;
	}
	u = conn_new_link(fd, pl->link, pl->bell, 1, port, cport, ST_CONNECTING, pl->token,
			  pl->has_key ? pl->mac_key : NULL);
	explicit_bzero(pl->mac_key, sizeof(pl->mac_key));
	/* Without it (out of memory or fds) our first bytes are plain, and
	 * the server, expecting a preamble, takes us for a plain client. */
	if (!u) {
		errno = e;
		return r;
	}
	return client_connected(fd, u, pl->token, r, e);
}

int upgrade_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct pool_server server;
	struct pool_link pl;
	struct ufd *u;
	unsigned port;
	uint64_t cookie = 0;
	int r, e, remote = 0;

	if (!cfg.enabled || !addr || !(port = server_port(addr, len, &remote)) ||
	    !upgradable(fd) || !is_tcp(fd))
		return real.connect(fd, addr, len);
	/* No launcher answers for the port: the server is not under mpklink. */
	if (!rendezvous_exists(port, &server))
		goto plain;
	/* io_uring's reads and writes would go past the link. */
	if (process_uses_io_uring()) {
		slog(2, "port %u: this process uses io_uring; plain TCP", port);
		goto plain;
	}
	if (!remote) {
		cookie = sockdiag_cookie(fd);
		if (!cookie)
			goto plain;
	}
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
	if (remote)
		return connect_remote(fd, addr, len, port, &pl);
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
	u->cport = sock_port(fd, 0);
	return client_connected(fd, u, pl.token, r, e);
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
	port = listen_port((struct sockaddr *)&ss, l);
	if (!port)
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
	uint8_t peer[16];
	unsigned cport = 0, port;
	int nfd, r, probe_only, remote = 0;

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
	if (!client_ok(port, (struct sockaddr *)&ss, l, peer, &cport, &remote) ||
	    (unsigned)nfd >= FDTAB_MAX) {
		ufd_put(lu);
		return nfd;
	}
	/* The client's link, if it has one of ours: it claimed it with its
	 * socket's cookie before its connect, or, from another network
	 * namespace, with its address and port after it. */
	if (probe_only)
		r = -ENOENT;
	else if (remote)
		r = pool_find_addr(port, mpk_claim_of_addr(peer, cport), &pl);
	else
		r = pool_find(port, sockdiag_peer_cookie(nfd), &pl);
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
	struct sockaddr_storage self, peer;
	socklen_t sl, pl;
	struct mpk_ctl_rep rep;
	uint8_t a[16];
	unsigned l = 0, p = 0, sport, cport;
	int lfds[MPK_LINK_NFDS], side, remote;
	struct ufd *u;

	if (!upgradable(fd) || !is_tcp(fd) || sock_addrs(fd, &self, &sl, &peer, &pl) < 0 ||
	    addr_of((struct sockaddr *)&self, sl, a, &l) == A_NONE)
		return 0;
	/* Our end: the server's when our port is the configured one and the
	 * peer may be a linked client (a program may hold both ends, the
	 * launcher both links); the client's when the peer is a configured
	 * server. */
	if (client_ok(l, (struct sockaddr *)&peer, pl, a, &cport, &remote)) {
		sport = l, side = 0;
	} else if ((p = server_port((struct sockaddr *)&peer, pl, &remote))) {
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
