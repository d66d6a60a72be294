/* SPDX-License-Identifier: MIT */
/*
 * The launcher's control plane (ctl_server.h): one thread polls the shim socket, the
 * rendezvous sockets of the ports its program listens on, and their
 * connections. A LINKS, which waits on another launcher, runs in a
 * worker thread, so two launchers connecting to each other at once never
 * wait on each other. Workers stay a while for the next LINKS: creating
 * a thread was a sixth of the upgrade's control time (docs/PERFORMANCE.md).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_internal.h"
#include "mpklink/ring.h"

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ctl_log(struct mpk_ctl *c, int level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	va_list ap;
	FILE *f = c->cfg.log ? c->cfg.log : stderr;

	if (level > c->cfg.log_level)
		return;
	va_start(ap, fmt);
	flockfile(f);
	fprintf(f, "%s: %s: ", c->cfg.log_name ? c->cfg.log_name : "mpklink", names[level]);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	funlockfile(f);
	va_end(ap);
}

static int same_uid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == getuid();
}

static int sock_path(char *buf, size_t len, const char *dir, const char *name)
{
	size_t d = strlen(dir), n = strlen(name);

	if (d + 1 + n >= len)
		return -ENAMETOOLONG;
	memcpy(buf, dir, d);
	buf[d] = '/';
	memcpy(buf + d + 1, name, n + 1);
	return 0;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd, r;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* ----------------------------------------------------------- slots */

static int add_slot(struct mpk_ctl *c, enum slot_kind kind, int fd, unsigned port)
{
	if (c->nslots == MAX_FDS)
		return -EMFILE;
	c->slots[c->nslots++] = (struct slot){.kind = kind, .fd = fd, .port = port};
	return 0;
}

static void drop_slot(struct mpk_ctl *c, size_t i)
{
	mpk_notes_detach(c->slots[i].notes);
	close(c->slots[i].fd);
	free(c->slots[i].ports);
	c->slots[i] = c->slots[--c->nslots];
}

static int listen_refs(struct mpk_ctl *c, unsigned port)
{
	int n = 0;

	for (size_t i = 0; i < c->nslots; i++)
		for (size_t k = 0; c->slots[i].kind == S_SHIM && k < c->slots[i].nports; k++)
			n += c->slots[i].ports[k] == port;
	return n;
}

/* The port's rendezvous: its name in the run directory (tcp-<port>.sock,
 * or tcp-<addr>-<port>.sock for a remote entry: mpk_endpoint_rdv_name),
 * and the path through our descriptor of the directory (mpk_rundir_path)
 * for bind and connect. */
static void rdv_name(struct mpk_ctl *c, unsigned port, char *name, size_t nlen, char *at,
		     size_t alen)
{
	const struct mpk_endpoint *e = mpk_endpoint_find(c->cfg.eps, c->cfg.neps, port);
	struct mpk_endpoint plain = {.port = (uint16_t)port};

	mpk_endpoint_rdv_name(e ? e : &plain, name, nlen);
	mpk_rundir_path(at, alen, c->dirfd, name);
}

/* A remote entry's address is one of this network namespace's (a bind to
 * it works): else the clients that connect to it reach another program
 * than ours, and a rendezvous here would hand them links nobody accepts.
 * Returns 0 or -EADDRNOTAVAIL. */
static int rdv_address_ours(struct mpk_ctl *c, unsigned port)
{
	const struct mpk_endpoint *e = mpk_endpoint_find(c->cfg.eps, c->cfg.neps, port);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};
	char host[64];
	int s, r;

	if (!e || !e->remote)
		return 0;
	memcpy(&a.sin6_addr, e->addr, 16);
	s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 0; /* no IPv6 at all: the connects will say */
	r = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : -errno;
	close(s);
	if (r == -EADDRNOTAVAIL) {
		ctl_log(c, 0, "port %u: MPKLINK_ENDPOINTS names %s, which is no address of "
			      "this program's network namespace; its connections stay plain TCP",
			port, mpk_endpoint_host(e, host, sizeof(host)));
		return r;
	}
	return 0;
}

/* Starts answering on tcp-<port>.sock, taking over a stale file. */
static int rdv_open(struct mpk_ctl *c, unsigned port)
{
	char path[108], name[64];
	int fd, probe, r;

	for (size_t i = 0; i < c->nslots; i++)
		if (c->slots[i].kind == S_RDV_LISTEN && c->slots[i].port == port)
			return 0;
	r = rdv_address_ours(c, port);
	if (r < 0)
		return r;
	rdv_name(c, port, name, sizeof(name), path, sizeof(path));
	fd = listen_unix(path);
	if (fd == -EADDRINUSE) {
		probe = mpk_ctl_connect(path);
		if (probe >= 0) {
			/* Both programs listen on the port (SO_REUSEPORT): the
			 * kernel picks one per connection, so neither launcher
			 * may make links for it from now on. */
			struct mpk_rdv_hello h = {.magic = MPK_RDV_SHARED, .version = MPK_CTL_VERSION,
						  .server_port = port};

			mpk_ctl_send(probe, &h, sizeof(h), NULL);
			close(probe);
			ctl_log(c, 2, "port %u: another launcher's program listens on it too (%s/%s); "
				   "its connections stay plain TCP", port, c->rundir, name);
			return -EADDRINUSE;
		}
		unlinkat(c->dirfd, name, 0); /* left behind by a launcher that died */
		fd = listen_unix(path);
	}
	if (fd < 0) {
		ctl_log(c, 0, "port %u: cannot listen on %s/%s: %s", port, c->rundir, name,
			strerror(-fd));
		return fd;
	}
	if (add_slot(c, S_RDV_LISTEN, fd, port) < 0) {
		close(fd);
		unlinkat(c->dirfd, name, 0);
		return -EMFILE;
	}
	ctl_log(c, 2, "port %u: rendezvous open", port);
	return 0;
}

static void rdv_close(struct mpk_ctl *c, unsigned port)
{
	char path[108], name[64];

	for (size_t i = 0; i < c->nslots; i++) {
		if (c->slots[i].kind != S_RDV_LISTEN || c->slots[i].port != port)
			continue;
		rdv_name(c, port, name, sizeof(name), path, sizeof(path));
		unlinkat(c->dirfd, name, 0);
		drop_slot(c, i);
		for (size_t k = 0; k < c->nshared; k++)
			if (c->shared[k] == port)
				c->shared[k--] = c->shared[--c->nshared];
		ctl_log(c, 2, "port %u: rendezvous closed", port);
		return;
	}
}

/* -------------------------------------------------------- requests */

static void reply_side(struct mpk_ctl *c, int sock, int status, const uint8_t *token,
		       uint64_t ring_bytes, const int *fds, unsigned side, const uint8_t *key)
{
	struct mpk_ctl_rep rep = {.magic = MPK_CTL_MAGIC, .status = status,
				  .ring_bytes = ring_bytes, .side = side};
	int r;

	if (token)
		memcpy(rep.token, token, MPK_TOKEN_BYTES);
	if (key && status == 0) {
		rep.flags |= MPK_REP_MAC;
		memcpy(rep.mac_key, key, sizeof(rep.mac_key));
	}
	r = mpk_ctl_send(sock, &rep, sizeof(rep), status == 0 ? fds : NULL);
	explicit_bzero(rep.mac_key, sizeof(rep.mac_key));
	if (r < 0)
		ctl_log(c, 3, "reply to shim: %s", strerror(-r));
}

static void reply(struct mpk_ctl *c, int sock, int status, const uint8_t *token,
		  uint64_t ring_bytes, const int *fds)
{
	reply_side(c, sock, status, token, ring_bytes, fds, 0, NULL);
}

/* Server launcher: a batch of n links for clients of port (n is cut to
 * what could be made), kept pending for our program's OFFERS: their fds
 * into fds (3 each; n in 1..MPK_CTL_BATCH_MAX, as the callers checked),
 * the pending entries' own, to send and not close; *seed the batch's.
 * Returns n > 0 or -errno (nothing then stays open). Keys, when the
 * handshake makes one, come later (batch_set_keys). */
static int batch_make(struct mpk_ctl *c, unsigned port, unsigned n, const uint8_t *peer,
		      int *fds, uint8_t seed[MPK_TOKEN_BYTES], uint64_t *ring_bytes)
{
	unsigned made = 0;
	int r = 0;

	if (!listen_refs(c, port))
		return -ECONNREFUSED;
	for (size_t k = 0; k < c->nshared; k++)
		if (c->shared[k] == port)
			return -EADDRINUSE;
	if (getrandom(seed, MPK_TOKEN_BYTES, 0) != MPK_TOKEN_BYTES)
		return -EIO;
	*ring_bytes = c->cfg.ring_bytes ? c->cfg.ring_bytes : MPK_LINK_RING_DEFAULT;
	spares_ripen(c, peer);
	for (; made < n; made++) {
		struct pending p = {.server_port = port, .side = 0, .ring_bytes = *ring_bytes,
				    .expiry_ms = now_ms() + PENDING_MS};
		int *f = fds + MPK_LINK_NFDS * made;

		memcpy(p.peer, peer, sizeof(p.peer));
		/* A link this client had, made over: no memfd, no bells. */
		if (spare_take(c, peer, f) == 0)
			goto made;
		f[0] = mpk_link_create_flags(c->cfg.ring_bytes, c->cfg.link_flags);
		if (f[0] < 0) {
			r = f[0];
			f[0] = -1;
			ctl_log(c, 0, "port %u: cannot create link memory: %s", port, strerror(-r));
			break;
		}
		r = mpk_link_bells_create(f + 1);
		if (r < 0) {
			ctl_log(c, 0, "port %u: cannot create doorbells: %s", port, strerror(-r));
			f[1] = f[2] = -1;
			mpk_ctl_fds_close(f);
			break;
		}
made:
		mpk_link_derive(seed, made, NULL, p.token, p.key);
		/* The pending entry holds the very fds the reply sends (no
		 * copies: six system calls a link): only this thread closes a
		 * side-0 entry's (claimed, closed, expired), and it sends the
		 * reply first. pending_add closes them when it fails. */
		memcpy(p.fds, f, sizeof(p.fds));
		if ((r = pending_add(c, &p)) < 0) {
			f[0] = f[1] = f[2] = -1;
			break;
		}
	}
	if (!made)
		return r < 0 ? r : -ENOMEM;
	ctl_log(c, 3, "port %u: a batch of %u links made", port, made);
	return (int)made;
}

/* Server launcher: the MAC keys of a batch's links, from the session key. */
static void batch_set_keys(struct mpk_ctl *c, unsigned port, const uint8_t *seed, int n,
			   const uint8_t *session)
{
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < n; i++) {
		uint8_t token[MPK_TOKEN_BYTES], key[32];

		mpk_link_derive(seed, (unsigned)i, session, token, key);
		for (size_t k = 0; k < c->npending; k++) {
			struct pending *p = &c->pending[k];

			if (p->side == 0 && p->server_port == port &&
			    !memcmp(p->token, token, sizeof(token))) {
				memcpy(p->key, key, sizeof(key));
				p->has_key = 1;
				break;
			}
		}
		explicit_bzero(key, sizeof(key));
	}
	pthread_mutex_unlock(&c->lock);
}

/* Server launcher: a client launcher asks for links, same-uid trust. */
static void on_hello_plain(struct mpk_ctl *c, int sock, unsigned port, const uint8_t *msg,
			   size_t len)
{
	struct mpk_rdv_hello h;
	struct mpk_rdv_reply rep = {.magic = MPK_RDV_MAGIC};
	int fds[MPK_LINK_NFDS * MPK_CTL_BATCH_MAX], n = 0;

	if (len == sizeof(h))
		memcpy(&h, msg, sizeof(h));
	if (len != sizeof(h) || h.magic != MPK_RDV_MAGIC || h.version != MPK_CTL_VERSION ||
	    h.server_port != port || h.count < 1 || h.count > MPK_CTL_BATCH_MAX) {
		ctl_log(c, 1, "port %u: malformed HELLO refused", port);
		rep.status = -EPROTO;
		goto out;
	}
	{
		static const uint8_t anyone[32]; /* same-uid trust: one client */

		n = batch_make(c, port, h.count, anyone, fds, rep.token, &rep.ring_bytes);
	}
	rep.status = n < 0 ? n : 0;
	if (n < 0) {
		memset(rep.token, 0, sizeof(rep.token));
		rep.ring_bytes = 0;
		n = 0;
	}
out:
	/* The fds stay the pending links' (batch_make). */
	mpk_ctl_send_links(sock, &rep, sizeof(rep), n ? fds : NULL, (size_t)n);
}

/* Server launcher: a HELLO checked by the identity layer first. No link is
 * made for a HELLO it refused. */
static void on_hello_auth(struct mpk_ctl *c, int sock, unsigned port, const uint8_t *msg,
			  size_t len)
{
	const struct mpk_ctl_auth *a = c->cfg.auth;
	static uint8_t out[MPK_RDV_MAX]; /* the control thread's */
	struct mpk_rdv_want w = {0};
	int status, n = 0, fds[MPK_LINK_NFDS * MPK_CTL_BATCH_MAX];
	uint8_t session[32] = {0}, seed[MPK_TOKEN_BYTES] = {0};
	uint64_t ring_bytes = 0;
	char why[256] = "";
	void *st = NULL;
	ssize_t k;

	status = a->check_hello(a->ctx, port, msg, len, &w, &st, why, sizeof(why));
	if (status < 0) {
		/* A session it does not know, or one past its time: the
		 * client's next HELLO makes a handshake. */
		ctl_log(c, status == -ENOKEY || status == -EKEYEXPIRED ? 2 : 0,
			"port %u: link refused: %s", port, why[0] ? why : strerror(-status));
	} else if (w.server_port != port || w.count < 1 || w.count > MPK_CTL_BATCH_MAX) {
		ctl_log(c, 0, "port %u: link refused: the HELLO asks for %u links to port %u",
			port, w.count, w.server_port);
		status = -EPROTO;
	} else {
		n = batch_make(c, port, w.count, w.peer, fds, seed, &ring_bytes);
		status = n < 0 ? n : 0;
		n = n < 0 ? 0 : n;
	}
	k = a->reply(a->ctx, st, status, status == 0 ? seed : NULL, status == 0 ? ring_bytes : 0,
		     out, sizeof(out), session);
	if (k < 0) {
		ctl_log(c, 0, "port %u: cannot make the REPLY: %s", port, strerror((int)-k));
	} else {
		if (status == 0) {
			batch_set_keys(c, port, seed, n, session);
			if (w.resumed)
				ctl_log(c, 3, "port %u: %d links on a resumed session", port, n);
			else
				ctl_log(c, 2, "port %u: handshake with a client's launcher: a new "
					   "session, %d links", port, n);
		}
		mpk_ctl_send_links(sock, out, (size_t)k, n ? fds : NULL, (size_t)n);
	}
	explicit_bzero(session, sizeof(session));
	if (st)
		a->done(a->ctx, st);
	/* The fds stay the pending links' (batch_make). */
}

static void on_hello(struct mpk_ctl *c, int sock, unsigned port)
{
	static uint8_t msg[MPK_RDV_MAX]; /* the control thread's */
	struct mpk_rdv_hello h;
	size_t len = 0;
	int r = mpk_ctl_recv(sock, msg, sizeof(msg), &len, NULL);

	if (r < 0) {
		ctl_log(c, 1, "port %u: no HELLO from the client's launcher: %s", port,
			strerror(-r));
		return;
	}
	if (len == sizeof(h)) {
		memcpy(&h, msg, sizeof(h));
		if (h.magic == MPK_RDV_SHARED && h.version == MPK_CTL_VERSION &&
		    h.server_port == port) {
			int known = 0;

			for (size_t k = 0; k < c->nshared; k++)
				known |= c->shared[k] == port;
			if (!known && c->nshared < sizeof(c->shared) / sizeof(c->shared[0]))
				c->shared[c->nshared++] = port;
			ctl_log(c, 2, "port %u: another launcher's program listens on it too "
				   "(SO_REUSEPORT); its connections stay plain TCP", port);
			return;
		}
	}
	if (c->cfg.auth)
		on_hello_auth(c, sock, port, msg, len);
	else
		on_hello_plain(c, sock, port, msg, len);
}

struct connect_job {
	struct mpk_ctl *c;
	int shim;
	struct mpk_ctl_req req;
	struct connect_job *next;
};

/* Client launcher, same-uid trust: the fixed HELLO and REPLY. Returns the
 * server's status, with *n links' fds. */
static int rdv_plain(struct mpk_ctl *c, int s, const struct connect_job *j, int *fds, size_t *n,
		     uint8_t *seed, uint64_t *ring)
{
	struct mpk_rdv_hello h = {.magic = MPK_RDV_MAGIC, .version = MPK_CTL_VERSION,
				  .server_port = j->req.port, .count = j->req.count,
				  .ring_bytes = c->cfg.ring_bytes};
	union {
		struct mpk_rdv_reply rep;
		uint8_t raw[MPK_RDV_MAX];
	} u;
	struct mpk_rdv_reply rep;
	size_t len = 0;
	int r = mpk_ctl_send(s, &h, sizeof(h), NULL);

	if (r == 0)
		r = mpk_ctl_recv_links(s, &u, sizeof(u), &len, fds, j->req.count, n);
	if (r < 0)
		return r;
	if (len != sizeof(rep) || u.rep.magic != MPK_RDV_MAGIC) {
		mpk_ctl_links_close(fds, *n);
		ctl_log(c, 0, "port %u: the server's launcher refused the link: it requires an "
			"identity (its REPLY is not a plain one; see MPKLINK_IDENTITY)", j->req.port);
		return -ECONNREFUSED;
	}
	memcpy(&rep, &u.rep, sizeof(rep));
	memcpy(seed, rep.token, MPK_TOKEN_BYTES);
	*ring = rep.ring_bytes;
	return rep.status;
}

/* Client launcher, identities: HELLO and REPLY as the identity layer
 * makes and checks them. */
static int rdv_auth(struct mpk_ctl *c, int s, const struct connect_job *j, int *fds, size_t *n,
		    uint8_t *seed, uint64_t *ring, uint8_t *session)
{
	const struct mpk_ctl_auth *a = c->cfg.auth;
	struct mpk_rdv_want w = {j->req.port, j->req.count, c->cfg.ring_bytes, {0}, 0};
	uint8_t *buf = malloc(MPK_RDV_MAX);
	char why[256] = "";
	void *st = NULL;
	size_t len = 0;
	ssize_t k;
	int r, status = -EPROTO;

	if (!buf)
		return -ENOMEM;
	k = a->hello(a->ctx, &w, &st, buf, MPK_RDV_MAX, why, sizeof(why));
	if (k < 0) {
		ctl_log(c, 0, "port %u: cannot make a HELLO: %s", j->req.port,
			why[0] ? why : strerror((int)-k));
		r = (int)k;
		goto out;
	}
	r = mpk_ctl_send(s, buf, (size_t)k, NULL);
	if (r == 0)
		r = mpk_ctl_recv_links(s, buf, MPK_RDV_MAX, &len, fds, j->req.count, n);
	if (r < 0)
		goto out;
	r = a->check_reply(a->ctx, st, buf, len, &status, seed, ring, session, why, sizeof(why));
	if (r < 0) {
		/* -ENOKEY: the caller asks again, and that makes a handshake. */
		ctl_log(c, r == -ENOKEY ? 2 : 0, "port %u: the server's launcher %s: %s",
			j->req.port, r == -ENOKEY ? "did not resume" : "failed verification",
			why[0] ? why : strerror(-r));
		mpk_ctl_links_close(fds, *n);
		*n = 0;
		goto out;
	}
	if (status == 0 && w.resumed)
		ctl_log(c, 3, "port %u: %zu links on a resumed session", j->req.port, *n);
	else if (status == 0)
		ctl_log(c, 2, "port %u: handshake with the server's launcher: a new session, "
			   "%zu links", j->req.port, *n);
	r = status;
	if (r < 0)
		ctl_log(c, r == -EADDRINUSE ? 2 : 0,
			"port %u: the server's launcher refused the link: %s", j->req.port,
			strerror(-r));
out:
	if (st)
		a->done(a->ctx, st);
	free(buf);
	return r;
}

/* Client launcher: a connection to port's rendezvous, to a launcher of
 * our uid, with the exchange's timeouts. Returns it or -errno (-ENOENT:
 * no launcher there). */
static int rdv_dial(struct mpk_ctl *c, unsigned port)
{
	struct timeval tv = {RDV_TIMEOUT_MS / 1000, (RDV_TIMEOUT_MS % 1000) * 1000};
	char path[108], name[64];
	int s;

	rdv_name(c, port, name, sizeof(name), path, sizeof(path));
	s = mpk_ctl_connect(path);
	if (s < 0)
		return s == -ENOENT || s == -ECONNREFUSED ? -ENOENT : s;
	if (!same_uid(s)) {
		ctl_log(c, 1, "port %u: the launcher behind %s/%s is another user; refused", port,
			c->rundir, name);
		close(s);
		return -EPERM;
	}
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return s;
}

/* Client launcher: one HELLO/REPLY with the server's launcher for a batch
 * of links, handed to our program (and kept pending until it claims
 * them). */
static void connect_job_run(struct connect_job *j)
{
	struct mpk_ctl *c = j->c;
	uint8_t seed[MPK_TOKEN_BYTES] = {0}, session[32] = {0};
	static __thread struct mpk_ctl_batch rep;
	uint64_t ring = 0;
	int s, r, fds[MPK_LINK_NFDS * MPK_CTL_BATCH_MAX];
	size_t n = 0;

	memset(&rep, 0, sizeof(rep));
	/* A second time only when the server's launcher did not know the
	 * session our first HELLO resumed: this one makes a handshake. */
	for (int again = 0;; again++) {
		s = rdv_dial(c, j->req.port);
		if (s < 0) {
			r = s;
			goto out;
		}
		r = c->cfg.auth ? rdv_auth(c, s, j, fds, &n, seed, &ring, session)
				: rdv_plain(c, s, j, fds, &n, seed, &ring);
		if (r != -ENOKEY || again)
			break;
		close(s);
	}
	if (r == 0 && !n)
		r = -EPROTO;
	if (r < 0) {
		mpk_ctl_links_close(fds, n);
		n = 0;
	}
	/* Our program will write into these: eventfds, nothing that blocks. */
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (mpk_link_bell_check(fds[MPK_LINK_NFDS * i + 1]) < 0 ||
		    mpk_link_bell_check(fds[MPK_LINK_NFDS * i + 2]) < 0) {
			ctl_log(c, 1, "port %u: the server's launcher sent doorbells that are not "
				   "eventfds", j->req.port);
			r = -EPROTO;
			mpk_ctl_links_close(fds, n);
			n = 0;
		}
	}
	if (r < 0 && !c->cfg.auth)
		ctl_log(c, r == -ECONNREFUSED || r == -EADDRINUSE ? 2 : 1,
			"port %u: no link from the server's launcher: %s", j->req.port, strerror(-r));
	close(s);
out:
	rep.magic = MPK_CTL_MAGIC;
	rep.status = r;
	rep.n = (uint32_t)n;
	rep.ring_bytes = ring;
	/* With identities, every link has a key: the program uses it when
	 * the server made the link a MAC one. */
	rep.flags = c->cfg.auth && n ? MPK_REP_MAC : 0;
	for (size_t i = 0; i < n; i++) {
		struct pending p = {.server_port = j->req.port, .side = 1,
				    .ring_bytes = ring, .expiry_ms = now_ms() + PENDING_MS,
				    .has_key = !!c->cfg.auth};

		mpk_link_derive(seed, (unsigned)i, c->cfg.auth ? session : NULL, p.token, p.key);
		memcpy(rep.link[i].token, p.token, MPK_TOKEN_BYTES);
		if (c->cfg.auth)
			memcpy(rep.link[i].mac_key, p.key, 32);
		/* Kept until our program claims it (for LOOKUP after exec). */
		if (fds_dup(fds + MPK_LINK_NFDS * i, p.fds) == 0)
			pending_add(c, &p);
		explicit_bzero(&p, sizeof(p));
	}
	if (mpk_ctl_send_links(j->shim, &rep, sizeof(rep), n ? fds : NULL, n) < 0)
		ctl_log(c, 3, "reply to shim: cannot send the batch");
	mpk_ctl_links_close(fds, n);
	explicit_bzero(&rep, sizeof(rep));
	explicit_bzero(session, sizeof(session));
	close(j->shim);
	free(j);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Takes LINKS jobs until none came for WORKER_IDLE_MS, or the control
 * plane stops and the queue is empty. */
static void *connect_worker(void *arg)
{
	struct mpk_ctl *c = arg;
	struct timespec until;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct connect_job *j;

		deadline_in(&until, WORKER_IDLE_MS);
		c->idle++;
		while (!c->jobs && !c->stopping &&
		       pthread_cond_timedwait(&c->jobs_cv, &c->lock, &until) != ETIMEDOUT)
			;
		c->idle--;
		j = c->jobs;
		if (!j)
			break;
		c->jobs = j->next;
		if (!c->jobs)
			c->jobs_tail = &c->jobs;
		c->njobs--;
		pthread_mutex_unlock(&c->lock);
		connect_job_run(j);
		pthread_mutex_lock(&c->lock);
	}
	if (--c->workers == 0)
		pthread_cond_broadcast(&c->workers_done);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Queues a LINKS for an idle worker, or starts one for it. 0 or -errno
 * (-EBUSY: CONNECTS_MAX are in flight); on failure the job is not queued. */
static int connect_job_queue(struct mpk_ctl *c, struct connect_job *j)
{
	pthread_attr_t a;
	pthread_t t;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (c->workers - c->idle + c->njobs >= CONNECTS_MAX) {
		r = -EBUSY;
	} else if (c->idle > c->njobs) {
		pthread_cond_signal(&c->jobs_cv);
	} else {
		/* The new worker looks at the queue only once we unlock. */
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		r = -pthread_create(&t, &a, connect_worker, c);
		pthread_attr_destroy(&a);
		if (r == 0)
			c->workers++;
	}
	if (r == 0) {
		j->next = NULL;
		*c->jobs_tail = j;
		c->jobs_tail = &j->next;
		c->njobs++;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int slot_add_port(struct slot *s, unsigned port)
{
	unsigned *n = realloc(s->ports, (s->nports + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	s->ports = n;
	s->ports[s->nports++] = port;
	return 0;
}

static void slot_del_port(struct slot *s, unsigned port)
{
	for (size_t k = 0; k < s->nports; k++) {
		if (s->ports[k] == port) {
			s->ports[k] = s->ports[--s->nports];
			return;
		}
	}
}

/* A LINKS or OFFERS refused. */
static void batch_refuse(struct mpk_ctl *c, int sock, int status)
{
	static struct mpk_ctl_batch rep; /* the control thread's */

	memset(&rep, 0, sizeof(rep));
	rep.magic = MPK_CTL_MAGIC;
	rep.status = status;
	if (mpk_ctl_send(sock, &rep, sizeof(rep), NULL) < 0)
		ctl_log(c, 3, "reply to shim: cannot send a refusal");
}

static int on_shim(struct mpk_ctl *c, size_t idx);

/* CLAIMED and CLOSE, from a notice connection or (when it was full) from a
 * request connection. */
static void on_notice(struct mpk_ctl *c, const struct mpk_ctl_req *req)
{
	if (req->type == MPK_CTL_CLOSE) {
		live_closing(c, req->port, req->peer_port, req->side,
			     req->count == MPK_CTL_CLOSE_ALONE);
		return;
	}
	if (req->side > 1 || !req->peer_port || req->peer_port > 65535 ||
	    pending_claim(c, req->side, req->token, req->port, req->peer_port) < 0)
		ctl_log(c, 3, "port %u: a claim for a link we do not have (expired?)", req->port);
}

/* A request of ours, for a port: what every request but NOTES must be. */
static int req_ok(const struct mpk_ctl_req *req)
{
	return req->magic == MPK_CTL_MAGIC && req->version == MPK_CTL_VERSION && req->port &&
	       req->port <= 65535;
}

static int notice_ok(const struct mpk_ctl_req *req)
{
	return req_ok(req) && (req->type == MPK_CTL_CLAIMED || req->type == MPK_CTL_CLOSE);
}

/* Takes the notices waiting in the programs' rings, without waiting for
 * more, and sets when to look next. A program that went (its connection
 * ended), wrote anything but notices, or spoke on the connection, is
 * marked gone: the poll loop drops it (here a caller may be walking the
 * slots). */
static void notes_drain(struct mpk_ctl *c)
{
	static struct mpk_ctl_req got_v[MPK_NOTES_SLOTS]; /* the control thread's */
	int got = 0, any = 0;

	for (size_t i = 0; i < c->nslots; i++) {
		struct slot *s = &c->slots[i];
		char b;
		int r = 0;

		if (s->kind != S_NOTES || s->gone)
			continue;
		any = 1;
		/* The ring first: what a program wrote before it went counts. */
		r = mpk_notes_take(s->notes, &s->notes_tail, got_v, MPK_NOTES_SLOTS);
		for (int k = 0; k < r; k++) {
			if (!notice_ok(&got_v[k])) {
				r = -EPROTO;
				break;
			}
			on_notice(c, &got_v[k]);
			got++;
		}
		if (r < 0) {
			ctl_log(c, 1, "a program's notice ring holds what is no notice; cut off");
			s->gone = 1;
			continue;
		}
		/* Nothing comes on the connection itself but its end. */
		if (recv(s->fd, &b, 1, MSG_DONTWAIT) >= 0 || errno != EAGAIN)
			s->gone = 1;
	}
	if (!any) {
		c->notes_at_ms = 0;
		return;
	}
	/* A read finds 16 to 64 notices: one wake-up per 16 connections or
	 * fewer, however fast they come, and at most one a second when they
	 * stop. */
	if (got >= 64)
		c->notes_ms = c->notes_ms / 2 < NOTES_MIN_MS ? NOTES_MIN_MS : c->notes_ms / 2;
	else if (got < 16)
		c->notes_ms = c->notes_ms * 2 > NOTES_MAX_MS ? NOTES_MAX_MS : c->notes_ms * 2;
	c->notes_at_ms = now_ms() + c->notes_ms;
}

/* Takes the requests already waiting on the program's other control
 * sockets (but the one at idx), without waiting for more. */
static void shims_drain(struct mpk_ctl *c, size_t idx)
{
	static int draining; /* the control thread's: a LOOKUP met here waits not */

	if (draining)
		return;
	draining = 1;
	notes_drain(c);
	for (size_t i = 0; i < c->nslots; i++) {
		struct pollfd pf = {.fd = c->slots[i].fd, .events = POLLIN};

		if (i == idx || c->slots[i].kind != S_SHIM)
			continue;
		/* A connection that went is dropped by the poll loop, later. */
		while (poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN) && !(pf.revents & POLLHUP)) {
			if (on_shim(c, i) < 0)
				break;
		}
	}
	draining = 0;
}

/* Returns -1 when the shim's connection is gone. */
static int on_shim(struct mpk_ctl *c, size_t idx)
{
	struct slot *s = &c->slots[idx];
	struct mpk_ctl_req req;
	int r;

	r = mpk_ctl_recv_exact(s->fd, &req, sizeof(req), NULL);
	if (r == -EAGAIN)
		return 0;
	if (r < 0)
		return -1;
	if (req.magic == MPK_CTL_MAGIC && req.version == MPK_CTL_VERSION &&
	    req.type == MPK_CTL_NOTES && !req.port && !s->nports) {
		/* From now on its ring is read by notes_drain, on its own
		 * schedule; the connection only says when the program went. */
		struct mpk_notes *ring = NULL;
		int fd = mpk_notes_create(&ring);

		if (fd < 0) {
			reply(c, s->fd, fd, NULL, 0, NULL);
			return 0;
		}
		reply(c, s->fd, 0, NULL, 0, (int[MPK_LINK_NFDS]){fd, fd, fd});
		close(fd);
		s->kind = S_NOTES;
		s->notes = ring;
		s->notes_tail = 0;
		c->notes_ms = NOTES_MIN_MS;
		c->notes_at_ms = now_ms() + NOTES_MIN_MS;
		return 0;
	}
	if (!req_ok(&req)) {
		ctl_log(c, 1, "malformed request from the shim refused");
		reply(c, s->fd, -EPROTO, NULL, 0, NULL);
		return 0;
	}
	switch (req.type) {
	case MPK_CTL_LISTEN:
		r = rdv_open(c, req.port);
		if (r == 0)
			r = slot_add_port(s, req.port);
		reply(c, s->fd, r, NULL, 0, NULL);
		return 0;
	case MPK_CTL_UNLISTEN:
		slot_del_port(s, req.port);
		if (!listen_refs(c, req.port))
			rdv_close(c, req.port);
		reply(c, s->fd, 0, NULL, 0, NULL);
		return 0;
	case MPK_CTL_OFFERS: {
		static struct mpk_ctl_batch rep; /* the control thread's */
		struct pending p[MPK_CTL_BATCH_MAX];
		int fds[MPK_LINK_NFDS * MPK_CTL_BATCH_MAX];
		size_t n = pending_offers(c, req.port, req.since, p, MPK_CTL_BATCH_MAX);

		memset(&rep, 0, sizeof(rep));
		rep.magic = MPK_CTL_MAGIC;
		rep.status = n ? 0 : -ENOENT;
		rep.n = (uint32_t)n;
		for (size_t i = 0; i < n; i++) {
			memcpy(rep.link[i].token, p[i].token, MPK_TOKEN_BYTES);
			memcpy(fds + MPK_LINK_NFDS * i, p[i].fds, sizeof(p[i].fds));
			rep.ring_bytes = p[i].ring_bytes;
			rep.last = p[i].seq;
			if (p[i].has_key) {
				rep.flags |= MPK_REP_MAC;
				memcpy(rep.link[i].mac_key, p[i].key, 32);
			}
		}
		if (mpk_ctl_send_links(s->fd, &rep, sizeof(rep), n ? fds : NULL, n) < 0)
			ctl_log(c, 3, "reply to shim: cannot send the offers");
		/* The fds stay the pending links' (pending_offers). */
		explicit_bzero(&rep, sizeof(rep));
		explicit_bzero(p, sizeof(p));
		return 0;
	}
	case MPK_CTL_CLAIMED:
	case MPK_CTL_CLOSE:
		/* Sent so when the program's ring was full: answered once it
		 * is taken, after the ring's notices (read at the top of the
		 * loop), so the program's next notice cannot pass it. */
		on_notice(c, &req);
		reply(c, s->fd, 0, NULL, 0, NULL);
		return 0;
	case MPK_CTL_LOOKUP: {
		ssize_t i;
		int fds[MPK_LINK_NFDS] = {-1, -1, -1}, has_key = 0;
		uint8_t key[32];
		unsigned side = 0;

		pthread_mutex_lock(&c->lock);
		i = live_find(c, req.port, req.peer_port, req.side);
		if (i < 0) {
			/* The CLAIMED that names it may wait on another of
			 * the program's sockets, sent before this LOOKUP (an
			 * exec follows the connect): take those first. */
			pthread_mutex_unlock(&c->lock);
			shims_drain(c, idx);
			pthread_mutex_lock(&c->lock);
			i = live_find(c, req.port, req.peer_port, req.side);
		}
		if (i >= 0) {
			r = fds_dup(c->live[i].fds, fds);
			side = c->live[i].side;
			has_key = c->live[i].has_key;
			memcpy(key, c->live[i].key, sizeof(key));
		}
		pthread_mutex_unlock(&c->lock);
		r = i < 0 ? -ENOENT : r;
		reply_side(c, s->fd, r, NULL, 0, fds, side, has_key ? key : NULL);
		explicit_bzero(key, sizeof(key));
		mpk_ctl_fds_close(fds);
		return 0;
	}
	case MPK_CTL_LINKS: {
		struct connect_job *j;

		if (req.count < 1 || req.count > MPK_CTL_BATCH_MAX) {
			batch_refuse(c, s->fd, -EPROTO);
			return 0;
		}
		j = malloc(sizeof(*j));
		if (!j || (j->shim = fcntl(s->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
			free(j);
			batch_refuse(c, s->fd, -ENOMEM);
			return 0;
		}
		j->c = c;
		j->req = req;
		if ((r = connect_job_queue(c, j)) < 0) {
			batch_refuse(c, s->fd, r == -EBUSY ? r : -EAGAIN);
			close(j->shim);
			free(j);
		}
		return 0;
	}
	default:
		reply(c, s->fd, -EOPNOTSUPP, NULL, 0, NULL);
		return 0;
	}
}

/* Cuts off the rendezvous peer in slot i (its HELLO is overdue, or room
 * is needed for a newer one). */
static void rdv_cut(struct mpk_ctl *c, size_t i, const char *why)
{
	ctl_log(c, 1, "port %u: a rendezvous peer %s; cut off", c->slots[i].port, why);
	drop_slot(c, i);
}

static void on_accept(struct mpk_ctl *c, int lfd, enum slot_kind kind, unsigned port)
{
	/* Nonblocking, both kinds: a request may be taken out of turn
	 * (shims_drain), and the poll loop's look at it is then stale. */
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (!same_uid(fd)) {
		ctl_log(c, 1, "%s: a process of another user was refused (SO_PEERCRED)",
		     kind == S_SHIM ? "control socket" : "rendezvous");
		close(fd);
		return;
	}
	if (kind == S_RDV) {
		/* Its HELLO is read when it comes, by the poll loop: a peer that
		 * is slow or silent holds up nobody, and is cut off at its
		 * deadline or when the waiting room is full. */
		size_t waiting = 0, oldest = 0;

		for (size_t i = 0; i < c->nslots; i++) {
			if (c->slots[i].kind != S_RDV)
				continue;
			if (!waiting++ || c->slots[i].deadline_ms < c->slots[oldest].deadline_ms)
				oldest = i;
		}
		if (waiting >= RDV_MAX_WAITING)
			rdv_cut(c, oldest, "waited longest while too many waited");
		if (add_slot(c, S_RDV, fd, port) < 0) {
			close(fd);
			return;
		}
		c->slots[c->nslots - 1].deadline_ms = now_ms() + RDV_TIMEOUT_MS;
		return;
	}
	if (add_slot(c, kind, fd, port) < 0)
		close(fd);
}

/* Milliseconds until the first rendezvous peer's deadline (at most max),
 * cutting off those whose deadline passed. */
static int64_t rdv_expire(struct mpk_ctl *c, int64_t max)
{
	int64_t now = now_ms(), left = max;

	for (size_t i = c->nslots; i-- > 0;) {
		if (c->slots[i].kind != S_RDV)
			continue;
		if (c->slots[i].deadline_ms <= now) {
			rdv_cut(c, i, "sent no HELLO in time");
			continue;
		}
		if (c->slots[i].deadline_ms - now < left)
			left = c->slots[i].deadline_ms - now;
	}
	return left;
}

static void *ctl_thread(void *arg)
{
	struct mpk_ctl *c = arg;
	struct pollfd pf[MAX_FDS];

	for (;;) {
		size_t n;
		int r, sweep;

		/* Until the next sweep, at most a second (the pending links'
		 * expiry), or a rendezvous peer's deadline. sweep_at_ms
		 * changes under c->lock; a stale look costs one more turn. */
		int64_t at = __atomic_load_n(&c->sweep_at_ms, __ATOMIC_RELAXED), left;

		for (size_t i = c->nslots; i-- > 0;)
			if (c->slots[i].kind == S_NOTES && c->slots[i].gone)
				drop_slot(c, i);
		if (c->notes_at_ms && (!at || c->notes_at_ms < at))
			at = c->notes_at_ms;
		left = at ? at - now_ms() : 1000;
		left = rdv_expire(c, left < 0 ? 0 : left > 1000 ? 1000 : left);
		n = c->nslots;
		for (size_t i = 0; i < n; i++)
			/* A notice connection is not waited on: its notices
			 * wake nobody (a negative fd is left out). */
			pf[i] = (struct pollfd){.fd = c->slots[i].kind == S_NOTES ? -1
									 : c->slots[i].fd,
						.events = POLLIN};
		r = poll(pf, n, (int)left);
		/* Before anything they may bear on: a request, an expiry. */
		notes_drain(c);
		pthread_mutex_lock(&c->lock);
		pending_purge(c, now_ms());
		sweep = c->sweep_at_ms && now_ms() >= c->sweep_at_ms;
		pthread_mutex_unlock(&c->lock);
		spares_tend(c, now_ms());
		if (sweep)
			live_sweep(c);
		if (r <= 0)
			continue;
		/* Backwards: drop_slot moves the last slot into the hole. */
		for (size_t i = n; i-- > 0;) {
			struct slot *s = &c->slots[i];

			if (!pf[i].revents)
				continue;
			switch (s->kind) {
			case S_WAKE:
				return NULL;
			case S_CTL_LISTEN:
				on_accept(c, s->fd, S_SHIM, 0);
				break;
			case S_RDV_LISTEN:
				on_accept(c, s->fd, S_RDV, s->port);
				break;
			case S_SHIM:
				if (on_shim(c, i) < 0) {
					unsigned *ports = s->ports;
					size_t np = s->nports;

					s->ports = NULL;
					s->nports = 0;
					drop_slot(c, i);
					for (size_t k = 0; k < np; k++)
						if (!listen_refs(c, ports[k]))
							rdv_close(c, ports[k]);
					free(ports);
				}
				break;
			case S_RDV:
				/* A whole HELLO (one datagram), or the peer went. */
				on_hello(c, s->fd, s->port);
				drop_slot(c, i);
				break;
			case S_NOTES: /* not polled */
				break;
			}
		}
	}
}

/* Our pid namespace, as its inode (0 when /proc cannot say). */
static unsigned long pid_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* ctl-<pid>-<pidns>.sock: our shim socket's name. A pid alone is not
 * unique where containers with pid namespaces of their own share the run
 * directory (each launcher there may be pid 1). */
static void ctl_name(char *name, size_t len)
{
	snprintf(name, len, "ctl-%d-%lx.sock", (int)getpid(), pid_ns());
}

/* ctl-<pid>-<pidns>.sock files of launchers killed with -9 (they could not
 * remove them): ours (by owner), of our pid namespace (another's pids mean
 * nothing here: those files are left to launchers there), their pid gone,
 * and nothing answering on them. */
static void remove_stale(struct mpk_ctl *c)
{
	struct dirent *d;
	DIR *dir;
	int fd = openat(c->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((d = readdir(dir))) {
		char path[108], tail[16];
		struct stat st;
		unsigned long ns = 0;
		int pid = 0, n = 0, s;

		if (sscanf(d->d_name, "ctl-%d-%lx%n", &pid, &ns, &n) != 2 || pid <= 0 ||
		    pid == getpid() || ns != pid_ns() ||
		    snprintf(tail, sizeof(tail), "%s", d->d_name + n) < 0 || strcmp(tail, ".sock"))
			continue;
		if (fstatat(c->dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISSOCK(st.st_mode) || st.st_uid != getuid())
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		if (mpk_rundir_path(path, sizeof(path), c->dirfd, d->d_name) < 0)
			continue;
		s = mpk_ctl_connect(path);
		if (s >= 0) {
			close(s);
			continue;
		}
		if (s == -ECONNREFUSED && unlinkat(c->dirfd, d->d_name, 0) == 0)
			ctl_log(c, 2, "removed %s/%s: its launcher (pid %d) is gone", c->rundir,
				d->d_name, pid);
	}
	closedir(dir);
}

int mpk_ctl_start(const struct mpk_ctl_config *cfg, struct mpk_ctl **out)
{
	struct mpk_ctl *c;
	char name[48], at[108];
	int r, fd;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfg->rundir_fd);
		return -ENOMEM;
	}
	c->cfg = *cfg;
	c->dirfd = cfg->rundir_fd;
	c->wake_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->workers_done, NULL);
	c->jobs_tail = &c->jobs;
	{
		/* The idle wait's deadline is on the monotonic clock. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->jobs_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (strlen(cfg->rundir) >= sizeof(c->rundir)) {
		r = -ENAMETOOLONG;
		goto err_free;
	}
	strcpy(c->rundir, cfg->rundir);
	c->cfg.rundir = c->rundir;
	ctl_name(name, sizeof(name));
	r = sock_path(c->path, sizeof(c->path), c->rundir, name);
	if (r == 0)
		r = mpk_rundir_path(at, sizeof(at), c->dirfd, name);
	if (r < 0)
		goto err_free;
	remove_stale(c);
	unlinkat(c->dirfd, name, 0); /* a launcher with our pid is dead */
	fd = listen_unix(at);
	if (fd < 0) {
		r = fd;
		goto err_free;
	}
	add_slot(c, S_CTL_LISTEN, fd, 0);
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0) {
		r = -errno;
		goto err_unlink;
	}
	/* Close-on-exec like every fd of ours: the program is exec'd from
	 * this process and must not inherit it. */
	fd = fcntl(c->wake_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto err_unlink;
	}
	add_slot(c, S_WAKE, fd, 0);
	r = -pthread_create(&c->thread, NULL, ctl_thread, c);
	if (r < 0)
		goto err_unlink;
	c->running = 1;
	*out = c;
	return 0;

err_unlink:
	unlinkat(c->dirfd, name, 0);
	for (size_t i = c->nslots; i-- > 0;)
		drop_slot(c, i);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
err_free:
	close(c->dirfd);
	free(c);
	return r;
}

const char *mpk_ctl_path(const struct mpk_ctl *c)
{
	return c->path;
}

void mpk_ctl_stop(struct mpk_ctl *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	if (c->running) {
		if (write(c->wake_fd, &one, sizeof(one)) < 0)
			ctl_log(c, 0, "cannot stop the control thread");
		pthread_join(c->thread, NULL);
	}
	/* Queued LINKS still run (each bounded by RDV_TIMEOUT_MS); idle
	 * workers leave now. */
	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	pthread_cond_broadcast(&c->jobs_cv);
	while (c->workers)
		pthread_cond_wait(&c->workers_done, &c->lock);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = c->nslots; i-- > 0;) {
		if (c->slots[i].kind == S_RDV_LISTEN)
			rdv_close(c, c->slots[i].port);
		else
			drop_slot(c, i);
	}
	{
		char name[48];

		ctl_name(name, sizeof(name));
		unlinkat(c->dirfd, name, 0);
	}
	close(c->dirfd);
	for (size_t i = 0; i < c->npending; i++)
		mpk_ctl_fds_close(c->pending[i].fds);
	if (c->pending)
		explicit_bzero(c->pending, c->npending * sizeof(*c->pending));
	free(c->pending);
	for (size_t i = 0; i < c->nlive; i++)
		mpk_ctl_fds_close(c->live[i].fds);
	spares_free(c);
	if (c->live)
		explicit_bzero(c->live, c->nlive * sizeof(*c->live));
	free(c->live);
	close(c->wake_fd);
	free(c);
}
