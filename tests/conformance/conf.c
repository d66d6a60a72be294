/* SPDX-License-Identifier: MIT */
/* Differential conformance scenarios: helpers (see conf.h). */
#include "conf.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int conf_port, conf_port2, conf_port_plain;
int conf_errno;

/* ---- the watchdog ------------------------------------------------------ */

static char step_name[128] = "start";
static int64_t step_deadline_ns; /* 0: no step running */
static int64_t total_deadline_ns;
static __thread int64_t step_start_ns;
static pthread_t main_thread;

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

double conf_now_ms(void)
{
	return (double)mono_ns() / 1e6;
}

long conf_raw_syscall(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	if (x0 < 0 && x0 > -4096) {
		errno = (int)-x0;
		return -1;
	}
	return x0;
#else
#error "conf_raw_syscall: add this architecture"
#endif
}

static void raw_say(const char *a, const char *b)
{
	conf_raw_syscall(SYS_write, 1, (long)a, (long)strlen(a), 0, 0, 0);
	conf_raw_syscall(SYS_write, 1, (long)b, (long)strnlen(b, sizeof(step_name)), 0, 0, 0);
	conf_raw_syscall(SYS_write, 1, (long)"\n", 1, 0, 0, 0);
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		int64_t now, d;

		/* Raw: nothing of the library under test may stand in the way. */
		conf_raw_syscall(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
		now = mono_ns();
		d = __atomic_load_n(&step_deadline_ns, __ATOMIC_ACQUIRE);
		if (d && now > d) {
			raw_say("HANG ", step_name);
			conf_raw_syscall(SYS_exit_group, 3, 0, 0, 0, 0, 0);
		}
		if (now > total_deadline_ns) {
			raw_say("HANG total, in step ", step_name);
			conf_raw_syscall(SYS_exit_group, 3, 0, 0, 0, 0, 0);
		}
	}
	return NULL;
}

static void start_watchdog(void)
{
	pthread_t t;
	pthread_attr_t a;
	sigset_t all, old;

	/* The scenarios aim their signals at threads; the watchdog takes none
	 * of the process-directed ones either. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, watchdog, NULL) != 0) {
		fprintf(stdout, "FATAL watchdog thread\n");
		exit(2);
	}
	pthread_attr_destroy(&a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int env_int(const char *k, int dflt)
{
	const char *v = getenv(k);
	return v && *v ? atoi(v) : dflt;
}

void conf_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	conf_port = env_int("CONF_PORT", 0);
	conf_port2 = env_int("CONF_PORT2", 0);
	conf_port_plain = env_int("CONF_PORT_PLAIN", 0);
	main_thread = pthread_self();
	if (!conf_port)
		conf_fatal("CONF_PORT is not set (run me through run.sh)");
	total_deadline_ns = mono_ns() + (int64_t)env_int("CONF_TOTAL_MS", 60000) * 1000000;
	start_watchdog();
}

void conf_child(void)
{
	main_thread = pthread_self();
	start_watchdog();
}

void conf_end(void)
{
	__atomic_store_n(&step_deadline_ns, 0, __ATOMIC_RELEASE);
	printf("END\n");
	fflush(stdout);
	exit(0);
}

void conf_fatal(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	printf("FATAL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (errno %s)\n", en(e));
	fflush(stdout);
	exit(2);
}

void conf_skip(const char *fmt, ...)
{
	va_list ap;

	printf("SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(77);
}

void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void conf_step(const char *name, int limit_ms)
{
	int64_t now = mono_ns();

	step_start_ns = now;
	/* Only the main thread's steps are watched; a helper thread that
	 * hangs shows as a hang of the main thread's join. */
	if (!pthread_equal(pthread_self(), main_thread))
		return;

	if (limit_ms <= 0)
		limit_ms = 3000;
	__atomic_store_n(&step_deadline_ns, 0, __ATOMIC_RELEASE);
	snprintf(step_name, sizeof(step_name), "%s", name);
	__atomic_store_n(&step_deadline_ns, now + (int64_t)limit_ms * 1000000, __ATOMIC_RELEASE);
}

double conf_elapsed(void)
{
	double ms = (double)(mono_ns() - step_start_ns) / 1e6;

	if (pthread_equal(pthread_self(), main_thread))
		__atomic_store_n(&step_deadline_ns, 0, __ATOMIC_RELEASE);
	return ms;
}

const char *conf_class(double ms, int t)
{
	if (ms < t * 0.5)
		return "now";
	if (ms < t * 0.8)
		return "early";
	if (ms <= t * 10.0)
		return "timeout";
	return "late";
}

/* ---- formatting -------------------------------------------------------- */

const char *en(int e)
{
	static __thread char buf[32];
	const char *n;

	if (!e)
		return "-";
	n = strerrorname_np(e);
	if (n)
		return n;
	snprintf(buf, sizeof(buf), "E#%d", e);
	return buf;
}

static char *rot(void)
{
	static __thread char bufs[4][256];
	static __thread int i;

	i = (i + 1) & 3;
	return bufs[i];
}

static const char *flags(uint32_t v, const uint32_t *bits, const char *const *names, int n)
{
	char *b = rot();
	size_t o = 0;

	b[0] = 0;
	for (int i = 0; i < n; i++)
		if (v & bits[i]) {
			o += (size_t)snprintf(b + o, 256 - o, "%s%s", o ? "|" : "", names[i]);
			v &= ~bits[i];
		}
	if (v)
		o += (size_t)snprintf(b + o, 256 - o, "%s0x%x", o ? "|" : "", v);
	if (!o)
		snprintf(b, 256, "0");
	return b;
}

const char *pev(int r)
{
	static const uint32_t bits[] = {POLLIN,	    POLLPRI,	POLLOUT,    POLLERR,
					POLLHUP,    POLLNVAL,	POLLRDNORM, POLLRDBAND,
					POLLWRNORM, POLLWRBAND, POLLRDHUP};
	static const char *const names[] = {"IN",	"PRI",	  "OUT",    "ERR",
					    "HUP",	"NVAL",	  "RDNORM", "RDBAND",
					    "WRNORM", "WRBAND", "RDHUP"};
	return flags((uint32_t)(uint16_t)r, bits, names, 11);
}

const char *eev(uint32_t e)
{
	static const uint32_t bits[] = {EPOLLIN,     EPOLLPRI,	  EPOLLOUT,	EPOLLERR,
					EPOLLHUP,    EPOLLRDNORM, EPOLLRDBAND, EPOLLWRNORM,
					EPOLLWRBAND, EPOLLMSG,	  EPOLLRDHUP,	EPOLLET,
					EPOLLONESHOT, EPOLLEXCLUSIVE};
	static const char *const names[] = {"IN",     "PRI",    "OUT",    "ERR",    "HUP",
					    "RDNORM", "RDBAND", "WRNORM", "WRBAND", "MSG",
					    "RDHUP",  "ET",     "ONESHOT", "EXCLUSIVE"};
	return flags(e, bits, names, 14);
}

uint64_t fnv(const void *buf, size_t n, uint64_t h)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

const char *hexdata(const void *buf, ssize_t n)
{
	char *b = rot();
	const unsigned char *p = buf;

	if (n <= 0)
		return snprintf(b, 256, "data=none"), b;
	if (n <= 48) {
		size_t o = (size_t)snprintf(b, 256, "data=");
		for (ssize_t i = 0; i < n; i++)
			o += (size_t)snprintf(b + o, 256 - o, "%02x", p[i]);
		return b;
	}
	snprintf(b, 256, "len=%zd fnv=%016llx", n, (unsigned long long)fnv(buf, (size_t)n, FNV0));
	return b;
}

void pat_fill(unsigned char *buf, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(off + i);
}

long conf_report(const char *name, int t, long r, int how, long want)
{
	double ms = conf_elapsed();
	char rs[32], cls[32] = "";

	if (how == 1 && r >= 0)
		snprintf(rs, sizeof(rs), "fd");
	else if (how == 2 && r >= 0 && r == want)
		snprintf(rs, sizeof(rs), "full");
	else if (how == 2 && r > 0 && r < want)
		snprintf(rs, sizeof(rs), "partial");
	else
		snprintf(rs, sizeof(rs), "%ld", r);
	if (t)
		snprintf(cls, sizeof(cls), " class=%s", conf_class(ms, t));
	out("%s ret=%s errno=%s%s", name, rs, r < 0 ? en(conf_errno) : "-", cls);
	errno = conf_errno;
	return r;
}

/* ---- sockets ----------------------------------------------------------- */

struct sockaddr_in conf_addr(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return a;
}

int conf_listen(int port, int backlog)
{
	struct sockaddr_in a = conf_addr(port);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, backlog))
		conf_fatal("listen on the scenario's port");
	return l;
}

int conf_connect(int port)
{
	struct sockaddr_in a = conf_addr(port);
	int c = socket(AF_INET, SOCK_STREAM, 0);

	if (c < 0)
		conf_fatal("socket");
	conf_step("connect", 0);
	if (connect(c, (struct sockaddr *)&a, sizeof(a)))
		conf_fatal("connect");
	conf_elapsed();
	return c;
}

void conf_pair(int l, int port, int *c, int *s)
{
	*c = conf_connect(port);
	conf_step("accept", 0);
	*s = accept(l, NULL, NULL);
	if (*s < 0)
		conf_fatal("accept");
	conf_elapsed();
}

void conf_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK))
		conf_fatal("fcntl O_NONBLOCK");
}

ssize_t conf_expect(const char *name, int fd, size_t n)
{
	unsigned char buf[4096];
	size_t got = 0;
	ssize_t r = 0;
	int e = 0;

	if (n > sizeof(buf))
		conf_fatal("conf_expect: %zu bytes", n);
	conf_step(name, 0);
	while (got < n) {
		r = read(fd, buf + got, n - got);
		if (r <= 0) {
			e = r < 0 ? errno : 0;
			break;
		}
		got += (size_t)r;
	}
	conf_elapsed();
	if (got == n)
		out("%s got=%zu %s", name, got, hexdata(buf, (ssize_t)got));
	else
		out("%s got=%zu %s short: last ret=%zd errno=%s", name, got, hexdata(buf, (ssize_t)got),
		    r, en(e));
	return (ssize_t)got;
}

size_t conf_drain(int fd, int wait_ms, uint64_t *h)
{
	static unsigned char buf[1 << 16];
	size_t n = 0;
	uint64_t hh = FNV0;

	conf_step("drain", wait_ms + 10000);
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r > 0) {
			hh = fnv(buf, (size_t)r, hh);
			n += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			break;
		{
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, wait_ms) <= 0)
				break;
		}
	}
	conf_elapsed();
	if (h)
		*h = hh;
	return n;
}

void conf_send_pat(int fd, size_t n, uint64_t off)
{
	static unsigned char buf[1 << 16];
	size_t done = 0;

	conf_step("send_pat", 0);
	while (done < n) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		ssize_t r;

		pat_fill(buf, k, off + done);
		r = send(fd, buf, k, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			conf_fatal("send_pat");
		done += (size_t)r;
	}
	conf_elapsed();
}

size_t conf_fill2(int fd, uint64_t off, uint64_t *h, int settle)
{
	static unsigned char buf[1 << 16];
	size_t done = 0, size = sizeof(buf), at_poll = (size_t)-1;
	uint64_t hh = FNV0;
	int fl = fcntl(fd, F_GETFL);

	conf_nonblock(fd, 1);
	conf_step("fill", 20000);
	for (;;) {
		ssize_t r;

		pat_fill(buf, size, off + done);
		r = send(fd, buf, size, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			hh = fnv(buf, (size_t)r, hh);
			done += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			/* TCP may still take a smaller write (tail room of its
			 * last buffer, memory freed by acks): down to 1 byte. */
			if (size > 1) {
				size /= 4;
				continue;
			}
			if (!settle)
				break;
			/* Loopback may still be moving bytes across (delayed
			 * acks free TCP's memory without POLLOUT): settle, until
			 * a whole round takes nothing. */
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			if (poll(&p, 1, 100) == 0 && done == at_poll)
				break;
			at_poll = done;
			size = sizeof(buf);
			continue;
		}
		conf_fatal("fill");
	}
	conf_elapsed();
	fcntl(fd, F_SETFL, fl);
	if (h)
		*h = hh;
	return done;
}

size_t conf_fill(int fd, uint64_t off, uint64_t *h)
{
	return conf_fill2(fd, off, h, 1);
}

uint64_t pat_fnv(uint64_t off, size_t n)
{
	unsigned char buf[4096];
	uint64_t h = FNV0;

	for (size_t i = 0; i < n; i += sizeof(buf)) {
		size_t k = n - i < sizeof(buf) ? n - i : sizeof(buf);
		pat_fill(buf, k, off + i);
		h = fnv(buf, k, h);
	}
	return h;
}

void conf_sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

/* ---- helper threads ---------------------------------------------------- */

struct conf_later {
	pthread_t t;
	int delay_ms;
	conf_fn fn;
	void *arg;
};

static void *later_main(void *p)
{
	struct conf_later *l = p;

	conf_sleep_ms(l->delay_ms);
	l->fn(l->arg);
	return NULL;
}

struct conf_later *conf_later(int delay_ms, conf_fn fn, void *arg)
{
	struct conf_later *l = calloc(1, sizeof(*l));
	sigset_t all, old;

	if (!l)
		conf_fatal("calloc");
	l->delay_ms = delay_ms;
	l->fn = fn;
	l->arg = arg;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&l->t, NULL, later_main, l))
		conf_fatal("pthread_create");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return l;
}

void conf_join(struct conf_later *l)
{
	conf_join_within(l, "join-helper", 0);
}

void conf_join_within(struct conf_later *l, const char *name, int limit_ms)
{
	conf_step(name, limit_ms);
	pthread_join(l->t, NULL);
	conf_elapsed();
	free(l);
}

int conf_poll1t(const char *name, int fd, short events, int timeout_ms, int t_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r, e;
	double ms;

	conf_step(name, timeout_ms > 0 ? 10 * timeout_ms + 2000 : 0);
	r = poll(&p, 1, timeout_ms);
	e = errno;
	ms = conf_elapsed();
	if (t_ms > 0)
		out("%s ret=%d errno=%s revents=%s class=%s", name, r, r < 0 ? en(e) : "-",
		    pev(p.revents), conf_class(ms, t_ms));
	else
		out("%s ret=%d errno=%s revents=%s", name, r, r < 0 ? en(e) : "-", pev(p.revents));
	errno = e;
	return r;
}

int conf_poll1(const char *name, int fd, short events, int timeout_ms)
{
	return conf_poll1t(name, fd, events, timeout_ms, timeout_ms);
}

/* ---- child processes --------------------------------------------------- */

pid_t conf_fork(int *outfd)
{
	int p[2];
	pid_t pid;

	fflush(stdout);
	if (pipe(p))
		conf_fatal("pipe");
	pid = fork();
	if (pid < 0)
		conf_fatal("fork");
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 1);
		close(p[1]);
		conf_child();
		return 0;
	}
	close(p[1]);
	*outfd = p[0];
	return pid;
}

void conf_reap(const char *name, pid_t pid, int outfd)
{
	static char buf[1 << 16];
	size_t n = 0;
	int st = 0;
	char *line, *save = NULL;

	conf_step(name, 15000);
	for (;;) {
		ssize_t r = read(outfd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof(buf) - 1)
			break;
	}
	buf[n] = 0;
	close(outfd);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	conf_elapsed();
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		out("%s: %s", name, line);
	if (WIFEXITED(st))
		out("%s exit=%d", name, WEXITSTATUS(st));
	else
		out("%s signal=%s", name, WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st)) : "?");
}

size_t conf_hear(const char *name, int fd, size_t n, int expect_pat, uint64_t off)
{
	static unsigned char buf[1 << 16];
	unsigned char small[48];
	size_t got = 0;
	uint64_t h = FNV0;
	int why = 0, err = 0;

	conf_step(name, 30000);
	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		size_t want = n - got < sizeof(buf) ? n - got : sizeof(buf);
		ssize_t k;

		if (poll(&p, 1, CONF_QUIET_MS) <= 0) {
			why = 2;
			break;
		}
		k = recv(fd, buf, want, MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0) {
			why = k < 0 ? 3 : 1;
			err = errno;
			break;
		}
		if (got < sizeof(small))
			memcpy(small + got, buf,
			       (size_t)k < sizeof(small) - got ? (size_t)k : sizeof(small) - got);
		h = fnv(buf, (size_t)k, h);
		got += (size_t)k;
	}
	conf_elapsed();
	{
		char what[300];
		if (expect_pat)
			snprintf(what, sizeof(what), "match=%s",
				 h == pat_fnv(off, got) ? "yes" : "no");
		else
			snprintf(what, sizeof(what), "%s", hexdata(small, got < 48 ? (ssize_t)got : 48));
		out("%s got=%zu %s%s%s", name, got, what,
		    why == 2 ? " then nothing for " CONF_QUIET_TXT : why == 1 ? " then EOF" : why == 3 ? " then error=" : "",
		    why == 3 ? en(err) : "");
	}
	return got;
}

pthread_t conf_main_thread;
volatile sig_atomic_t conf_hits;

void conf_on_usr1(int sig)
{
	(void)sig;
	conf_hits++;
}

void conf_kick(void *unused)
{
	(void)unused;
	pthread_kill(conf_main_thread, SIGUSR1);
}
