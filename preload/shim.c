/* SPDX-License-Identifier: MIT */
/*
 * libmpklink.so: upgrades the application's TCP connections to configured
 * loopback endpoints to shared-memory links, and leaves everything else to
 * libc. The application's fd stays a real TCP socket (in epoll sets,
 * dup'ed, inherited by children); only its data path and readiness change.
 * The socket carries the upgrade preamble and, afterwards, doorbell bytes.
 *
 * Close is the kernel's: the last close of the socket, in whichever
 * process, sends FIN; the peer's doorbell hangs up and it reads the rest of
 * the ring, then 0. That keeps dup, fork and the daemonize pattern right
 * without any bookkeeping across processes.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mpklink/ctl.h"
#include "shim.h"

#ifndef TCP_INQ
#define TCP_INQ 36
#define TCP_CM_INQ TCP_INQ
#endif

#define EXPORT __attribute__((visibility("default")))
#define FD_MAX 65536
/* Our epoll_data for an upgraded fd: non-canonical, so never a pointer of
 * the application's, and never a small integer. */
#define ETAG UINT64_C(0xfeed4d504b000000)
#define ETAG_MASK UINT64_C(0xffffffffff000000)
/* A link's doorbell eventfd in a set: nothing to do when it fires but look
 * at the rings, which every epoll_wait does anyway. */
#define BTAG UINT64_C(0xfeed4d504c000000)

struct real_calls mpk__real;

enum ufd_kind { K_LISTEN = 1, K_CONN };
enum ufd_state { ST_CONNECTING = 1, ST_VERIFY, ST_ACTIVE, ST_BROKEN };

struct ufd {
	enum ufd_kind kind;
	int refs; /* fd numbers of this process naming it (dup) */
	unsigned port;  /* the server's (configured) port */
	unsigned cport; /* K_CONN: the client's port */

	/* K_CONN */
	struct mpk_link *link;
	int bell[2]; /* our eventfds: [0] we wait on, [1] we ring; -1: none */
	int state;
	int conn_err; /* the connect's failure, for SO_ERROR */
	uint8_t pre[MPK_PREAMBLE_BYTES];
	size_t pre_off;
	int nonblock;
	int rd_shut;
	int inq;
	unsigned wblock; /* writes that returned EAGAIN: an OUT edge is owed */
	int wblocked;
	int reported; /* its stats are in the totals (exit report) */
	unsigned fork_gen; /* fork_gen when this process last synced it */
	pthread_mutex_t rlock, wlock, slock;
};

struct ereg {
	int fd;
	struct ufd *u;
	uint32_t events;
	epoll_data_t data;
	uint64_t rxg, txg;
	unsigned wblock_seen;
	uint32_t last;
	int fresh, disabled;
};

struct eset {
	pthread_mutex_t mu;
	int epfd;
	struct ereg *v;
	size_t n, cap;
	struct eset *next; /* the list of live sets, under table_lock */
	int hot;            /* the rings had news at the last look: spin first */
	uint64_t kernel_ns; /* when the kernel's events were last harvested */
};

static struct {
	int enabled;
	uint16_t ports[MPK_MAX_ENDPOINTS];
	int nports;
	char ctl_path[108];
	int deny;
	int log_level;
	char stats[256];
	uint64_t spin_ns;     /* MPKLINK_SPIN_US */
	uint64_t spin_max_ns; /* MPKLINK_SPIN_MAX_US, >= spin_ns */
	int spin_grow;        /* spins may grow: max > base, and 2+ CPUs */
	int integrity;    /* MPKLINK_INTEGRITY=mac */
} cfg;

static struct ufd *fdtab[FD_MAX];
/* Our own fds (links' doorbells) among the application's: it must not
 * see them take the numbers it expects, nor close them under us. */
static uint8_t internal_fd[FD_MAX];
static int internal_base;
static struct eset *esets[FD_MAX];
static struct eset *eset_list;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Bumped on both sides of every fork: whichever process uses a link next
 * reloads its indices first (the other may have moved them since). Use one
 * after the other is supported; at the same time, not (as with a TCP
 * stream written from two processes, the bytes would interleave). */
static unsigned fork_gen;

/*
 * Connections to the launcher, one call in flight on each. A CONNECT waits
 * on the server's launcher (up to its rendezvous timeout), so calls from
 * other threads take other connections: one connect to a stalled server
 * must not hold up the process's other connects and accepts. Connection 0
 * carries only LISTEN and UNLISTEN, which the launcher keys to the
 * connection (a port is released when the connection that listened goes);
 * none is closed but on error or in a forked child. fd -1: not open.
 */
#define CTL_CONNS 16
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ctl_idle = PTHREAD_COND_INITIALIZER;
static struct {
	int fd, busy;
} ctl_conn[CTL_CONNS];
static int ctl_nconn; /* entries in use, open or not */
static pid_t ctl_pid;

static struct {
	uint64_t links, fallbacks, tx_bytes, rx_bytes, tx_calls, rx_calls, bells_sent;
	uint64_t mac_links; /* links whose frames carry MACs */
	uint64_t tcp_bytes; /* the kernel's count of what crossed the sockets */
} totals;

/* ------------------------------------------------------------ logging */

__attribute__((format(printf, 2, 3))) static void slog(int level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char buf[512];
	va_list ap;
	int n;

	if (level > cfg.log_level)
		return;
	n = snprintf(buf, sizeof(buf), "mpklink[%d]: %s: ", (int)getpid(), names[level]);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (mpk__real.write)
		mpk__real.write(2, buf, (size_t)n);
}

/* ------------------------------------------------------------ init */

#define RESOLVE(name) mpk__real.name = (__typeof__(mpk__real.name))dlsym(RTLD_NEXT, #name)

static void stats_report(void);

static void resolve(void)
{
	RESOLVE(socket); RESOLVE(connect); RESOLVE(bind); RESOLVE(listen);
	RESOLVE(accept); RESOLVE(accept4); RESOLVE(close); RESOLVE(shutdown);
	RESOLVE(dup); RESOLVE(dup2); RESOLVE(dup3); RESOLVE(fcntl); RESOLVE(ioctl);
	RESOLVE(getsockopt); RESOLVE(setsockopt); RESOLVE(read); RESOLVE(readv);
	RESOLVE(write); RESOLVE(writev); RESOLVE(recv); RESOLVE(recvfrom);
	RESOLVE(recvmsg); RESOLVE(send); RESOLVE(sendto); RESOLVE(sendmsg);
	RESOLVE(epoll_create); RESOLVE(epoll_create1); RESOLVE(epoll_ctl);
	RESOLVE(epoll_wait); RESOLVE(epoll_pwait); RESOLVE(poll); RESOLVE(ppoll);
	RESOLVE(select); RESOLVE(pselect); RESOLVE(syscall); RESOLVE(fork);
}

/* A fork while another thread holds ctl_lock (briefly: never across a
 * call) must not leave the child a lock nobody will release. The child
 * drops the parent's connections on its first call (ctl_take). */
static void ctl_prefork(void)
{
	pthread_mutex_lock(&ctl_lock);
}

static void ctl_postfork_parent(void)
{
	pthread_mutex_unlock(&ctl_lock);
}

static void ctl_postfork_child(void)
{
	/* Its waiters were threads of the parent. */
	pthread_cond_init(&ctl_idle, NULL);
	pthread_mutex_unlock(&ctl_lock);
}

static void atfork_bump(void)
{
	__atomic_fetch_add(&fork_gen, 1, __ATOMIC_RELAXED);
}

/* A microseconds setting in ns. The launcher refused anything but
 * 0..MPK_SPIN_US_MAX; alone, a bad value leaves the default. */
static uint64_t env_us_ns(const char *name, unsigned long dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return (uint64_t)dflt * 1000;
	v = strtoul(s, &end, 10);
	return (uint64_t)(!*end && v <= MPK_SPIN_US_MAX ? v : dflt) * 1000;
}

static void shim_init(void)
{
	const char *s, *bad;
	int n;

	resolve();
	{
		struct rlimit rl;

		/* Half-way up the soft limit: above what most programs reach,
		 * leaving them the whole low range in order. */
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= 128)
			internal_base = rl.rlim_cur / 2 > 32768 ? 32768 : (int)(rl.rlim_cur / 2);
	}
	/* The launcher refused a bad value; a program run without it gets
	 * the default. */
	cfg.log_level = mpk_log_level_parse(getenv("MPKLINK_LOG"));
	if (cfg.log_level < 0)
		cfg.log_level = 1;
	s = getenv("MPKLINK_STATS");
	if (s && *s && strcmp(s, "0"))
		snprintf(cfg.stats, sizeof(cfg.stats), "%s", s);
	s = getenv("MPKLINK_FALLBACK");
	cfg.deny = s && !strcmp(s, "deny");
	s = getenv("MPKLINK_INTEGRITY");
	cfg.integrity = s && !strcmp(s, "mac");
	cfg.spin_ns = env_us_ns("MPKLINK_SPIN_US", MPK_SPIN_US_DEFAULT);
	cfg.spin_max_ns = env_us_ns("MPKLINK_SPIN_MAX_US", MPK_SPIN_MAX_US_DEFAULT);
	if (cfg.spin_max_ns < cfg.spin_ns)
		cfg.spin_max_ns = cfg.spin_ns;
	/* With one CPU the peer answers only once we stop spinning: every wait
	 * would look like a spin a little too short. (The machine's CPUs, not
	 * our affinity: pinned to one, with the peer on another, is where
	 * spinning pays best.) */
	cfg.spin_grow = cfg.spin_max_ns > cfg.spin_ns && sysconf(_SC_NPROCESSORS_ONLN) >= 2;
	s = getenv("MPKLINK_CTL");
	if (!s || !*s || strlen(s) >= sizeof(cfg.ctl_path))
		return; /* not under mpklink-run: pure pass-through */
	strcpy(cfg.ctl_path, s);
	n = mpk_endpoints_parse(getenv("MPKLINK_ENDPOINTS"), cfg.ports, MPK_MAX_ENDPOINTS, &bad);
	if (n < 0) {
		slog(0, "MPKLINK_ENDPOINTS is malformed at \"%s\"; nothing is upgraded", bad);
		return;
	}
	cfg.nports = n;
	cfg.enabled = n > 0;
	if (cfg.stats[0])
		atexit(stats_report);
	pthread_atfork(NULL, atfork_bump, atfork_bump);
	pthread_atfork(ctl_prefork, ctl_postfork_parent, ctl_postfork_child);
}

static inline void init(void)
{
	pthread_once(&init_once, shim_init);
}


/* ------------------------------------------------------------ fd table */

static inline struct ufd *ufd_get(int fd)
{
	if ((unsigned)fd >= FD_MAX)
		return NULL;
	return __atomic_load_n(&fdtab[fd], __ATOMIC_ACQUIRE);
}

static inline struct ufd *conn_get(int fd)
{
	struct ufd *u = ufd_get(fd);

	return u && u->kind == K_CONN ? u : NULL;
}

static void stats_add(struct mpk_link *l)
{
	struct mpk_link_stats st;

	mpk_link_get_stats(l, &st);
	__atomic_fetch_add(&totals.tx_bytes, st.tx_bytes, __ATOMIC_RELAXED);
	__atomic_fetch_add(&totals.rx_bytes, st.rx_bytes, __ATOMIC_RELAXED);
	__atomic_fetch_add(&totals.tx_calls, st.tx_calls, __ATOMIC_RELAXED);
	__atomic_fetch_add(&totals.rx_calls, st.rx_calls, __ATOMIC_RELAXED);
	__atomic_fetch_add(&totals.bells_sent, st.bells_sent, __ATOMIC_RELAXED);
}

/* glibc's struct tcp_info ends at tcpi_total_retrans; the kernel's goes
 * on (the ABI only grows at the end). */
struct tcp_info_bytes {
	struct tcp_info base;
	uint64_t pacing_rate, max_pacing_rate;
	uint64_t bytes_acked, bytes_received;
};
_Static_assert(sizeof(struct tcp_info) == 104, "glibc tcp_info layout");

/* What the kernel counted on an upgraded connection's socket (what
 * `ss -ti` shows): the preamble and doorbells, if all went through links. */
static void tcp_account(int fd)
{
	struct tcp_info_bytes ti;
	socklen_t l = sizeof(ti);

	if (mpk__real.getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && l >= sizeof(ti))
		__atomic_fetch_add(&totals.tcp_bytes, ti.bytes_acked + ti.bytes_received,
				   __ATOMIC_RELAXED);
}

static void ctl_unlisten(unsigned port);
static void ctl_closed(unsigned port, unsigned cport);

static inline int is_internal(int fd)
{
	return (unsigned)fd < FD_MAX && __atomic_load_n(&internal_fd[fd], __ATOMIC_RELAXED);
}

/* Takes fd (ours, close-on-exec) out of the application's way: up high,
 * where it does not take the numbers the application gets next. */
static int internal_take(int fd)
{
	int hi = internal_base ? mpk__real.fcntl(fd, F_DUPFD_CLOEXEC, internal_base) : -1;

	if (hi >= 0) {
		mpk__real.close(fd);
		fd = hi;
	}
	if ((unsigned)fd < FD_MAX)
		__atomic_store_n(&internal_fd[fd], 1, __ATOMIC_RELAXED);
	return fd;
}

static void internal_close(int fd)
{
	if (fd < 0)
		return;
	if ((unsigned)fd < FD_MAX)
		__atomic_store_n(&internal_fd[fd], 0, __ATOMIC_RELAXED);
	mpk__real.close(fd);
}

/* 1 for the one caller that adds u's counts to the totals: the exit report
 * and a close in another thread race for it (a link counted twice showed
 * twice the preamble's TCP bytes, 1 run in 180). */
static int claim_report(struct ufd *u)
{
	return !__atomic_exchange_n(&u->reported, 1, __ATOMIC_ACQ_REL);
}

static void ufd_free(struct ufd *u)
{
	if (u->kind == K_LISTEN) {
		ctl_unlisten(u->port);
	} else if (u->link) {
		if (u->cport)
			ctl_closed(u->port, u->cport);
		if (claim_report(u))
			stats_add(u->link);
		mpk_link_detach(u->link);
	}
	if (u->kind == K_CONN) {
		internal_close(u->bell[0]);
		internal_close(u->bell[1]);
	}
	pthread_mutex_destroy(&u->rlock);
	pthread_mutex_destroy(&u->wlock);
	pthread_mutex_destroy(&u->slock);
	free(u);
}

static void eset_forget_fd(int fd);
static void eset_drop_fd(int fd, int restore);
static void eset_free(int epfd);

/* Unhooks fd from the table; returns what it named if that was the last
 * name for it (the caller frees after the real close), else NULL. */
static struct ufd *fd_unhook(int fd)
{
	struct ufd *u;

	if ((unsigned)fd >= FD_MAX)
		return NULL;
	pthread_mutex_lock(&table_lock);
	u = fdtab[fd];
	__atomic_store_n(&fdtab[fd], NULL, __ATOMIC_RELEASE);
	if (u && --u->refs > 0)
		u = NULL;
	pthread_mutex_unlock(&table_lock);
	eset_forget_fd(fd);
	return u;
}

/* A new fd number from the kernel: whatever we knew about it is stale
 * (closed behind our back, e.g. by a raw system call). */
static void fd_fresh(int fd)
{
	struct ufd *u;

	if (fd < 0 || !cfg.enabled)
		return;
	if (ufd_get(fd) || ((unsigned)fd < FD_MAX && esets[fd])) {
		u = fd_unhook(fd);
		if (u)
			ufd_free(u);
		eset_free(fd);
	}
}

static void fd_hook(int fd, struct ufd *u)
{
	pthread_mutex_lock(&table_lock);
	u->refs++;
	__atomic_store_n(&fdtab[fd], u, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&table_lock);
}

static struct ufd *ufd_new(enum ufd_kind kind)
{
	struct ufd *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->kind = kind;
	u->bell[0] = u->bell[1] = -1;
	pthread_mutex_init(&u->rlock, NULL);
	pthread_mutex_init(&u->wlock, NULL);
	pthread_mutex_init(&u->slock, NULL);
	return u;
}

/* ------------------------------------------------------------ control */

/* Marks an idle connection busy and returns its index, opening it if it
 * is not open; or -errno. Waits while all are busy. */
static int ctl_take(int listen_conn)
{
	int i, fd;

	pthread_mutex_lock(&ctl_lock);
	if (ctl_pid != getpid()) {
		/* A forked child: the parent's connections carry its calls. */
		for (i = 0; i < ctl_nconn; i++)
			if (ctl_conn[i].fd >= 0)
				internal_close(ctl_conn[i].fd);
		ctl_nconn = 0;
		ctl_pid = getpid();
	}
	if (ctl_nconn == 0)
		ctl_conn[ctl_nconn++] = (__typeof__(ctl_conn[0])){-1, 0};
	for (;;) {
		if (listen_conn) {
			i = ctl_conn[0].busy ? -1 : 0;
		} else {
			for (i = 1; i < ctl_nconn && ctl_conn[i].busy; i++)
				;
			if (i == ctl_nconn && i < CTL_CONNS)
				ctl_conn[ctl_nconn++] = (__typeof__(ctl_conn[0])){-1, 0};
			else if (i == ctl_nconn)
				i = -1;
		}
		if (i >= 0)
			break;
		pthread_cond_wait(&ctl_idle, &ctl_lock);
	}
	ctl_conn[i].busy = 1;
	if (ctl_conn[i].fd < 0) {
		fd = mpk_ctl_connect(cfg.ctl_path);
		if (fd < 0) {
			ctl_conn[i].busy = 0;
			pthread_cond_broadcast(&ctl_idle);
			pthread_mutex_unlock(&ctl_lock);
			slog(1, "cannot reach the launcher at %s: %s", cfg.ctl_path, strerror(-fd));
			return fd;
		}
		ctl_conn[i].fd = internal_take(fd);
	}
	pthread_mutex_unlock(&ctl_lock);
	return i;
}

/* broken: the call failed, the connection's state is unknown: close it. */
static void ctl_give(int i, int broken)
{
	pthread_mutex_lock(&ctl_lock);
	if (broken) {
		internal_close(ctl_conn[i].fd);
		ctl_conn[i].fd = -1;
	}
	ctl_conn[i].busy = 0;
	pthread_cond_broadcast(&ctl_idle);
	pthread_mutex_unlock(&ctl_lock);
}

/* One request to our launcher, on a connection of this process's (a child
 * after fork opens its own) that nothing else uses meanwhile, so replies
 * never cross. */
static int ctl_call(uint32_t type, unsigned port, unsigned peer_port, struct mpk_ctl_rep *rep,
		    int fds[MPK_LINK_NFDS])
{
	struct mpk_ctl_req req = {.magic = MPK_CTL_MAGIC, .version = MPK_CTL_VERSION,
				  .type = type, .port = port, .peer_port = peer_port,
				  .pid = (uint32_t)getpid()};
	int r, i;

	for (int k = 0; k < MPK_LINK_NFDS; k++)
		fds[k] = -1;
	i = ctl_take(type == MPK_CTL_LISTEN || type == MPK_CTL_UNLISTEN);
	if (i < 0)
		return i;
	/* Ours alone while busy: the fd is read without the lock. */
	r = mpk_ctl_call(ctl_conn[i].fd, &req, rep, fds);
	if (r == 0 && rep->status == 0 && fds[0] < 0 &&
	    (type == MPK_CTL_CONNECT || type == MPK_CTL_ACCEPT))
		r = -EPROTO;
	ctl_give(i, r < 0);
	return r < 0 ? r : rep->status;
}

static void ctl_unlisten(unsigned port)
{
	struct mpk_ctl_rep rep;
	int fds[MPK_LINK_NFDS];

	ctl_call(MPK_CTL_UNLISTEN, port, 0, &rep, fds);
}

/* The launcher forgets the link: no later program image can claim it. */
static void ctl_closed(unsigned port, unsigned cport)
{
	struct mpk_ctl_rep rep;
	int fds[MPK_LINK_NFDS];

	ctl_call(MPK_CTL_CLOSE, port, cport, &rep, fds);
}

/* ------------------------------------------------------------ addresses */

static int configured(unsigned port)
{
	for (int i = 0; i < cfg.nports; i++)
		if (cfg.ports[i] == port)
			return 1;
	return 0;
}

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

	if (mpk__real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM)
		return 0;
	l = sizeof(proto);
	return mpk__real.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0 &&
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

static int rendezvous_exists(unsigned port)
{
	char path[160];
	struct stat st;
	const char *dir = getenv("MPKLINK_RUNDIR");

	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/tcp-%u.sock", dir, port);
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* ------------------------------------------------------------ upgrade */

static int fd_nonblocking(int fd)
{
	int fl = mpk__real.fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

/*
 * The link the launcher handed over (memfd and doorbells: closed or kept
 * here, whatever happens) attached for socket fd, connection port <- cport,
 * starting in state; token, when given, makes the preamble to send or
 * expect.
 */
static struct ufd *conn_new(int fd, int *lfds, int side, unsigned port, unsigned cport,
			    int state, const uint8_t *token, struct mpk_ctl_rep *rep)
{
	struct ufd *u = ufd_new(K_CONN);
	int r = u ? mpk_link_attach(lfds[0], side, &u->link) : -ENOMEM;

	mpk__real.close(lfds[0]);
	if (r == 0 && (r = mpk_link_bell_check(lfds[1 + side])) == 0)
		r = mpk_link_bell_check(lfds[2 - side]);
	/* A MAC link needs the handshake's key; one asked for MACs needs a
	 * MAC link (the server's launcher decides how links are made). */
	if (r == 0 && mpk_link_mac_required(u->link)) {
		r = rep->flags & MPK_REP_MAC ? mpk_link_set_mac(u->link, rep->mac_key) : -EPROTO;
		if (r == 0)
			__atomic_fetch_add(&totals.mac_links, 1, __ATOMIC_RELAXED);
	}
	else if (r == 0 && cfg.integrity) {
		slog(0, "port %u: MPKLINK_INTEGRITY=mac, but the server's launcher makes links "
			"without MACs; no link", port);
		r = -EPROTO;
	}
	explicit_bzero(rep->mac_key, sizeof(rep->mac_key));
	if (r < 0) {
		slog(1, "port %u: cannot attach the link: %s", port, strerror(-r));
		mpk__real.close(lfds[1]);
		mpk__real.close(lfds[2]);
		if (u)
			ufd_free(u);
		return NULL;
	}
	u->bell[0] = internal_take(lfds[1 + side]);
	u->bell[1] = internal_take(lfds[2 - side]);
	/* The socket stays, for the peer's hang-up: its close or death. */
	mpk_link_set_doorbell(u->link, fd, mpk__real.send, mpk__real.recv);
	mpk_link_set_bells(u->link, u->bell[0], u->bell[1]);
	u->fork_gen = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
	u->port = port;
	u->cport = cport;
	u->state = state;
	u->nonblock = fd_nonblocking(fd);
	if (token) {
		memcpy(u->pre, MPK_PREAMBLE_MAGIC, 8);
		memcpy(u->pre + 8, token, MPK_TOKEN_BYTES);
	}
	__atomic_fetch_add(&totals.links, 1, __ATOMIC_RELAXED);
	return u;
}

/* Binds an unbound client socket to an ephemeral loopback port of the
 * destination's family: the port names the connection to the launchers. */
static unsigned bind_ephemeral(int fd, const struct sockaddr *dst)
{
	unsigned p = sock_port(fd, 0);
	struct sockaddr_storage ss = {0};
	socklen_t l;

	if (p)
		return p;
	if (dst->sa_family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = ((const struct sockaddr_in6 *)dst)->sin6_addr;
		l = sizeof(*a);
	}
	if (mpk__real.bind(fd, (struct sockaddr *)&ss, l) < 0)
		return 0;
	return sock_port(fd, 0);
}

/* Pushes the client's preamble. 0 when done, -EAGAIN while the connect
 * is in flight, or the connect's error. */
static int send_preamble(int fd, struct ufd *u)
{
	while (u->pre_off < sizeof(u->pre)) {
		ssize_t r = mpk__real.send(fd, u->pre + u->pre_off, sizeof(u->pre) - u->pre_off,
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
 * 1 plain client, -EAGAIN incomplete, 0 with state unchanged at EOF. */
static int check_preamble(int fd, struct ufd *u)
{
	uint8_t buf[MPK_PREAMBLE_BYTES];
	unsigned diff = 0;
	ssize_t r;

	do
		r = mpk__real.recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
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
	mpk__real.recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	return 0;
}

static void reset_connection(int fd)
{
	struct linger lg = {1, 0};

	mpk__real.setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	mpk__real.shutdown(fd, SHUT_RDWR);
}

/*
 * Moves a connection through its setup states. Returns 0 when it is
 * active, -EAGAIN while setup is in flight, 1 when it turned out plain
 * (the caller passes through), or -errno.
 */
static int settle(int fd, struct ufd *u)
{
	unsigned g = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
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
		r = send_preamble(fd, u);
		if (r == 0) {
			__atomic_store_n(&u->state, ST_ACTIVE, __ATOMIC_RELEASE);
		} else if (r != -EAGAIN) {
			u->conn_err = -r;
			u->state = ST_BROKEN;
		}
		break;
	case ST_VERIFY:
		r = check_preamble(fd, u);
		if (r == 0) {
			__atomic_store_n(&u->state, ST_ACTIVE, __ATOMIC_RELEASE);
		} else if (r == -EBADMSG) {
			slog(1, "port %u: a client sent a wrong link token; connection reset",
			     u->port);
			reset_connection(fd);
			u->state = ST_BROKEN;
			r = -ECONNRESET;
		} else if (r == -EPIPE) {
			r = -EPIPE;
		}
		break;
	default:
		r = u->conn_err ? -u->conn_err : -ECONNRESET;
	}
	pthread_mutex_unlock(&u->slock);
	return r;
}

/* The server found a plain client behind a link it expected: forget the
 * link, the fd goes back to pure pass-through. */
static void demote(int fd)
{
	struct ufd *u;

	eset_drop_fd(fd, 1);
	u = fd_unhook(fd);

	__atomic_fetch_add(&totals.fallbacks, 1, __ATOMIC_RELAXED);
	if (u)
		ufd_free(u);
}

/* ------------------------------------------------------------ data */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Whether this thread spins on its next wait, and for how long. A spin is
 * the thread's whole budget, or none: after k spins in a row that found
 * nothing, only every 2^k-th wait spins (k <= SPIN_BACKOFF_MAX), so on an
 * oversubscribed machine, where the peer may need our core to answer, we
 * soon stop taking it; a spin that finds its event spins every wait again.
 * Shorter spins instead (the budget halved per miss) fail in a cascade when
 * the peer takes between half the budget and the budget to answer: the echo
 * client with 64 KiB takes ~30 us, and its server sat at 3 us spins, asleep
 * on half its waits (64 KiB round trip 11 -> 19 us).
 *
 * The budget itself adapts between MPKLINK_SPIN_US and MPKLINK_SPIN_MAX_US
 * as the guest-halt-polling governor (cpuidle-haltpoll) and KVM's
 * halt_poll_ns do: a spin that ran out on a wait the link ended within the
 * maximum doubles it (it was only too short, and a wake-up costs more than
 * the spin would have: 100 us and more here, where an idle vCPU halts); a
 * wait longer than the maximum halves it. A gRPC call of 1 MiB is a chain
 * of 150-250 us steps on each side: 50 us spins slept on every one of them
 * (C core echo 510-560 -> 365-410 us). Such a spin still counts as a miss
 * for the backoff above: else a thread pool's poller (gRPC C++'s sync
 * server) spins on every wait and takes a core its own workers or the
 * peer need (C++ 1 MiB echo 384-402 us, against 345-352 without growth).
 */
#define SPIN_BACKOFF_MAX 4u
static __thread unsigned tl_spin_misses, tl_spin_waits;
static __thread uint64_t tl_spin_ns; /* 0: cfg.spin_ns */

/*
 * The thread that last moved bytes on a link (its tl_spin_ns's address),
 * and when that last changed. Spins grow past MPKLINK_SPIN_US only in that
 * thread, and only once it has done all of the process's link I/O for
 * IO_SETTLE_NS. A thread pool (gRPC C++'s sync server) hands each request to
 * another thread, and a long spin in its poller takes a CPU the thread
 * finishing the last call, or the peer, needs: C++ 64 B echo p99 565-633 us
 * with the server's spins grown, 136-202 without; 1 MiB p50 +30-60 us.
 * A single-threaded server moves its I/O between threads only at start.
 */
static void *io_thread;
static uint64_t io_moved_ns;
#define IO_SETTLE_NS 10000000u

static void note_io_thread(void)
{
	/* Written only on a change: one thread doing all the I/O keeps the
	 * line in its cache. */
	if (__atomic_load_n(&io_thread, __ATOMIC_RELAXED) != &tl_spin_ns) {
		__atomic_store_n(&io_thread, &tl_spin_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&io_moved_ns, mono_ns(), __ATOMIC_RELAXED);
	}
}

static uint64_t spin_budget(uint64_t now)
{
	unsigned k = tl_spin_misses < SPIN_BACKOFF_MAX ? tl_spin_misses : SPIN_BACKOFF_MAX;

	if (!tl_spin_ns)
		tl_spin_ns = cfg.spin_ns;
	if ((++tl_spin_waits & ((1u << k) - 1)) != 0)
		return 0;
	if (tl_spin_ns > cfg.spin_ns &&
	    (__atomic_load_n(&io_thread, __ATOMIC_RELAXED) != &tl_spin_ns ||
	     /* Signed: another thread may have stamped a move after our now. */
	     (int64_t)(now - __atomic_load_n(&io_moved_ns, __ATOMIC_RELAXED)) < IO_SETTLE_NS))
		return cfg.spin_ns;
	return tl_spin_ns;
}

static void spin_result(int found)
{
	if (found)
		tl_spin_misses = 0;
	else if (tl_spin_misses < SPIN_BACKOFF_MAX)
		tl_spin_misses++;
}

/* While spinning, or while the rings keep having news, the kernel's own
 * events (listeners, timers, plain sockets) are looked at this often: they
 * wait at most this long, and a busy link costs no system call. */
#define KERNEL_LOOK_NS 20000u

/* One busy-poll's clock (wait_bell, eset_spin, poll_spin): its budget,
 * within the caller's timeout, and the next look at the kernel's own fds
 * (which wait_bell, watching one link, has no use for). */
struct spin_clock {
	uint64_t start, now, budget, look;
	int over; /* ran out: the wait's end (spin_woke) adapts the budget */
	unsigned turns;
};

#define SPIN_CLOCK_EVERY 8u

enum { SPIN_ON, SPIN_LOOK, SPIN_OVER };

/* 0: this wait does not spin (spin_budget). */
static int spin_begin(struct spin_clock *c, int timeout)
{
	c->over = 0;
	c->start = c->now = mono_ns();
	c->budget = spin_budget(c->start);
	if (!c->budget)
		return 0;
	if (timeout > 0 && (uint64_t)timeout * 1000000u < c->budget)
		c->budget = (uint64_t)timeout * 1000000u;
	c->look = c->start + KERNEL_LOOK_NS;
	c->turns = 0;
	return 1;
}

/* After a turn that found nothing: SPIN_ON (paused, go on), SPIN_LOOK (look
 * at the kernel's fds now, then go on) or SPIN_OVER (a miss, counted). */
static int spin_next(struct spin_clock *c)
{
	/* The clock costs more than a look at a ring (26 ns against a few
	 * here): read it every few turns only. */
	if (++c->turns % SPIN_CLOCK_EVERY) {
		__builtin_ia32_pause();
		return SPIN_ON;
	}
	c->now = mono_ns();
	if (c->now - c->start >= c->budget) {
		spin_result(0);
		c->over = 1;
		return SPIN_OVER;
	}
	if (c->now >= c->look) {
		c->look = c->now + KERNEL_LOOK_NS;
		return SPIN_LOOK;
	}
	__builtin_ia32_pause();
	return SPIN_ON;
}

/* The link had news for a wait whose spin ran out (c zeroed, or after
 * spin_begin): had the spin lasted until now it would have caught it. */
static void spin_woke(struct spin_clock *c)
{
	uint64_t waited;

	if (!c->over)
		return;
	c->over = 0;
	waited = mono_ns() - c->start;
	if (waited <= cfg.spin_max_ns && cfg.spin_grow) {
		tl_spin_ns = tl_spin_ns * 2 < cfg.spin_max_ns ? tl_spin_ns * 2 : cfg.spin_max_ns;
	} else if (waited > cfg.spin_max_ns && tl_spin_ns > cfg.spin_ns) {
		tl_spin_ns = tl_spin_ns / 2 > cfg.spin_ns ? tl_spin_ns / 2 : cfg.spin_ns;
	}
}

/* Blocks until the link (or the setup) may have changed: first by
 * watching the ring for up to MPKLINK_SPIN_US (a reply is often a few
 * microseconds away, a wake-up costs tens), then on the doorbell. */
static int wait_bell(int fd, struct ufd *u, unsigned want)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = u->bell[0], .events = POLLIN}};
	struct spin_clock c = {0};
	int r;

	if (u->state == ST_ACTIVE && cfg.spin_ns && spin_begin(&c, -1)) {
		do {
			/* A reader leaves the TX ring alone (mpk_link_poll_rx). */
			unsigned m = want & MPK_LINK_OUT ? mpk_link_poll(u->link)
							 : mpk_link_poll_rx(u->link, NULL);

			if (m & (want | MPK_LINK_HUP | MPK_LINK_ERR)) {
				spin_result(1);
				return 0;
			}
		} while (spin_next(&c) != SPIN_OVER);
	}
	if (u->state == ST_ACTIVE &&
	    (mpk_link_arm(u->link, want | MPK_ARM_NODRAIN) & (want | MPK_LINK_HUP | MPK_LINK_ERR))) {
		spin_woke(&c);
		return 0;
	}
	if (u->state == ST_CONNECTING)
		p[0].events = POLLOUT;
	/* The socket says the peer hung up; the eventfd, that it rang. */
	r = mpk__real.poll(p, u->state == ST_ACTIVE && u->bell[0] >= 0 ? 2 : 1, -1);
	if (r < 0)
		return -errno;
	/* Each read only when the kernel says something is there. */
	if (u->state == ST_ACTIVE && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
		mpk_link_hangup_check(u->link);
	if (u->state == ST_ACTIVE && p[1].revents) {
		mpk_link_drain(u->link);
		spin_woke(&c);
	}
	return 0;
}

static ssize_t set_errno(ssize_t r)
{
	if (r >= 0)
		return r;
	errno = (int)-r;
	return -1;
}

#define IOV_REST 64

/* What is left of iov after its first `done` bytes, into rest (which may be
 * iov itself: entries only move down). Returns the count; 0 when nothing
 * is left. At most IOV_REST entries are kept: a short read or write. */
static int iov_advance(const struct iovec *iov, int cnt, size_t done, struct iovec *rest)
{
	int n = 0;

	for (int i = 0; i < cnt && n < IOV_REST; i++) {
		if (done >= iov[i].iov_len) {
			done -= iov[i].iov_len;
			continue;
		}
		rest[n].iov_base = (char *)iov[i].iov_base + done;
		rest[n++].iov_len = iov[i].iov_len - done;
		done = 0;
	}
	return n;
}

static ssize_t conn_readv(int fd, struct ufd *u, const struct iovec *iov, int iovcnt, int flags)
{
	struct iovec rest[IOV_REST];
	ssize_t r, total = 0;
	int nb = u->nonblock || (flags & MSG_DONTWAIT);
	unsigned lf = (flags & MSG_PEEK) ? MPK_READ_PEEK : 0;

	pthread_mutex_lock(&u->rlock);
	for (;;) {
		r = settle(fd, u);
		if (r == 0) {
			if (u->rd_shut) {
				r = 0;
				break;
			}
			r = mpk_link_readv(u->link, iov, iovcnt, lf);
			if (r > 0)
				note_io_thread();
		} else if (r == -EPIPE) {
			r = 0; /* EOF before setup finished */
		}
		if (r > 0 && (flags & MSG_WAITALL) && !(flags & MSG_PEEK) && !nb) {
			/* Fill the rest before returning. */
			total += r;
			iovcnt = iov_advance(iov, iovcnt, (size_t)r, rest);
			iov = rest;
			if (iovcnt)
				continue;
			r = total;
			break;
		}
		if (r == -EAGAIN && !nb) {
			int w = wait_bell(fd, u, MPK_LINK_IN);
			if (w < 0) {
				r = total ? total : w;
				break;
			}
			continue;
		}
		if (total && r <= 0)
			r = total;
		break;
	}
	pthread_mutex_unlock(&u->rlock);
	if (cfg.log_level >= 3)
		slog(3, "fd %d: read -> %zd", fd, r);
	if (r == -ECONNRESET && u->state == ST_BROKEN && u->conn_err)
		r = -u->conn_err;
	return r;
}

/* Wakes a poller of ours sleeping on this link's doorbell. */
static void self_ring(struct ufd *u)
{
	if (u->bell[0] >= 0)
		eventfd_write(u->bell[0], 1);
}

static ssize_t conn_writev(int fd, struct ufd *u, const struct iovec *iov, int iovcnt, int flags)
{
	ssize_t r, total = 0;
	int nb = u->nonblock || (flags & MSG_DONTWAIT);
	struct iovec rest[IOV_REST];

	pthread_mutex_lock(&u->wlock);
	for (;;) {
		r = settle(fd, u);
		if (r == 0)
			r = mpk_link_writev(u->link, iov, iovcnt);
		else if (r == -EPIPE)
			r = -EPIPE;
		if (r > 0) {
			note_io_thread();
			/* Read by pollers in other threads (conn_arm). */
			__atomic_store_n(&u->wblocked, 0, __ATOMIC_RELAXED);
			total += r;
			if (nb)
				break;
			/* A blocking write sends everything. */
			iovcnt = iov_advance(iov, iovcnt, (size_t)r, rest);
			iov = rest;
			if (!iovcnt)
				break;
			continue;
		}
		if (r == -EAGAIN) {
			if (nb) {
				__atomic_store_n(&u->wblocked, 1, __ATOMIC_RELAXED);
				__atomic_fetch_add(&u->wblock, 1, __ATOMIC_RELAXED);
				/* Ask for space now: a poller may sleep already, armed
				 * before this EAGAIN without OUT (gRPC writes from one
				 * thread while another polls). If space came meanwhile,
				 * wake whoever sleeps on our doorbell to report it. */
				if (mpk_link_arm(u->link, MPK_LINK_OUT | MPK_ARM_NODRAIN) &
				    (MPK_LINK_OUT | MPK_LINK_HUP | MPK_LINK_ERR))
					self_ring(u);
				break;
			}
			int w = wait_bell(fd, u, MPK_LINK_OUT);
			if (w < 0) {
				r = w;
				break;
			}
			continue;
		}
		break;
	}
	pthread_mutex_unlock(&u->wlock);
	if (cfg.log_level >= 3)
		slog(3, "fd %d: write -> %zd (r %zd)", fd, total, r);
	if (total > 0)
		return total;
	if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return r;
}

static ssize_t iov_of(const void *buf, size_t len, struct iovec *iov)
{
	iov->iov_base = (void *)buf;
	iov->iov_len = len;
	return 0;
}

/* ------------------------------------------------------------ readiness */

/* What poll(2) would say for this connection (POLL* == EPOLL* bits).
 * out 0: the caller has no use for EPOLLOUT now, and gets none (nor *txg):
 * the TX ring is left alone (mpk_link_poll_rx). */
static uint32_t conn_events(int fd, struct ufd *u, uint64_t *rxg, uint64_t *txg, int out)
{
	unsigned m;
	uint32_t ev = 0;
	int r = settle(fd, u);

	if (rxg)
		*rxg = 0;
	if (txg)
		*txg = 0;
	if (r == 1)
		return 0; /* demoted by the caller's next call */
	if (r == -EAGAIN)
		return 0;
	if (r == -EPIPE)
		return EPOLLIN | EPOLLRDHUP;
	if (r < 0)
		return EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP;
	m = out ? mpk_link_poll_gen(u->link, rxg, txg) : mpk_link_poll_rx(u->link, rxg);
	if ((m & MPK_LINK_IN) || u->rd_shut)
		ev |= EPOLLIN;
	if (m & MPK_LINK_OUT)
		ev |= EPOLLOUT;
	if ((m & MPK_LINK_RDHUP) || u->rd_shut)
		ev |= EPOLLRDHUP;
	if (m & MPK_LINK_ERR)
		ev |= EPOLLERR | EPOLLHUP;
	return ev;
}

/* What to ask the kernel for, to hear about changes. */
static short kernel_events(struct ufd *u)
{
	return u->state == ST_CONNECTING ? POLLOUT : POLLIN;
}

static void conn_arm(struct ufd *u, uint32_t events)
{
	unsigned want = 0;

	if (u->state != ST_ACTIVE)
		return;
	if (events & EPOLLIN)
		want |= MPK_LINK_IN;
	if ((events & EPOLLOUT) && __atomic_load_n(&u->wblocked, __ATOMIC_RELAXED))
		want |= MPK_LINK_OUT;
	/* The callers drain when the kernel reports the doorbell. */
	mpk_link_arm(u->link, want | MPK_ARM_NODRAIN);
}

/* ------------------------------------------------------------ epoll */

/* es->n changes under es->mu, and epoll_wait reads it without: whether
 * the set has any link at all (a stale answer is corrected by the doorbell
 * an addition rings). */
static void eset_set_n(struct eset *es, size_t n)
{
	__atomic_store_n(&es->n, n, __ATOMIC_RELAXED);
}

/* A link's doorbell sits in a set once, for all of its fds there (dup):
 * it leaves when the last of them does. Under es->mu. */
static void eset_bell_unused(struct eset *es, struct ufd *u)
{
	if (u->bell[0] < 0)
		return;
	for (size_t k = 0; k < es->n; k++)
		if (es->v[k].u == u)
			return;
	mpk__real.epoll_ctl(es->epfd, EPOLL_CTL_DEL, u->bell[0], NULL);
}

/* Drops fd from every set; restore=1 gives the kernel back the
 * application's own registration (a connection that turned out plain). */
static void eset_drop_fd(int fd, int restore)
{
	pthread_mutex_lock(&table_lock);
	for (struct eset *es = eset_list; es; es = es->next) {
		pthread_mutex_lock(&es->mu);
		for (size_t k = 0; k < es->n; k++) {
			struct ufd *u = es->v[k].u;

			if (es->v[k].fd != fd)
				continue;
			if (restore) {
				struct epoll_event ev = {.events = es->v[k].events,
							 .data = es->v[k].data};
				mpk__real.epoll_ctl(es->epfd, EPOLL_CTL_MOD, fd, &ev);
			}
			es->v[k] = es->v[es->n - 1];
			eset_set_n(es, es->n - 1);
			eset_bell_unused(es, u);
			break;
		}
		pthread_mutex_unlock(&es->mu);
	}
	pthread_mutex_unlock(&table_lock);
}

static void eset_forget_fd(int fd)
{
	eset_drop_fd(fd, 0);
}

/* Unlinks and frees the set of epfd, if any. */
static void eset_free(int epfd)
{
	struct eset *es = NULL, **pp;

	if ((unsigned)epfd >= FD_MAX)
		return;
	pthread_mutex_lock(&table_lock);
	es = esets[epfd];
	__atomic_store_n(&esets[epfd], NULL, __ATOMIC_RELEASE);
	for (pp = &eset_list; es && *pp; pp = &(*pp)->next) {
		if (*pp == es) {
			*pp = es->next;
			break;
		}
	}
	pthread_mutex_unlock(&table_lock);
	if (es) {
		pthread_mutex_destroy(&es->mu);
		free(es->v);
		free(es);
	}
}

static struct eset *eset_get(int epfd, int create)
{
	struct eset *es;

	if ((unsigned)epfd >= FD_MAX)
		return NULL;
	es = __atomic_load_n(&esets[epfd], __ATOMIC_ACQUIRE);
	if (es || !create)
		return es;
	es = calloc(1, sizeof(*es));
	if (!es)
		return NULL;
	pthread_mutex_init(&es->mu, NULL);
	es->epfd = epfd;
	pthread_mutex_lock(&table_lock);
	if (esets[epfd]) {
		free(es);
		es = esets[epfd];
	} else {
		es->next = eset_list;
		eset_list = es;
		__atomic_store_n(&esets[epfd], es, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&table_lock);
	return es;
}

/* Ring-derived events of the set's upgraded fds. Edge-triggered entries
 * report IN when new data arrived (the peer's tail moved) or a hang-up is
 * new, OUT when a write hit EAGAIN since the last OUT; a spurious edge is
 * harmless, a missing one hangs gRPC forever. */
static int eset_collect(struct eset *es, struct epoll_event *out, int max)
{
	int n = 0, plain[16], nplain = 0;

	pthread_mutex_lock(&es->mu);
	for (size_t i = 0; i < es->n && n < max; i++) {
		struct ereg *e = &es->v[i];
		uint64_t rxg, txg;
		uint32_t full, m, rep, want;
		unsigned wb;
		int look_out;

		if (e->disabled)
			continue;
		if (e->u->state == ST_VERIFY && settle(e->fd, e->u) == 1) {
			if (nplain < 16)
				plain[nplain++] = e->fd;
			continue;
		}
		wb = __atomic_load_n(&e->u->wblock, __ATOMIC_RELAXED);
		/* Edge-triggered OUT is news only after a write's EAGAIN (or
		 * on the first look): until then, a spin leaves the TX ring to
		 * the peer (conn_events). The kernel would also report the
		 * peer's reads as OUT edges; gRPC looks for one only after an
		 * EAGAIN. */
		look_out = (e->events & EPOLLOUT) &&
			   (!(e->events & EPOLLET) || e->fresh || wb != e->wblock_seen);
		full = conn_events(e->fd, e->u, &rxg, &txg, look_out);
		want = (e->events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP)) | EPOLLERR | EPOLLHUP;
		m = full & want;
		if (e->events & EPOLLET) {
			/* End of stream is news even to a registration without
			 * EPOLLRDHUP (gRPC's): it makes the fd readable (0)
			 * without moving the peer's tail. */
			uint32_t fresh_bits = full & ~e->last & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
			rep = 0;
			if ((m & EPOLLIN) && (e->fresh || rxg != e->rxg || fresh_bits))
				rep |= EPOLLIN;
			/* OUT while looked for (above): whenever space was
			 * freed (the peer's head moved), and after an EAGAIN. */
			if ((m & EPOLLOUT) && (e->fresh || wb != e->wblock_seen || txg != e->txg ||
					       (fresh_bits & (EPOLLHUP | EPOLLERR))))
				rep |= EPOLLOUT;
			if (rep || fresh_bits)
				rep |= m & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
			e->last = full;
			if (m & EPOLLIN)
				e->rxg = rxg;
			if (m & EPOLLOUT) {
				e->wblock_seen = wb;
				e->txg = txg;
			}
			e->fresh = 0;
		} else {
			rep = m;
		}
		if (cfg.log_level >= 3)
			slog(3, "epoll %d: fd %d ring 0x%x rxg %llu seen %llu -> report 0x%x", es->epfd,
			     e->fd, m, (unsigned long long)rxg, (unsigned long long)e->rxg, rep);
		if (!rep)
			continue;
		out[n].events = rep;
		out[n].data = e->data;
		n++;
		if (e->events & EPOLLONESHOT)
			e->disabled = 1;
	}
	pthread_mutex_unlock(&es->mu);
	/* The kernel re-evaluates a MOD'ed fd: its readiness comes next. */
	for (int i = 0; i < nplain; i++)
		demote(plain[i]);
	return n;
}

static void eset_arm(struct eset *es)
{
	pthread_mutex_lock(&es->mu);
	for (size_t i = 0; i < es->n; i++)
		if (!es->v[i].disabled)
			conn_arm(es->v[i].u, es->v[i].events);
	pthread_mutex_unlock(&es->mu);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Moves the application's events of kev[0..k) to out (which may be kev)
 * and keeps ours back: doorbells need nothing (the rings say what
 * happened), a link's socket may say the peer hung up. Returns how many
 * went to out. Our data values must never reach the application: gRPC
 * takes them for pointers.
 */
static int keep_app_events(struct epoll_event *kev, int k, struct epoll_event *out)
{
	int n = 0;

	for (int i = 0; i < k; i++) {
		if (kev[i].data.u64 == BTAG)
			continue;
		if ((kev[i].data.u64 & ETAG_MASK) == ETAG) {
			struct ufd *du = conn_get((int)(kev[i].data.u64 & ~ETAG_MASK));
			if (du && du->state == ST_ACTIVE)
				mpk_link_hangup_check(du->link);
			continue;
		}
		out[n++] = kev[i];
	}
	return n;
}

/*
 * One real epoll_wait of up to t ms; the application's events go to
 * ev[n...] (keep_app_events). Returns the new n, or -1 (errno set) when
 * the kernel failed and n was 0.
 */
static int kernel_look(struct eset *es, struct epoll_event *ev, int n, int max, int t,
		       const sigset_t *sigmask, int use_pwait)
{
	struct epoll_event kev[256];
	int k, room = max - n < 256 ? max - n : 256;

	k = use_pwait ? mpk__real.epoll_pwait(es->epfd, kev, room, t, sigmask)
		      : mpk__real.epoll_wait(es->epfd, kev, room, t);
	__atomic_store_n(&es->kernel_ns, mono_ns(), __ATOMIC_RELAXED);
	if (k < 0)
		return n ? n : -1;
	return n + keep_app_events(kev, k, ev + n);
}

/*
 * Busy-poll (MPKLINK_SPIN_US): the rings of the set, for up to the spin
 * budget or the caller's timeout, the kernel every KERNEL_LOOK_NS. Only
 * for a set whose rings had news at the last look: an idle program does
 * not spin, it blocks. Returns events, 0 (nothing: block now), or -1.
 */
static int eset_spin(struct eset *es, struct spin_clock *c, struct epoll_event *ev, int max,
		     int timeout, const sigset_t *sigmask, int use_pwait)
{
	int n, step;

	if (!spin_begin(c, timeout))
		return 0;
	while (!(n = eset_collect(es, ev, max))) {
		step = spin_next(c);
		if (step == SPIN_OVER) {
			__atomic_store_n(&es->hot, 0, __ATOMIC_RELAXED);
			return 0;
		}
		if (step == SPIN_LOOK) {
			n = kernel_look(es, ev, 0, max, 0, sigmask, use_pwait);
			if (n)
				return n; /* the application's events, or EINTR */
		}
	}
	spin_result(1);
	return n;
}

static int epoll_common(int epfd, struct epoll_event *ev, int max, int timeout,
			const sigset_t *sigmask, int use_pwait)
{
	struct eset *es = eset_get(epfd, 0);
	int64_t deadline = timeout > 0 ? mono_ms() + timeout : 0;
	struct spin_clock c = {0};
	int n, t;

	while (!es || !__atomic_load_n(&es->n, __ATOMIC_RELAXED) || max <= 0) {
		/* No link in the set now; but another thread may add one while
		 * this one sleeps in the kernel, whose events are then ours. */
		int k = use_pwait ? mpk__real.epoll_pwait(epfd, ev, max, timeout, sigmask)
				  : mpk__real.epoll_wait(epfd, ev, max, timeout);

		if (k <= 0)
			return k;
		n = keep_app_events(ev, k, ev);
		if (n)
			return n;
		/* Only ours woke it: go on waiting, as the set is now. */
		es = eset_get(epfd, 0);
		if (timeout > 0) {
			timeout = (int)(deadline - mono_ms());
			if (timeout <= 0)
				return 0;
		} else if (timeout == 0) {
			return 0;
		}
	}
	n = eset_collect(es, ev, max);
	if (n) {
		__atomic_store_n(&es->hot, 1, __ATOMIC_RELAXED);
		/* Ring news, with no system call, unless the kernel's events
		 * have not been looked at for a while (they must not starve). */
		if (mono_ns() - __atomic_load_n(&es->kernel_ns, __ATOMIC_RELAXED) < KERNEL_LOOK_NS)
			return n;
		return kernel_look(es, ev, n, max, 0, sigmask, use_pwait);
	}
	if (timeout != 0 && cfg.spin_ns && __atomic_load_n(&es->hot, __ATOMIC_RELAXED)) {
		n = eset_spin(es, &c, ev, max, timeout, sigmask, use_pwait);
		if (n)
			return n;
	}
	for (;;) {
		/* Arm, then look again: a change after this rings. */
		eset_arm(es);
		n = eset_collect(es, ev, max);
		if (n) {
			__atomic_store_n(&es->hot, 1, __ATOMIC_RELAXED);
			spin_woke(&c);
		}
		t = n ? 0 : timeout < 0 ? -1 : timeout == 0 ? 0 : (int)(deadline - mono_ms());
		if (t < 0 && timeout >= 0)
			t = 0;
		n = kernel_look(es, ev, n, max, t, sigmask, use_pwait);
		if (n)
			return n;
		if (t == 0)
			return 0;
		/* Only doorbells or hang-ups: what changed is in the rings. */
		n = eset_collect(es, ev, max);
		if (n) {
			__atomic_store_n(&es->hot, 1, __ATOMIC_RELAXED);
			spin_woke(&c);
			return n;
		}
	}
}

/* ------------------------------------------------------------ poll */

/* The rings of this thread's last poll/select had news: its next one
 * spins first (as an epoll set's hot). */
static __thread int tl_poll_hot;
/* When this thread's poll/select last asked the kernel. */
static __thread uint64_t tl_poll_kernel_ns;

/* What poll(2) reports for upgraded p (its events, and ERR and HUP
 * always); OUT is looked at only where asked for. */
static short ring_revents(const struct pollfd *p, struct ufd *u)
{
	uint32_t m = conn_events(p->fd, u, NULL, NULL, !!(p->events & POLLOUT));

	return (short)(m & ((uint32_t)p->events | POLLERR | POLLHUP));
}

/* Ring readiness of the upgraded fds among fds into their revents.
 * Returns how many have any. */
static int poll_rings(struct pollfd *fds, nfds_t nfds, struct ufd **u)
{
	int ready = 0;

	for (nfds_t i = 0; i < nfds; i++) {
		if (!u[i])
			continue;
		fds[i].revents = ring_revents(&fds[i], u[i]);
		ready += !!fds[i].revents;
	}
	return ready;
}

/*
 * Busy-poll for poll, ppoll and select, as eset_spin is for epoll: the
 * rings of the upgraded fds for up to the spin budget or the caller's
 * timeout, and every KERNEL_LOOK_NS a zero-timeout look at the kernel's
 * (k[0..nk), as the caller built it). Returns the fds the rings made
 * ready (their revents set); 0 when the spin ran out or the kernel has
 * something, for the caller's blocking path, which then sees it at once;
 * -1 when the kernel's look failed (EINTR under ppoll's mask).
 */
static int poll_spin(struct spin_clock *c, struct pollfd *fds, nfds_t nfds, struct ufd **u,
		     struct pollfd *k, nfds_t nk, int timeout, const sigset_t *sigmask)
{
	static const struct timespec zero;
	int r, step;

	if (!spin_begin(c, timeout))
		return 0;
	while (!(r = poll_rings(fds, nfds, u))) {
		step = spin_next(c);
		if (step == SPIN_OVER) {
			tl_poll_hot = 0;
			return 0;
		}
		if (step == SPIN_LOOK) {
			r = sigmask ? mpk__real.ppoll(k, nk, &zero, sigmask) : mpk__real.poll(k, nk, 0);
			tl_poll_kernel_ns = c->now;
			if (r) {
				if (r > 0)
					spin_result(1);
				return r < 0 ? -1 : 0;
			}
		}
	}
	spin_result(1);
	return r;
}

static int poll_common(struct pollfd *fds, nfds_t nfds, int timeout, const sigset_t *sigmask)
{
	/* The application's fds, then one doorbell per upgraded one. */
	struct pollfd stackbuf[128], *k = stackbuf;
	struct ufd *us[64], **u = us;
	nfds_t nk;
	int64_t deadline = timeout > 0 ? mono_ms() + timeout : 0;
	struct spin_clock c = {0};
	nfds_t i, nup = 0;
	int r = 0;

	for (i = 0; i < nfds; i++)
		if (conn_get(fds[i].fd))
			nup++;
	if (!nup) {
		if (sigmask) {
			struct timespec ts = {timeout / 1000, (timeout % 1000) * 1000000L};
			return mpk__real.ppoll(fds, nfds, timeout < 0 ? NULL : &ts, sigmask);
		}
		return mpk__real.poll(fds, nfds, timeout);
	}
	if (nfds > 64) {
		k = malloc((nfds + nup) * sizeof(*k));
		u = malloc(nfds * sizeof(*u));
		if (!k || !u) {
			free(k == stackbuf ? NULL : k);
			free(u == us ? NULL : u);
			errno = ENOMEM;
			return -1;
		}
	}
	for (int pass = 0;; pass++) {
		int ready = 0, t;

		nk = nfds;
		for (i = 0; i < nfds; i++) {
			u[i] = conn_get(fds[i].fd);
			k[i] = fds[i];
			if (!u[i])
				continue;
			if (u[i]->state == ST_ACTIVE && u[i]->bell[0] >= 0 && nk < nfds + nup)
				k[nk++] = (struct pollfd){.fd = u[i]->bell[0], .events = POLLIN};
			if (pass == 0 || !(fds[i].revents & POLLNVAL))
				fds[i].revents = ring_revents(&fds[i], u[i]);
			if (fds[i].revents)
				ready++;
			k[i].events = kernel_events(u[i]);
		}
		if (ready && pass)
			spin_woke(&c); /* news since the spin ran out, before arming */
		if (!ready && pass == 0 && timeout != 0 && cfg.spin_ns && tl_poll_hot) {
			ready = poll_spin(&c, fds, nfds, u, k, nk, timeout, sigmask);
			if (ready < 0) {
				r = -1;
				break;
			}
		}
		if (!ready && pass == 0) {
			for (i = 0; i < nfds; i++)
				if (u[i])
					conn_arm(u[i], (uint32_t)fds[i].events);
			continue; /* look again after arming */
		}
		t = ready ? 0 : timeout < 0 ? -1 : timeout == 0 ? 0 : (int)(deadline - mono_ms());
		if (t < 0 && timeout >= 0)
			t = 0;
		if (ready && mono_ns() - tl_poll_kernel_ns < KERNEL_LOOK_NS) {
			/* Ring news, with no system call: the kernel's fds were
			 * looked at a moment ago, and are again within
			 * KERNEL_LOOK_NS (as epoll_common does). */
			for (nfds_t b = 0; b < nk; b++)
				k[b].revents = 0;
			r = 0;
		} else {
			struct timespec ts = {t / 1000, (t % 1000) * 1000000L};

			r = sigmask ? mpk__real.ppoll(k, nk, t < 0 ? NULL : &ts, sigmask)
				    : mpk__real.poll(k, nk, t);
			tl_poll_kernel_ns = mono_ns();
		}
		if (r < 0) {
			if (ready)
				r = ready;
			break;
		}
		r = 0;
		/* Level-triggered: a doorbell's count must go, or it fires
		 * again at once. */
		for (nfds_t b = nfds; b < nk; b++) {
			if (!k[b].revents)
				continue;
			for (i = 0; i < nfds; i++) {
				if (u[i] && u[i]->bell[0] == k[b].fd) {
					mpk_link_drain(u[i]->link);
					break;
				}
			}
		}
		for (i = 0; i < nfds; i++) {
			if (!u[i]) {
				fds[i].revents = k[i].revents;
			} else {
				if ((k[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
				    u[i]->state == ST_ACTIVE)
					mpk_link_hangup_check(u[i]->link);
				fds[i].revents = ring_revents(&fds[i], u[i]);
				if (k[i].revents & POLLNVAL)
					fds[i].revents = POLLNVAL;
				if (fds[i].revents) {
					tl_poll_hot = 1;
					spin_woke(&c);
				}
			}
			if (fds[i].revents)
				r++;
		}
		if (r || t == 0)
			break;
		/* Only doorbells rang, for things nobody asked about: again. */
		for (i = 0; i < nfds; i++)
			if (u[i])
				conn_arm(u[i], (uint32_t)fds[i].events);
	}
	if (k != stackbuf) {
		free(k);
		free(u);
	}
	return r;
}

static int select_common(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int timeout_ms,
			 const sigset_t *sigmask, int use_pselect, const struct timespec *ts,
			 struct timeval *tv)
{
	struct pollfd p[FD_SETSIZE];
	nfds_t n = 0;
	int up = 0, r;

	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		short ev = 0;
		if (rd && FD_ISSET(fd, rd))
			ev |= POLLIN;
		if (wr && FD_ISSET(fd, wr))
			ev |= POLLOUT;
		if (ex && FD_ISSET(fd, ex))
			ev |= POLLPRI;
		if (!ev)
			continue;
		up |= conn_get(fd) != NULL;
		p[n++] = (struct pollfd){.fd = fd, .events = ev};
	}
	if (!up)
		return use_pselect ? mpk__real.pselect(nfds, rd, wr, ex, ts, sigmask)
				   : mpk__real.select(nfds, rd, wr, ex, tv);
	r = poll_common(p, n, timeout_ms, sigmask);
	if (r < 0)
		return r;
	if (rd)
		FD_ZERO(rd);
	if (wr)
		FD_ZERO(wr);
	if (ex)
		FD_ZERO(ex);
	r = 0;
	for (nfds_t i = 0; i < n; i++) {
		if (p[i].revents & POLLNVAL) {
			errno = EBADF;
			return -1;
		}
		if (rd && (p[i].events & POLLIN) && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(p[i].fd, rd);
			r++;
		}
		if (wr && (p[i].events & POLLOUT) && (p[i].revents & (POLLOUT | POLLERR))) {
			FD_SET(p[i].fd, wr);
			r++;
		}
		if (ex && (p[i].events & POLLPRI) && (p[i].revents & POLLPRI)) {
			FD_SET(p[i].fd, ex);
			r++;
		}
	}
	return r;
}

/* ------------------------------------------------------------ stats */

static void stats_report(void)
{
	char buf[512];
	FILE *f = NULL;
	int n;

	/* Only processes that had something to do with links report. */
	if (!totals.links && !totals.fallbacks)
		return;
	/* Links still open at exit; a dup'ed one is counted once. */
	for (int fd = 0; fd < FD_MAX; fd++) {
		struct ufd *u = ufd_get(fd);
		if (u && u->kind == K_CONN && u->link && claim_report(u)) {
			stats_add(u->link);
			tcp_account(fd);
		}
	}
	n = snprintf(buf, sizeof(buf),
		     "mpklink stats: pid=%d links=%llu fallbacks=%llu tx_bytes=%llu rx_bytes=%llu "
		     "tx_msgs=%llu rx_msgs=%llu doorbells=%llu tcp_bytes=%llu mac_links=%llu\n",
		     (int)getpid(), (unsigned long long)totals.links,
		     (unsigned long long)totals.fallbacks, (unsigned long long)totals.tx_bytes,
		     (unsigned long long)totals.rx_bytes, (unsigned long long)totals.tx_calls,
		     (unsigned long long)totals.rx_calls, (unsigned long long)totals.bells_sent,
		     (unsigned long long)totals.tcp_bytes, (unsigned long long)totals.mac_links);
	if (strcmp(cfg.stats, "1") && strcmp(cfg.stats, "stderr"))
		f = fopen(cfg.stats, "a");
	if (f) {
		fputs(buf, f);
		fclose(f);
	} else if (n > 0) {
		mpk__real.write(2, buf, (size_t)n);
	}
}

/* =================================================== interposed calls */

/* Fortified programs call these; glibc declares them only internally. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
		       struct sockaddr *a, socklen_t *al);
int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);

EXPORT int socket(int domain, int type, int protocol)
{
	init();
	int fd = mpk__real.socket(domain, type, protocol);
	fd_fresh(fd);
	return fd;
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct mpk_ctl_rep rep;
	struct ufd *u;
	unsigned port, cport;
	int lfds[MPK_LINK_NFDS], r, e;

	init();
	if (!cfg.enabled || !addr || !(port = addr_port(addr, len, 0)) || !configured(port) ||
	    ufd_get(fd) || !is_tcp(fd))
		return mpk__real.connect(fd, addr, len);
	/* No launcher answers for the port: the server is not under mpklink. */
	if (!rendezvous_exists(port))
		goto plain;
	cport = bind_ephemeral(fd, addr);
	if (!cport)
		goto plain;
	r = ctl_call(MPK_CTL_CONNECT, port, cport, &rep, lfds);
	if (r < 0 || lfds[0] < 0) {
		slog(r == -ENOENT ? 3 : 1, "port %u: no link (%s); plain TCP", port, strerror(-r));
		goto plain;
	}
	u = conn_new(fd, lfds, 1, port, cport, ST_CONNECTING, rep.token, &rep);
	if (!u)
		goto plain;
	r = mpk__real.connect(fd, addr, len);
	e = errno;
	if (r < 0 && e != EINPROGRESS) {
		ufd_free(u);
		errno = e;
		return r;
	}
	fd_hook(fd, u);
	if (r == 0)
		settle(fd, u);
	slog(3, "port %u: connection from port %u upgraded", port, cport);
	errno = e;
	return r;
plain:
	__atomic_fetch_add(&totals.fallbacks, 1, __ATOMIC_RELAXED);
	if (cfg.deny) {
		slog(0, "port %u: no shared-memory link and MPKLINK_FALLBACK=deny", port);
		errno = ECONNREFUSED;
		return -1;
	}
	return mpk__real.connect(fd, addr, len);
}

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	init();
	return mpk__real.bind(fd, addr, len);
}

EXPORT int listen(int fd, int backlog)
{
	struct mpk_ctl_rep rep;
	struct ufd *u;
	unsigned port;
	int r, lfds[MPK_LINK_NFDS];

	init();
	r = mpk__real.listen(fd, backlog);
	if (r < 0 || !cfg.enabled || ufd_get(fd) || !is_tcp(fd))
		return r;
	{
		struct sockaddr_storage ss;
		socklen_t l = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0)
			return r;
		port = addr_port((struct sockaddr *)&ss, l, 1);
	}
	if (!port || !configured(port))
		return r;
	if (ctl_call(MPK_CTL_LISTEN, port, 0, &rep, lfds) < 0) {
		slog(1, "port %u: the launcher cannot answer for it; plain TCP", port);
		return r;
	}
	u = ufd_new(K_LISTEN);
	if (!u)
		return r;
	u->port = port;
	fd_hook(fd, u);
	slog(2, "port %u: listening, links offered", port);
	return r;
}

static int do_accept(int fd, struct sockaddr *addr, socklen_t *alen, int flags, int four)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	struct mpk_ctl_rep rep;
	struct ufd *lu, *u;
	unsigned cport;
	int nfd, lfds[MPK_LINK_NFDS], r;

	init();
	lu = ufd_get(fd);
	if (!lu || lu->kind != K_LISTEN) {
		nfd = four ? mpk__real.accept4(fd, addr, alen, flags) : mpk__real.accept(fd, addr, alen);
		fd_fresh(nfd);
		return nfd;
	}
	nfd = four ? mpk__real.accept4(fd, (struct sockaddr *)&ss, &l, flags)
		   : mpk__real.accept(fd, (struct sockaddr *)&ss, &l);
	if (nfd < 0)
		return nfd;
	fd_fresh(nfd);
	if (addr && alen) {
		memcpy(addr, &ss, *alen < l ? *alen : l);
		*alen = l;
	}
	cport = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
		: ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : 0;
	if (!cport || !addr_port((struct sockaddr *)&ss, l, 0))
		return nfd;
	r = ctl_call(MPK_CTL_ACCEPT, lu->port, cport, &rep, lfds);
	if (r < 0 || lfds[0] < 0)
		return nfd; /* a plain client */
	u = conn_new(nfd, lfds, 0, lu->port, cport, ST_VERIFY, rep.token, &rep);
	if (!u)
		return nfd;
	fd_hook(nfd, u);
	slog(3, "port %u: connection from port %u upgraded", lu->port, cport);
	return nfd;
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	return do_accept(fd, addr, alen, 0, 0);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	return do_accept(fd, addr, alen, flags, 1);
}

static int do_close(int fd)
{
	struct ufd *u;
	int r;

	init();
	if (is_internal(fd)) {
		/* Not the application's: as if it did not exist. */
		errno = EBADF;
		return -1;
	}
	if ((unsigned)fd < FD_MAX && __atomic_load_n(&esets[fd], __ATOMIC_RELAXED))
		eset_free(fd);
	if (!ufd_get(fd))
		return mpk__real.close(fd);
	u = fd_unhook(fd);
	if (u && u->kind == K_CONN && claim_report(u)) {
		tcp_account(fd);
		if (u->link)
			stats_add(u->link);
	}
	if (u && u->kind == K_CONN && u->link && u->state == ST_ACTIVE) {
		/* Unread doorbell bytes would turn our FIN into an RST. */
		char buf[256];
		while (mpk__real.recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
	r = mpk__real.close(fd);
	if (u)
		ufd_free(u);
	return r;
}

EXPORT int close(int fd)
{
	return do_close(fd);
}

/*
 * The application closes a range (daemons, and children before exec, close
 * everything above stderr): around our doorbells, which would otherwise be
 * gone and their numbers handed out again, for us to write rings into.
 * Each of its own fds goes through close() when we know it.
 */
static int do_close_range(unsigned first, unsigned last, int flags)
{
	unsigned lo = first;

	init();
	if (first > last) {
		errno = EINVAL;
		return -1;
	}
	/* Close-on-exec marking takes nothing away. */
	if (flags & CLOSE_RANGE_CLOEXEC)
		return (int)mpk__real.syscall(SYS_close_range, first, last, flags);
	for (unsigned fd = first; fd <= last && fd < FD_MAX; fd++) {
		if (!is_internal((int)fd) && !ufd_get((int)fd) && !esets[fd])
			continue;
		if (fd > lo && mpk__real.syscall(SYS_close_range, lo, fd - 1, flags) < 0)
			return -1;
		if (!is_internal((int)fd))
			do_close((int)fd);
		lo = fd + 1;
		flags &= ~CLOSE_RANGE_UNSHARE; /* done by the first call */
	}
	if (lo <= last)
		return (int)mpk__real.syscall(SYS_close_range, lo, last, flags);
	return 0;
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	return do_close_range(first, last, flags);
}

EXPORT void closefrom(int lowfd)
{
	/* glibc's own closefrom calls its internal close_range, past us. */
	if (lowfd < 0)
		lowfd = 0;
	do_close_range((unsigned)lowfd, ~0u, 0);
}

EXPORT long syscall(long n, ...)
{
	va_list ap;
	long a[6];

	init();
	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (n == SYS_close)
		return do_close((int)a[0]);
	if (n == SYS_close_range)
		return do_close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
	return mpk__real.syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

EXPORT int shutdown(int fd, int how)
{
	struct ufd *u = (init(), conn_get(fd));

	if (!u || u->state != ST_ACTIVE)
		return mpk__real.shutdown(fd, how);
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
		errno = EINVAL;
		return -1;
	}
	/* No real SHUT_WR alone: "space freed" doorbells must still reach
	 * the peer. The ring carries the half-close. */
	if (how != SHUT_WR)
		u->rd_shut = 1;
	if (how != SHUT_RD) {
		int r = mpk_link_shutdown_write(u->link);
		if (r < 0)
			return (int)set_errno(r);
	}
	/* Both ways: no doorbell is needed any more, and the real shutdown
	 * is what wakes every local poller of this fd (gRPC shuts its
	 * connections down this way and waits for that hang-up). */
	if (how == SHUT_RDWR)
		return mpk__real.shutdown(fd, SHUT_RDWR);
	return 0;
}

static int dup_hook(int oldfd, int newfd)
{
	struct ufd *u;

	if (newfd < 0)
		return newfd;
	fd_fresh(newfd);
	u = ufd_get(oldfd);
	if (u)
		fd_hook(newfd, u);
	return newfd;
}

EXPORT int dup(int fd)
{
	init();
	return dup_hook(fd, mpk__real.dup(fd));
}

/* The application aims dup2/dup3 at a number it believes free, that one
 * of our doorbells holds: it cannot have it (EBUSY is what Linux says when
 * a number is not available yet). */
static int internal_busy(int newfd)
{
	if (!is_internal(newfd))
		return 0;
	slog(1, "fd %d is an mpklink doorbell: dup2/dup3 onto it refused (EBUSY)", newfd);
	errno = EBUSY;
	return 1;
}

EXPORT int dup2(int oldfd, int newfd)
{
	init();
	if (internal_busy(newfd))
		return -1;
	if (oldfd == newfd)
		return mpk__real.dup2(oldfd, newfd);
	struct ufd *old = ufd_get(newfd) ? fd_unhook(newfd) : NULL;
	int r = dup_hook(oldfd, mpk__real.dup2(oldfd, newfd));
	if (old)
		ufd_free(old);
	return r;
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	init();
	if (internal_busy(newfd))
		return -1;
	struct ufd *old = oldfd != newfd && ufd_get(newfd) ? fd_unhook(newfd) : NULL;
	int r = dup_hook(oldfd, mpk__real.dup3(oldfd, newfd, flags));
	if (old)
		ufd_free(old);
	return r;
}

static int do_fcntl(int fd, int cmd, va_list ap)
{
	struct ufd *u;
	long arg = va_arg(ap, long);
	int r;

	init();
	r = mpk__real.fcntl(fd, cmd, arg);
	if (r < 0)
		return r;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return dup_hook(fd, r);
	case F_SETFL:
		u = conn_get(fd);
		if (u)
			u->nonblock = !!(arg & O_NONBLOCK);
		return r;
	default:
		return r;
	}
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	int r;

	va_start(ap, cmd);
	r = do_fcntl(fd, cmd, ap);
	va_end(ap);
	return r;
}

/* glibc's LFS name for the same call. */
EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	struct ufd *u;

	init();
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	u = conn_get(fd);
	if (u && req == FIONREAD && u->state == ST_ACTIVE) {
		ssize_t n = mpk_link_readable(u->link);
		if (n < 0)
			return (int)set_errno(n);
		*(int *)arg = n > INT_MAX ? INT_MAX : (int)n;
		return 0;
	}
	int r = mpk__real.ioctl(fd, req, arg);
	if (r == 0 && u && req == FIONBIO)
		u->nonblock = !!*(int *)arg;
	return r;
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct ufd *u = (init(), conn_get(fd));

	if (u && level == SOL_SOCKET && name == SO_ERROR && val && len && *len >= sizeof(int)) {
		int r = mpk__real.getsockopt(fd, level, name, val, len);
		if (r == 0 && *(int *)val == 0) {
			int s = settle(fd, u);
			if (s < 0 && s != -EAGAIN && s != -EPIPE && u->state == ST_BROKEN)
				*(int *)val = u->conn_err ? u->conn_err : ECONNRESET;
		}
		return r;
	}
	return mpk__real.getsockopt(fd, level, name, val, len);
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct ufd *u = (init(), conn_get(fd));
	int r = mpk__real.setsockopt(fd, level, name, val, len);

	if (r == 0 && u && level == IPPROTO_TCP && name == TCP_INQ && val && len >= sizeof(int))
		u->inq = *(const int *)val != 0;
	return r;
}

/* ------------------------------------------------------------ reads */

#define DATA_CALL(u, fd, plain, expr)                                                    \
	do {                                                                             \
		ssize_t r_;                                                              \
		init();                                                                  \
		if (!((u) = conn_get(fd)))                                               \
			return plain;                                                    \
		r_ = (expr);                                                             \
		if (r_ == 1 && (u)->state == ST_VERIFY) {                                \
			demote(fd);                                                      \
			return plain;                                                    \
		}                                                                        \
		return set_errno(r_);                                                    \
	} while (0)

/* A plain client found during VERIFY shows up as settle() == 1; the data
 * calls check for it before touching the ring. */
static ssize_t conn_readv_chk(int fd, struct ufd *u, const struct iovec *iov, int n, int flags)
{
	if (u->state == ST_VERIFY && settle(fd, u) == 1)
		return 1;
	return conn_readv(fd, u, iov, n, flags);
}

static ssize_t conn_writev_chk(int fd, struct ufd *u, const struct iovec *iov, int n, int flags)
{
	if (u->state == ST_VERIFY && settle(fd, u) == 1)
		return 1;
	return conn_writev(fd, u, iov, n, flags);
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct ufd *u;
	struct iovec iov;

	iov_of(buf, n, &iov);
	DATA_CALL(u, fd, mpk__real.read(fd, buf, n), conn_readv_chk(fd, u, &iov, 1, 0));
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		abort();
	return read(fd, buf, n);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	struct ufd *u;

	DATA_CALL(u, fd, mpk__real.readv(fd, iov, n), conn_readv_chk(fd, u, iov, n, 0));
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct ufd *u;
	struct iovec iov;

	iov_of(buf, n, &iov);
	DATA_CALL(u, fd, mpk__real.recv(fd, buf, n, flags), conn_readv_chk(fd, u, &iov, 1, flags));
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		abort();
	return recv(fd, buf, n, flags);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al)
{
	struct ufd *u;
	struct iovec iov;

	iov_of(buf, n, &iov);
	/* A connected TCP socket reports no source address. */
	DATA_CALL(u, fd, mpk__real.recvfrom(fd, buf, n, flags, a, al),
		  (al ? (*al = 0) : 0, conn_readv_chk(fd, u, &iov, 1, flags)));
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
			      struct sockaddr *a, socklen_t *al)
{
	if (n > buflen)
		abort();
	return recvfrom(fd, buf, n, flags, a, al);
}

static ssize_t conn_recvmsg(int fd, struct ufd *u, struct msghdr *m, int flags)
{
	ssize_t r = conn_readv_chk(fd, u, m->msg_iov, (int)m->msg_iovlen, flags);
	size_t space = m->msg_controllen;

	if (r == 1 && u->state == ST_VERIFY)
		return r;
	m->msg_namelen = 0;
	m->msg_flags = 0;
	m->msg_controllen = 0;
	if (r >= 0 && u->inq && m->msg_control && space >= CMSG_SPACE(sizeof(int))) {
		struct cmsghdr *c = (struct cmsghdr *)m->msg_control;
		ssize_t left = u->state == ST_ACTIVE ? mpk_link_readable(u->link) : 0;
		int v = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;

		c->cmsg_level = IPPROTO_TCP;
		c->cmsg_type = TCP_CM_INQ;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &v, sizeof(v));
		m->msg_controllen = CMSG_SPACE(sizeof(int));
	} else if (r >= 0 && u->inq && m->msg_control && space) {
		m->msg_flags |= MSG_CTRUNC;
	}
	return r;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	struct ufd *u;

	DATA_CALL(u, fd, mpk__real.recvmsg(fd, m, flags), conn_recvmsg(fd, u, m, flags));
}

/* ------------------------------------------------------------ writes */

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct ufd *u;
	struct iovec iov;

	iov_of(buf, n, &iov);
	DATA_CALL(u, fd, mpk__real.write(fd, buf, n), conn_writev_chk(fd, u, &iov, 1, 0));
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	struct ufd *u;

	DATA_CALL(u, fd, mpk__real.writev(fd, iov, n), conn_writev_chk(fd, u, iov, n, 0));
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct ufd *u;
	struct iovec iov;

	iov_of(buf, n, &iov);
	DATA_CALL(u, fd, mpk__real.send(fd, buf, n, flags), conn_writev_chk(fd, u, &iov, 1, flags));
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a,
		      socklen_t al)
{
	struct ufd *u;
	struct iovec iov;

	iov_of(buf, n, &iov);
	DATA_CALL(u, fd, mpk__real.sendto(fd, buf, n, flags, a, al),
		  conn_writev_chk(fd, u, &iov, 1, flags));
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	struct ufd *u;

	DATA_CALL(u, fd, mpk__real.sendmsg(fd, m, flags),
		  conn_writev_chk(fd, u, m->msg_iov, (int)m->msg_iovlen, flags));
}

/* ------------------------------------------------------------ waiting */

EXPORT int epoll_create(int size)
{
	init();
	int fd = mpk__real.epoll_create(size);
	fd_fresh(fd);
	return fd;
}

EXPORT int epoll_create1(int flags)
{
	init();
	int fd = mpk__real.epoll_create1(flags);
	fd_fresh(fd);
	return fd;
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct ufd *u;
	struct eset *es;
	struct epoll_event kev;
	int r;

	init();
	u = conn_get(fd);
	es = eset_get(epfd, u != NULL);
	if (!u) {
		r = mpk__real.epoll_ctl(epfd, op, fd, ev);
		if (r == 0 && es && op == EPOLL_CTL_ADD)
			eset_forget_fd(fd); /* a stale registration of a reused number */
		return r;
	}
	if (!es) {
		errno = ENOMEM;
		return -1;
	}
	if (op != EPOLL_CTL_DEL && !ev) {
		errno = EFAULT;
		return -1;
	}
	/* The kernel watches the doorbell (and the connect); the rings say
	 * what is ready. */
	if (ev) {
		kev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (ev->events & EPOLLEXCLUSIVE);
		if (u->state == ST_CONNECTING)
			kev.events |= EPOLLOUT;
		kev.data.u64 = ETAG | (uint64_t)fd;
	}
	r = mpk__real.epoll_ctl(epfd, op, fd, ev ? &kev : NULL);
	if (r < 0)
		return r;
	if (op == EPOLL_CTL_ADD && u->bell[0] >= 0) {
		struct epoll_event bev = {.events = EPOLLIN | EPOLLET | (ev->events & EPOLLEXCLUSIVE),
					  .data.u64 = BTAG};

		/* Edge-triggered: every ring is an edge, and the count never
		 * needs reading. EEXIST: a dup of fd put it there. */
		if (mpk__real.epoll_ctl(epfd, EPOLL_CTL_ADD, u->bell[0], &bev) < 0 &&
		    errno != EEXIST) {
			int e = errno;

			mpk__real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
			errno = e;
			return -1;
		}
	}
	pthread_mutex_lock(&es->mu);
	size_t i;
	for (i = 0; i < es->n && es->v[i].fd != fd; i++)
		;
	if (op == EPOLL_CTL_DEL) {
		if (i < es->n) {
			es->v[i] = es->v[es->n - 1];
			eset_set_n(es, es->n - 1);
			eset_bell_unused(es, u);
		}
	} else {
		if (i == es->n) {
			if (es->n == es->cap) {
				size_t cap = es->cap ? es->cap * 2 : 16;
				struct ereg *v = realloc(es->v, cap * sizeof(*v));
				if (!v) {
					eset_bell_unused(es, u);
					pthread_mutex_unlock(&es->mu);
					mpk__real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
					errno = ENOMEM;
					return -1;
				}
				es->v = v;
				es->cap = cap;
			}
			eset_set_n(es, es->n + 1);
		}
		es->v[i] = (struct ereg){.fd = fd, .u = u, .events = ev->events,
					 .data = ev->data, .fresh = 1};
	}
	pthread_mutex_unlock(&es->mu);
	/* A thread may sleep in this set already, in the kernel alone (the
	 * set had no link when it went in): nothing it armed rings for this
	 * link. Our own doorbell, now that the entry is there, sends it
	 * round again to look at the rings. */
	if (op == EPOLL_CTL_ADD)
		self_ring(u);
	return 0;
}

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	init();
	return epoll_common(epfd, ev, max, timeout, NULL, 0);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
		       const sigset_t *sigmask)
{
	init();
	return epoll_common(epfd, ev, max, timeout, sigmask, 1);
}

EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	init();
	return poll_common(fds, nfds, timeout, NULL);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < nfds)
		abort();
	return poll(fds, nfds, timeout);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
		 const sigset_t *sigmask)
{
	int t;

	init();
	if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)) {
		errno = EINVAL;
		return -1;
	}
	t = !ts ? -1 : ts->tv_sec > INT_MAX / 1000 ? INT_MAX
						    : (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
	if (!sigmask)
		return poll_common(fds, nfds, t, NULL);
	for (nfds_t i = 0; i < nfds; i++)
		if (conn_get(fds[i].fd))
			return poll_common(fds, nfds, t, sigmask);
	return mpk__real.ppoll(fds, nfds, ts, sigmask);
}

EXPORT int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	int t;

	init();
	t = !tv ? -1 : (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
	return select_common(nfds, rd, wr, ex, t, NULL, 0, NULL, tv);
}

EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
		   const sigset_t *sigmask)
{
	int t;

	init();
	t = !ts ? -1 : (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
	return select_common(nfds, rd, wr, ex, t, sigmask, 1, ts, NULL);
}

EXPORT pid_t fork(void)
{
	init();
	/* The child keeps every link (the memory is shared, the sockets are
	 * inherited); its requests go on a control connection of its own. */
	return mpk__real.fork();
}

/* ============================================================ start */

/*
 * A program image started by exec inherits sockets without CLOEXEC. Those
 * that carried links must not be read as plain TCP (the stream holds only
 * doorbells now): the launcher still has their memory.
 */
static void adopt_inherited(void)
{
	struct mpk_ctl_rep rep;
	struct dirent *d;
	DIR *dir;

	if (!cfg.enabled || !getenv("MPKLINK_EXECED"))
		return;
	dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		unsigned l, p, sport, cport;
		int fd = atoi(d->d_name), lfds[MPK_LINK_NFDS], side;
		struct ufd *u;

		if (d->d_name[0] < '0' || d->d_name[0] > '9' || fd == dirfd(dir) || ufd_get(fd) ||
		    !is_tcp(fd) || sock_ports(fd, &l, &p) < 0)
			continue;
		if (configured(p)) {
			sport = p, cport = l;
		} else if (configured(l)) {
			sport = l, cport = p;
		} else {
			continue;
		}
		if (is_internal(fd) ||
		    ctl_call(MPK_CTL_LOOKUP, sport, cport, &rep, lfds) < 0 || lfds[0] < 0)
			continue;
		side = rep.side == 1;
		u = conn_new(fd, lfds, side, sport, cport, ST_ACTIVE, NULL, &rep);
		if (!u)
			continue;
		fd_hook(fd, u);
		slog(2, "port %u: link of connection from port %u inherited across exec", sport, cport);
	}
	closedir(dir);
}

__attribute__((constructor)) static void shim_ctor(void)
{
	init();
	/* Outside the once: the control calls below come back through our
	 * own socket() and connect(), which call init(). */
	adopt_inherited();
	/* Every image after this one was exec'd by a process of ours. */
	if (cfg.enabled)
		setenv("MPKLINK_EXECED", "1", 1);
}
