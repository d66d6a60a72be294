/* SPDX-License-Identifier: MIT */
/* A listener's or a connection's object and a connection's setup states
 * (conn.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "ctlclient.h"
#include "log.h"
#include "process.h"
#include "real.h"
#include "settings.h"
#include "stats.h"

struct conn_hooks conn_hooks;

static void ufd_init(struct fdobj *o)
{
	struct ufd *u = ufd_of(o);

	u->sock = u->bell[0] = u->bell[1] = -1;
	pthread_mutex_init(&u->rlock, NULL);
	pthread_mutex_init(&u->wlock, NULL);
	pthread_mutex_init(&u->slock, NULL);
}

int conn_claim_report(struct ufd *u)
{
	/* The exit report and a close in another thread race for it (a link
	 * counted twice showed twice the preamble's TCP bytes, 1 run in 180). */
	return !__atomic_exchange_n(&u->reported, 1, __ATOMIC_ACQ_REL);
}

static void listener_destroy(struct fdobj *o, int quiet)
{
	if (!quiet)
		ctl_unlisten(ufd_of(o)->port);
}

static void conn_destroy(struct fdobj *o, int quiet)
{
	struct ufd *u = ufd_of(o);

	/* First: a set looking at its entries holds their set's lock. */
	if (conn_hooks.forget_conn)
		conn_hooks.forget_conn(u);
	/* Bytes the program left unread in the ring when the socket goes
	 * (now: the last call using it has returned) make it a reset, as
	 * they would have on TCP: the peer reads ECONNRESET, not the end.
	 * Not where another process may hold the socket still. */
	if (u->link && u->sock >= 0 && !quiet && !conn_maybe_shared(u) &&
	    (u->state == ST_ACTIVE || u->state == ST_VERIFY) && mpk_link_readable(u->link) > 0) {
		struct linger lg = {1, 0};

		real.setsockopt(u->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	if (u->link) {
		/* The launcher forgets the link: no later image can claim it;
		 * at once when no other process can hold the socket, else
		 * once none does. Not from a fork child for the parent's
		 * connection. */
		int alone = !conn_maybe_shared(u);

		if (u->cport && !quiet)
			ctl_closed(u->port, u->cport, u->side, alone);
		if (conn_claim_report(u))
			stats_add(u->link, u->sock);
		/* The last look at it: its launcher may make it over for
		 * another connection of ours (mpk_link_release). */
		if (u->cport && !quiet && alone)
			mpk_link_release(u->link);
		mpk_link_detach(u->link);
		u->link = NULL;
	}
	fdtab_internal_close(u->sock);
	fdtab_internal_close(u->bell[0]);
	fdtab_internal_close(u->bell[1]);
	u->sock = u->bell[0] = u->bell[1] = -1;
}

static void ufd_stale(struct fdobj *o, int fd)
{
	(void)o;
	if (conn_hooks.forget)
		conn_hooks.forget(fd);
}

static void ufd_fork_child(struct fdobj *o)
{
	struct ufd *u = ufd_of(o);

	/* A thread of the parent may have held them (a blocked read holds
	 * rlock); the indices they guard are reloaded on first use here
	 * (the fork generation moved). */
	pthread_mutex_init(&u->rlock, NULL);
	pthread_mutex_init(&u->wlock, NULL);
	pthread_mutex_init(&u->slock, NULL);
}

static void conn_internal_lost(struct fdobj *o, int fd)
{
	struct ufd *u = ufd_of(o);

	if (fd != u->sock && fd != u->bell[0] && fd != u->bell[1])
		return;
	slog(1, "port %u: an fd of the link (%d) was closed behind the preload's back; "
		"link broken", u->port, fd);
	if (u->link)
		mpk_link_set_bells(u->link, -1, -1);
	if (fd == u->sock)
		u->sock = -1;
	if (fd == u->bell[0])
		u->bell[0] = -1;
	if (fd == u->bell[1])
		u->bell[1] = -1;
	u->state = ST_BROKEN;
}

static const struct fdobj_ops listen_ops = {
	.size = sizeof(struct ufd),
	.init = ufd_init,
	.destroy = listener_destroy,
	.stale = ufd_stale,
	.fork_child = ufd_fork_child,
};

static const struct fdobj_ops conn_ops = {
	.size = sizeof(struct ufd),
	.init = ufd_init,
	.destroy = conn_destroy,
	.stale = ufd_stale,
	.fork_child = ufd_fork_child,
	.internal_lost = conn_internal_lost,
};

void conn_register(void)
{
	fdtab_register(FDO_LISTEN, &listen_ops);
	fdtab_register(FDO_CONN, &conn_ops);
}

struct ufd *listener_new(unsigned port)
{
	struct ufd *u = ufd_of(fdobj_new(FDO_LISTEN));

	if (u)
		u->port = port;
	return u;
}

static uint64_t timeo_ns(int sock, int name)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);

	if (real.getsockopt(sock, SOL_SOCKET, name, &tv, &l) < 0 || l < sizeof(tv))
		return 0;
	return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

void conn_read_timeouts(struct ufd *u)
{
	/* Read by blocking calls in other threads. */
	__atomic_store_n(&u->rcvtimeo_ns, timeo_ns(u->sock, SO_RCVTIMEO), __ATOMIC_RELAXED);
	__atomic_store_n(&u->sndtimeo_ns, timeo_ns(u->sock, SO_SNDTIMEO), __ATOMIC_RELAXED);
	{
		int v = 1;
		socklen_t l = sizeof(v);

		if (real.getsockopt(u->sock, SOL_SOCKET, SO_RCVLOWAT, &v, &l) < 0 || v < 1)
			v = 1;
		__atomic_store_n(&u->rcvlowat, v, __ATOMIC_RELAXED);
	}
}

static int fd_nonblocking(int fd)
{
	int fl = real.fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

struct ufd *conn_new_link(int fd, struct mpk_link *link, int *bell, int side, unsigned port,
			  unsigned cport, int state, const uint8_t *token, const uint8_t *mac_key)
{
	struct ufd *u = ufd_of(fdobj_new(FDO_CONN));
	int r = u ? 0 : -ENOMEM;

	/* A MAC link needs the handshake's key; one asked for MACs needs a
	 * MAC link (the server's launcher decides how links are made). */
	if (r == 0 && mpk_link_mac_required(link)) {
		r = mac_key ? mpk_link_set_mac(link, mac_key) : -EPROTO;
		if (r == 0)
			stats_count(&totals.mac_links);
	} else if (r == 0 && cfg.integrity) {
		slog(0, "port %u: MPKLINK_INTEGRITY=mac, but the server's launcher makes links "
			"without MACs; no link", port);
		r = -EPROTO;
	}
	if (r == 0) {
		u->sock = fdtab_internal_dup(fd);
		if (u->sock < 0)
			r = -errno;
	}
	if (r < 0) {
		slog(1, "port %u: cannot attach the link: %s", port, strerror(-r));
		mpk_link_detach(link);
		fdtab_internal_close(bell[0]);
		fdtab_internal_close(bell[1]);
		if (u)
			ufd_put(u);
		return NULL;
	}
	u->link = link;
	u->bell[0] = bell[0];
	u->bell[1] = bell[1];
	/* The socket stays, for the peer's hang-up: its close or death. */
	mpk_link_set_doorbell(u->link, u->sock, real.send, real.recv);
	mpk_link_set_bells(u->link, u->bell[0], u->bell[1]);
	u->fork_gen = u->born_gen = process_fork_gen();
	u->port = port;
	u->cport = cport;
	u->side = (unsigned)side;
	u->state = state;
	u->nonblock = fd_nonblocking(fd);
	/* An accepted socket inherits the listener's. */
	conn_read_timeouts(u);
	if (token) {
		memcpy(u->pre, MPK_PREAMBLE_MAGIC, 8);
		memcpy(u->pre + 8, token, MPK_TOKEN_BYTES);
	}
	stats_count(&totals.links);
	if (mpk_link_gen(link))
		stats_count(&totals.made_over);
	return u;
}

int conn_attach_fds(int *lfds, int side, int check_bells, struct mpk_link **link, int *bell)
{
	int r = mpk_link_attach(lfds[0], side, link);

	real.close(lfds[0]);
	if (r == 0 && check_bells && (r = mpk_link_bell_check(lfds[1 + side])) == 0)
		r = mpk_link_bell_check(lfds[2 - side]);
	if (r < 0) {
		if (*link)
			mpk_link_detach(*link);
		*link = NULL;
		real.close(lfds[1]);
		real.close(lfds[2]);
		return r;
	}
	bell[0] = fdtab_internal_take(lfds[1 + side]);
	bell[1] = fdtab_internal_take(lfds[2 - side]);
	return 0;
}

struct ufd *conn_new(int fd, int *lfds, int side, unsigned port, unsigned cport, int state,
		     const uint8_t *token, struct mpk_ctl_rep *rep)
{
	struct mpk_link *link = NULL;
	struct ufd *u;
	int bell[2] = {-1, -1};
	int r = conn_attach_fds(lfds, side, 1, &link, bell);

	if (r < 0) {
		slog(1, "port %u: cannot attach the link: %s", port, strerror(-r));
		explicit_bzero(rep->mac_key, sizeof(rep->mac_key));
		return NULL;
	}
	u = conn_new_link(fd, link, bell, side, port, cport, state, token,
			  rep->flags & MPK_REP_MAC ? rep->mac_key : NULL);
	explicit_bzero(rep->mac_key, sizeof(rep->mac_key));
	return u;
}

struct ufd *conn_new_probe(int fd, unsigned port, unsigned cport)
{
	struct ufd *u = ufd_of(fdobj_new(FDO_CONN));
	int sock;

	if (!u)
		return NULL;
	sock = fdtab_internal_dup(fd);
	if (sock < 0) {
		ufd_put(u);
		return NULL;
	}
	u->sock = sock;
	u->fork_gen = process_fork_gen();
	u->port = port;
	u->cport = cport;
	u->state = ST_PROBE;
	u->nonblock = fd_nonblocking(fd);
	conn_read_timeouts(u);
	return u;
}

/* Pushes the client's preamble. 0 when done, -EAGAIN while the connect
 * is in flight, or the connect's error. */
static int send_preamble(struct ufd *u)
{
	while (u->pre_off < sizeof(u->pre)) {
		ssize_t r = real.send(u->sock, u->pre + u->pre_off, sizeof(u->pre) - u->pre_off,
				      MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == ENOTCONN)
				return -EAGAIN;
			return -errno;
		}
		u->pre_off += (size_t)r;
	}
	return 0;
}

/* Server: the first bytes must be the preamble. Peeked until complete, so
 * a plain client (first byte not 0) loses nothing. Returns 0 verified,
 * 1 plain client, -EAGAIN incomplete, -EPIPE at EOF, -EBADMSG (wrong). */
static int check_preamble(struct ufd *u)
{
	uint8_t buf[MPK_PREAMBLE_BYTES];
	unsigned diff = 0;
	ssize_t r;

	do
		r = real.recv(u->sock, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	if (r == 0)
		return -EPIPE; /* the client went away before a byte */
	if (buf[0] != 0)
		return 1;
	if ((size_t)r < sizeof(buf))
		return -EAGAIN;
	for (size_t i = 0; i < sizeof(buf); i++)
		diff |= buf[i] ^ u->pre[i];
	if (diff)
		return -EBADMSG;
	real.recv(u->sock, buf, sizeof(buf), MSG_DONTWAIT);
	return 0;
}

/* A PROBE's first bytes: 1 plain (anything but a link's preamble, the end
 * of the stream, an error: the real calls will say), -EAGAIN (nothing
 * yet, or a beginning of the magic), -EBADMSG (a link's preamble). */
static int probe_preamble(struct ufd *u)
{
	uint8_t buf[8];
	ssize_t r;

	do
		r = real.recv(u->sock, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? -EAGAIN : 1;
	if (r == 0 || memcmp(buf, MPK_PREAMBLE_MAGIC, (size_t)r) != 0)
		return 1;
	return r < (ssize_t)sizeof(buf) ? -EAGAIN : -EBADMSG;
}

static void reset_connection(int sock)
{
	struct linger lg = {1, 0};

	real.setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	real.shutdown(sock, SHUT_RDWR);
}

static void reset_peer(struct ufd *u);

int settle(struct ufd *u)
{
	unsigned g = process_fork_gen();
	int r;

	if (__atomic_load_n(&u->state, __ATOMIC_ACQUIRE) == ST_ACTIVE && u->fork_gen == g)
		return 0;
	pthread_mutex_lock(&u->slock);
	if (u->fork_gen != g) {
		/* First use in this process since fork. */
		u->fork_gen = g;
		if (u->link && mpk_link_resync(u->link) < 0)
			u->state = ST_BROKEN;
	}
	switch (u->state) {
	case ST_ACTIVE:
		r = 0;
		break;
	case ST_CONNECTING:
		r = send_preamble(u);
		if (r == 0) {
			__atomic_store_n(&u->state, ST_ACTIVE, __ATOMIC_RELEASE);
		} else if (r != -EAGAIN) {
			u->conn_err = -r;
			u->state = ST_BROKEN;
		}
		break;
	case ST_VERIFY:
		r = check_preamble(u);
		if (r == 0) {
			__atomic_store_n(&u->state, ST_ACTIVE, __ATOMIC_RELEASE);
		} else if (r == 1 && cfg.deny) {
			/* No preamble where a link was pending: under deny the
			 * port takes links only; nothing of it was read. */
			slog(1, "port %u: the client sent no link preamble; reset, as "
				"MPKLINK_FALLBACK=deny says", u->port);
			reset_peer(u);
			u->state = ST_BROKEN;
			r = -ECONNRESET;
		} else if (r == -EBADMSG) {
			slog(1, "port %u: a client sent a wrong link token; connection reset",
			     u->port);
			reset_connection(u->sock);
			u->state = ST_BROKEN;
			r = -ECONNRESET;
		}
		break;
	case ST_PROBE:
		r = probe_preamble(u);
		if (r == -EBADMSG) {
			slog(1, "port %u: a client came with a link this server's launcher did "
				"not make (another launcher answers for the port, or the link "
				"expired); connection reset", u->port);
			reset_connection(u->sock);
			u->state = ST_BROKEN;
			r = -ECONNRESET;
		}
		break;
	default:
		r = u->conn_err ? -u->conn_err : -ECONNRESET;
	}
	pthread_mutex_unlock(&u->slock);
	return r;
}

void conn_break(struct ufd *u, const char *why)
{
	if (__atomic_exchange_n(&u->broke, 1, __ATOMIC_ACQ_REL))
		return;
	slog(0, "port %u: link broken: %s; connection reset", u->port, why);
	if (u->link)
		mpk_link_break(u->link);
	/* The peer's hang-up check reads the reset as ECONNRESET. */
	reset_peer(u);
}

void conn_reset(struct ufd *u, int err)
{
	__atomic_store_n(&u->reset, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&u->err_pending, err, __ATOMIC_RELEASE);
}

/* Resets the peer's end: a connect to AF_UNSPEC disconnects a TCP socket
 * with a reset (tcp_disconnect), whoever else holds it. */
static void reset_peer(struct ufd *u)
{
	struct sockaddr sa = {.sa_family = AF_UNSPEC};

	if (u->sock >= 0)
		real.connect(u->sock, &sa, sizeof(sa));
}

uint64_t conn_rx_total(struct ufd *u)
{
	struct mpk_link_stats st;
	ssize_t n = mpk_link_readable(u->link);

	mpk_link_get_stats(u->link, &st);
	return st.rx_bytes + (n > 0 ? (uint64_t)n : 0);
}

void conn_reset_peer_after_write(struct ufd *u)
{
	reset_peer(u);
	conn_reset(u, EPIPE);
}

int conn_late_data(struct ufd *u)
{
	if (!u->link || !u->rd_shut || !__atomic_load_n(&u->wr_shut, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&u->reset, __ATOMIC_ACQUIRE) || conn_rx_total(u) <= u->shut_arrived)
		return 0;
	reset_peer(u);
	conn_reset(u, ECONNRESET);
	return 1;
}

void conn_hangup(struct ufd *u)
{
	int r = u->link ? mpk_link_hangup_check(u->link) : 0;

	if (r == -EPROTO) {
		conn_break(u, "bytes arrived on its TCP connection, past the link (written by "
			      "io_uring, a raw system call, or a program without the preload)");
	} else if (r == -ECONNRESET && !__atomic_load_n(&u->reset, __ATOMIC_ACQUIRE)) {
		/* No FIN before it: reads say ECONNRESET, not the end. */
		__atomic_store_n(&u->rst_first, 1, __ATOMIC_RELEASE);
		conn_reset(u, ECONNRESET);
	} else if (r == -EPIPE && !__atomic_load_n(&u->reset, __ATOMIC_ACQUIRE) &&
		   mpk_link_tx_unread(u->link)) {
		/* The peer's socket went with bytes of ours it never read
		 * (written after it closed): TCP's peer answers those with a
		 * reset, which finds us past its FIN. */
		conn_reset(u, EPIPE);
	}
}

void conn_demote(struct ufd *u)
{
	int high = fdtab_high(), last;

	for (int fd = 0; fd < high; fd++) {
		if (fdtab_peek(fd) != &u->obj)
			continue;
		if (conn_hooks.plain)
			conn_hooks.plain(fd);
		if (fdtab_unhook(fd, &last) == &u->obj)
			ufd_put(u);
	}
	stats_count(&totals.fallbacks);
}

void conn_last_close(struct ufd *u)
{
	char buf[256];

	if (u->link && conn_claim_report(u))
		stats_add(u->link, u->sock);
	if (!u->link || u->sock < 0 || (u->state != ST_ACTIVE && u->state != ST_VERIFY))
		return;
	/* Another process may hold the socket (a fork since it was made, or
	 * it was passed): its bytes and its fate are that process's too. */
	if (conn_maybe_shared(u))
		return;
	/* Bytes on the socket (a preamble not yet verified) are not the
	 * program's: they must not turn our FIN into an RST (conn_destroy
	 * decides that, by the ring). */
	while (real.recv(u->sock, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}
