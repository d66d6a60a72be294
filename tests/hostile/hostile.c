/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostile.h"
#include "link_internal.h" /* mpk__link_base, to see where attach mapped */

/* ------------------------------------------------------ memfds by hand */

void hs_hdr_init(struct mpk_link_hdr *h, uint64_t ring_bytes)
{
	memset(h, 0, sizeof(*h));
	h->magic = MPK_LINK_MAGIC;
	h->version = MPK_LINK_VERSION;
	h->hdr_bytes = MPK_LINK_HDR_BYTES;
	h->ring_bytes = ring_bytes;
	h->total_bytes = MPK_LINK_HDR_BYTES + 2 * ring_bytes;
	h->ring[0].geom = h->ring[1].geom = hs_geom0(ring_bytes);
}

int hs_memfd(const void *hdr, size_t hdr_len, uint64_t file_size, unsigned seals,
	     unsigned mfd_flags)
{
	int fd, r;

	fd = memfd_create(HS_MEMFD_NAME, MFD_CLOEXEC | mfd_flags);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)file_size) < 0)
		goto fail;
	if (hdr && hdr_len) {
		size_t n = hdr_len < file_size ? hdr_len : (size_t)file_size;

		if (n && pwrite(fd, hdr, n, 0) != (ssize_t)n)
			goto fail;
	}
	if (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)
		goto fail;
	return fd;
fail:
	r = errno ? -errno : -EIO;
	close(fd);
	return r;
}

int hs_memfd_valid(uint64_t ring_bytes)
{
	struct mpk_link_hdr h;

	hs_hdr_init(&h, ring_bytes);
	return hs_memfd(&h, sizeof(h), h.total_bytes, HS_SEALS_OK, MFD_ALLOW_SEALING);
}

int hs_count_maps(void)
{
	char line[1024];
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "memfd:" HS_MEMFD_NAME))
			n++;
	fclose(f);
	return n;
}

/* ------------------------------------------------------------ raw view */

int hs_raw_map(struct hs_raw *r, int fd)
{
	struct stat st;
	void *p;

	memset(r, 0, sizeof(*r));
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < (off_t)(MPK_LINK_HDR_BYTES + 2 * HS_PAGE))
		return -EINVAL;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->base = p;
	r->len = (size_t)st.st_size;
	r->cap = (r->len - MPK_LINK_HDR_BYTES) / 2;
	r->h = p;
	return 0;
}

void hs_raw_unmap(struct hs_raw *r)
{
	if (r->base)
		munmap(r->base, r->len);
	memset(r, 0, sizeof(*r));
}

#define HDR_FIELD(name, w) {#name, offsetof(struct mpk_link_hdr, name), w, -1, HS_ROLE_HDR}
#define RING_FIELD(r, name, w, role) \
	{"ring" #r "." #name, offsetof(struct mpk_link_hdr, ring[r].name), w, r, role}

const struct hs_field hs_fields[] = {
	HDR_FIELD(magic, 8),
	HDR_FIELD(version, 4),
	HDR_FIELD(hdr_bytes, 4),
	HDR_FIELD(ring_bytes, 8),
	HDR_FIELD(total_bytes, 8),
	RING_FIELD(0, tail, 8, HS_ROLE_TAIL),
	RING_FIELD(0, prod_flags, 4, HS_ROLE_PFLAGS),
	RING_FIELD(0, head, 8, HS_ROLE_HEAD),
	RING_FIELD(0, cons_flags, 4, HS_ROLE_CFLAGS),
	RING_FIELD(0, data_waiting, 4, HS_ROLE_WAIT),
	RING_FIELD(0, space_waiting, 4, HS_ROLE_WAIT),
	RING_FIELD(1, tail, 8, HS_ROLE_TAIL),
	RING_FIELD(1, prod_flags, 4, HS_ROLE_PFLAGS),
	RING_FIELD(1, head, 8, HS_ROLE_HEAD),
	RING_FIELD(1, cons_flags, 4, HS_ROLE_CFLAGS),
	RING_FIELD(1, data_waiting, 4, HS_ROLE_WAIT),
	RING_FIELD(1, space_waiting, 4, HS_ROLE_WAIT),
	/* Last, so that the fuzz corpus's field numbers keep their meaning. */
	RING_FIELD(0, geom, 8, HS_ROLE_GEOM),
	RING_FIELD(1, geom, 8, HS_ROLE_GEOM),
};
const size_t hs_nfields = sizeof(hs_fields) / sizeof(hs_fields[0]);

/* Atomic accesses: the other process reads these concurrently, and a torn
 * or compiler-merged store would test something else than a peer's store. */
uint64_t hs_get(const struct hs_raw *r, const struct hs_field *f)
{
	void *p = r->base + f->off;

	if (f->width == 8)
		return __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE);
	return __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
}

void hs_set(const struct hs_raw *r, const struct hs_field *f, uint64_t v)
{
	void *p = r->base + f->off;

	if (f->width == 8)
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
	else
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------ guarded attach */

int hs_attach_guarded(int fd, int side, struct mpk_link **out, struct hs_guard *g)
{
	struct stat st;
	uint8_t *res;
	size_t len;
	int r;

	g->lo = g->hi = NULL;
	if (fstat(fd, &st) < 0 || st.st_size <= 0)
		return mpk_link_attach(fd, side, out);
	len = ((size_t)st.st_size + HS_PAGE - 1) & ~(size_t)(HS_PAGE - 1);
	res = mmap(NULL, len + 2 * HS_PAGE, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return mpk_link_attach(fd, side, out);
	/* The hole is exactly the link's size and the highest free gap that
	 * fits, so the attach's mmap(NULL, ...) lands in it. */
	munmap(res + HS_PAGE, len);
	r = mpk_link_attach(fd, side, out);
	if (r == 0 && mpk__link_base(*out) == res + HS_PAGE) {
		g->lo = res;
		g->hi = res + HS_PAGE + len;
	} else {
		munmap(res, HS_PAGE);
		munmap(res + HS_PAGE + len, HS_PAGE);
	}
	return r;
}

void hs_detach_guarded(struct mpk_link *l, struct hs_guard *g)
{
	mpk_link_detach(l);
	if (g->lo)
		munmap(g->lo, HS_PAGE);
	if (g->hi)
		munmap(g->hi, HS_PAGE);
	g->lo = g->hi = NULL;
}

/* ---------------------------------------------------- doorbell/control */

ssize_t hs_send(int sock, const void *msg, size_t len, const int *fds, int nfds)
{
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t r;

	if (nfds < 0 || nfds > 4)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	do
		r = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t hs_recv(int sock, void *msg, size_t len, int *fds, int maxfds, int *nfds)
{
	struct iovec iov = {.iov_base = msg, .iov_len = len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;
	ssize_t r;

	*nfds = 0;
	do
		r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		int n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
			if (*nfds < maxfds)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	return r;
}

/* --------------------------------------------------------------- model */

void hs_view_load(struct hs_view *v, const struct hs_raw *r, int side)
{
	const struct mpk_ring_ctl *rx = &r->h->ring[!side], *tx = &r->h->ring[side];

	v->rx_tail = __atomic_load_n(&rx->tail, __ATOMIC_ACQUIRE);
	v->rx_pf = __atomic_load_n(&rx->prod_flags, __ATOMIC_ACQUIRE);
	v->tx_head = __atomic_load_n(&tx->head, __ATOMIC_ACQUIRE);
	v->tx_cf = __atomic_load_n(&tx->cons_flags, __ATOMIC_ACQUIRE);
	v->rx_geom = __atomic_load_n(&rx->geom, __ATOMIC_RELAXED);
}

void hs_model_init(struct hs_model *m, uint64_t cap, uint64_t rx_head, uint64_t tx_tail,
		   uint64_t tx_head)
{
	memset(m, 0, sizeof(*m));
	m->cap = cap;
	m->rx_head = m->rx_seen = rx_head;
	m->tx_tail = tx_tail;
	m->tx_head_seen = tx_head;
}

void hs_model_init_raw(struct hs_model *m, const struct hs_raw *r, int side)
{
	const struct mpk_ring_ctl *rx = &r->h->ring[!side], *tx = &r->h->ring[side];

	hs_model_init(m, r->cap, __atomic_load_n(&rx->head, __ATOMIC_ACQUIRE),
		      __atomic_load_n(&tx->tail, __ATOMIC_ACQUIRE),
		      __atomic_load_n(&tx->head, __ATOMIC_ACQUIRE));
}

__attribute__((format(printf, 2, 3)))
static const char *fail(struct hs_model *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->msg, sizeof(m->msg), fmt, ap);
	va_end(ap);
	return m->msg;
}

static const char *fail_view(struct hs_model *m, const char *what, ssize_t got, ssize_t exp,
			     const struct hs_view *v)
{
	return fail(m,
		    "%s returned %zd, the contract says %zd; peer wrote rx tail %#llx "
		    "prod_flags %#x, tx head %#llx cons_flags %#x; model rx_head %#llx "
		    "rx_seen %#llx eof %d@%#llx tx_tail %#llx tx_head_seen %#llx shut %d",
		    what, got, exp, (unsigned long long)v->rx_tail, v->rx_pf,
		    (unsigned long long)v->tx_head, v->tx_cf, (unsigned long long)m->rx_head,
		    (unsigned long long)m->rx_seen, m->rx_eof,
		    (unsigned long long)m->rx_eof_tail, (unsigned long long)m->tx_tail,
		    (unsigned long long)m->tx_head_seen, m->tx_shut);
}

/*
 * The reader's rules (ring.h, DESIGN.md "Rings and doorbells"): unknown
 * prod_flags bits, 0 <= tail - head <= cap violated, a tail behind one
 * already seen, a tail that moves after the peer's shutdown, or a geometry
 * other than the first (the rings here are no larger than
 * MPK_LINK_RING_START: they start at their full size and never grow) all
 * break the link. Otherwise the bytes below tail are there, and end of stream
 * comes once they are all read.
 */
static ssize_t read_expect(struct hs_model *m, const struct hs_view *v, size_t len, int peek)
{
	uint64_t avail = v->rx_tail - m->rx_head;
	uint64_t n;

	if ((v->rx_pf & ~MPK_PROD_VALID) || v->rx_geom != hs_geom0(m->cap) || avail > m->cap ||
	    avail < m->rx_seen - m->rx_head || (m->rx_eof && v->rx_tail != m->rx_eof_tail)) {
		m->broken = 1;
		return -ECONNRESET;
	}
	m->rx_seen = v->rx_tail;
	if (!m->rx_eof && v->rx_pf) {
		m->rx_eof = 1;
		m->rx_eof_tail = v->rx_tail;
	}
	if (!avail) {
		if (!m->rx_eof)
			return -EAGAIN;
		m->eof_seen = 1;
		return 0;
	}
	n = avail < len ? avail : len;
	if (!peek)
		m->rx_head += n;
	return (ssize_t)n;
}

const char *hs_check_read(struct hs_model *m, const struct hs_view *v, size_t len,
			  int peek, ssize_t got)
{
	struct hs_model before;
	ssize_t exp;

	if (m->broken)
		return got == -ECONNRESET ? NULL
					  : fail(m, "read(%zu) after -ECONNRESET returned %zd "
						    "(broken must be sticky)", len, got);
	if (!len)
		return got == 0 ? NULL : fail(m, "read(0) returned %zd", got);
	if (!v)
		m->loose = 1; /* the tail we did not see may now be the floor */
	if (m->loose) {
		if (got == -ECONNRESET) {
			m->broken = 1;
			return NULL;
		}
		if (m->eof_seen)
			return got == 0 ? NULL
					: fail(m, "read(%zu) after end of stream returned %zd",
					       len, got);
		if (got == 0) {
			m->eof_seen = 1;
			return NULL;
		}
		if (got == -EAGAIN)
			return NULL;
		if (got > 0 && (size_t)got <= len && (uint64_t)got <= m->cap) {
			if (!peek)
				m->rx_head += (uint64_t)got;
			return NULL;
		}
		return fail(m, "read(%zu%s) returned %zd: outside [0, min(len, cap)] "
			       "and not -EAGAIN/-ECONNRESET", len, peek ? ", PEEK" : "", got);
	}
	before = *m;
	exp = read_expect(m, v, len, peek);
	if (got != exp) {
		char what[64];

		snprintf(what, sizeof(what), "read(%zu%s)", len, peek ? ", PEEK" : "");
		*m = before;
		return fail_view(m, what, got, exp, v);
	}
	return NULL;
}

/* The writer's rules: while the space known from the head it saw last
 * holds len, it does not look; when it looks, unknown cons_flags bits, or
 * a head outside [head seen before, our tail], break the link. */
static ssize_t write_expect(struct hs_model *m, const struct hs_view *v, size_t len)
{
	uint64_t space, n;

	if (m->cap - (m->tx_tail - m->tx_head_seen) >= len) {
		m->tx_tail += len;
		return (ssize_t)len;
	}
	if ((v->tx_cf & ~MPK_CONS_VALID) ||
	    v->tx_head - m->tx_head_seen > m->tx_tail - m->tx_head_seen) {
		m->broken = 1;
		return -ECONNRESET;
	}
	m->tx_head_seen = v->tx_head;
	if (v->tx_cf & MPK_CONS_CLOSED)
		return -EPIPE;
	space = m->cap - (m->tx_tail - v->tx_head);
	if (!space)
		return -EAGAIN;
	n = space < len ? space : len;
	m->tx_tail += n;
	return (ssize_t)n;
}

const char *hs_check_write(struct hs_model *m, const struct hs_view *v, size_t len,
			   ssize_t got)
{
	struct hs_model before;
	ssize_t exp;

	if (m->broken)
		return got == -ECONNRESET ? NULL
					  : fail(m, "write(%zu) after -ECONNRESET returned %zd "
						    "(broken must be sticky)", len, got);
	if (m->tx_shut)
		return got == -EPIPE ? NULL
				     : fail(m, "write(%zu) after shutdown returned %zd", len, got);
	if (!len)
		return got == 0 ? NULL : fail(m, "write(0) returned %zd", got);
	if (!v)
		m->loose = 1;
	if (m->loose) {
		if (got == -ECONNRESET) {
			m->broken = 1;
			return NULL;
		}
		if (got == -EPIPE || got == -EAGAIN)
			return NULL;
		if (got > 0 && (size_t)got <= len && (uint64_t)got <= m->cap) {
			m->tx_tail += (uint64_t)got;
			return NULL;
		}
		return fail(m, "write(%zu) returned %zd: outside [1, min(len, cap)] and not "
			       "-EAGAIN/-EPIPE/-ECONNRESET", len, got);
	}
	before = *m;
	exp = write_expect(m, v, len);
	if (got != exp) {
		char what[64];

		snprintf(what, sizeof(what), "write(%zu)", len);
		*m = before;
		return fail_view(m, what, got, exp, v);
	}
	return NULL;
}

static const char *check_shut(struct hs_model *m, int got, const char *what)
{
	int exp = m->broken ? -ECONNRESET : 0;

	m->tx_shut = 1;
	return got == exp ? NULL : fail(m, "%s returned %d, expected %d", what, got, exp);
}

const char *hs_check_shutdown(struct hs_model *m, int got)
{
	return check_shut(m, got, "shutdown_write");
}

const char *hs_check_close(struct hs_model *m, int got)
{
	return check_shut(m, got, "close");
}

const char *hs_check_readable(struct hs_model *m, const struct hs_view *v, ssize_t got)
{
	if (m->broken)
		return got == -ECONNRESET ? NULL
					  : fail(m, "readable after -ECONNRESET returned %zd", got);
	if (got < 0 || (uint64_t)got > m->cap)
		return fail(m, "readable returned %zd: outside [0, cap %llu]", got,
			    (unsigned long long)m->cap);
	/* Advisory, but exact whenever the peer's tail is in range. */
	if (v && !m->loose && v->rx_tail - m->rx_head <= m->cap &&
	    (uint64_t)got != v->rx_tail - m->rx_head)
		return fail_view(m, "readable", got, (ssize_t)(v->rx_tail - m->rx_head), v);
	return NULL;
}

const char *hs_check_writable(struct hs_model *m, const struct hs_view *v, ssize_t got)
{
	uint64_t used;

	if (m->broken)
		return got == -ECONNRESET ? NULL
					  : fail(m, "writable after -ECONNRESET returned %zd", got);
	if (got != -EPIPE && (got < 0 || (uint64_t)got > m->cap))
		return fail(m, "writable returned %zd: outside [0, cap %llu] and not -EPIPE",
			    got, (unsigned long long)m->cap);
	if (!v || m->loose)
		return NULL;
	used = m->tx_tail - v->tx_head;
	if (used > m->cap)
		return NULL; /* a lie the next write catches; advisory until then */
	if (!v->tx_cf && !m->tx_shut) {
		if (got != (ssize_t)(m->cap - used))
			return fail_view(m, "writable", got, (ssize_t)(m->cap - used), v);
	} else if (got != -EPIPE && got != (ssize_t)(m->cap - used)) {
		/* A write would fail with -EPIPE: that or the space is fine. */
		return fail_view(m, "writable (write side closed)", got, -EPIPE, v);
	}
	return NULL;
}

#define ALL_EVENTS (MPK_LINK_IN | MPK_LINK_OUT | MPK_LINK_RDHUP | MPK_LINK_HUP | MPK_LINK_ERR)

const char *hs_check_poll(struct hs_model *m, const struct hs_view *v, unsigned got)
{
	uint64_t avail, used;
	unsigned exp = 0, ign = 0;

	if (got & ~ALL_EVENTS)
		return fail(m, "poll returned unknown bits %#x", got);
	if (m->broken) {
		/* Broken: a waiter must wake, and both calls fail at once. */
		unsigned need = MPK_LINK_ERR | MPK_LINK_IN | MPK_LINK_OUT;

		return (got & need) == need ? NULL
					    : fail(m, "poll on a broken link returned %#x", got);
	}
	if (got & MPK_LINK_ERR)
		return fail(m, "poll returned ERR (%#x) but no call returned -ECONNRESET", got);
	if (!v || m->loose)
		return NULL;
	avail = v->rx_tail - m->rx_head;
	used = m->tx_tail - v->tx_head;
	if ((v->rx_pf & ~MPK_PROD_VALID) || (v->tx_cf & ~MPK_CONS_VALID) || avail > m->cap ||
	    used > m->cap)
		return NULL; /* lies the next read or write catches */
	if (avail || v->rx_pf)
		exp |= MPK_LINK_IN;
	if (v->rx_pf)
		exp |= MPK_LINK_RDHUP;
	if (v->rx_pf & MPK_PROD_CLOSED)
		exp |= MPK_LINK_HUP;
	if (used < m->cap || v->tx_cf || m->tx_shut)
		exp |= MPK_LINK_OUT;
	/* A peer that takes its shutdown back: we keep end of stream, poll
	 * may go by the flags it shows now. */
	if (m->rx_eof && !v->rx_pf)
		ign = MPK_LINK_RDHUP | (avail ? 0 : MPK_LINK_IN);
	if ((got & ~ign) != (exp & ~ign)) {
		char what[64];

		snprintf(what, sizeof(what), "poll (ignoring %#x)", ign);
		return fail_view(m, what, (ssize_t)got, (ssize_t)exp, v);
	}
	return NULL;
}

const char *hs_check_einval(struct hs_model *m, ssize_t got)
{
	return got == -EINVAL ? NULL : fail(m, "bad arguments returned %zd, not -EINVAL", got);
}

size_t hs_iov_len(const struct iovec *iov, int iovcnt)
{
	size_t t = 0;

	for (int i = 0; i < iovcnt; i++)
		t += iov[i].iov_len;
	return t;
}

ssize_t hs_ring_cmp(const uint8_t *data, uint64_t cap, uint64_t pos,
		    const struct iovec *iov, int iovcnt, size_t n)
{
	size_t k = 0;

	for (int i = 0; i < iovcnt && k < n; i++) {
		const uint8_t *b = iov[i].iov_base;
		size_t left = iov[i].iov_len < n - k ? iov[i].iov_len : n - k, j = 0;

		while (j < left) {
			size_t off = (size_t)((pos + k) & (cap - 1));
			size_t c = cap - off < left - j ? cap - off : left - j;

			if (memcmp(b + j, data + off, c)) {
				while (b[j] == data[off])
					j++, k++, off++;
				return (ssize_t)k;
			}
			j += c;
			k += c;
		}
	}
	return -1;
}
