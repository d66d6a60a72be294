/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "atomics.h"
#include "link_internal.h"
#include "pkru.h"
#include "poly1305.h"
#include "sys.h"

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
/* Bounds one arm's drain so a peer flooding doorbells cannot hold us. */
#define DRAIN_MAX_CALLS 8
/* A large write or read is published this many bytes at a time, so the
 * peer copies its end while we copy ours instead of after (measured in
 * docs/PERFORMANCE.md, "Large messages"). */
#define PUBLISH_CHUNK (64u * 1024)

static int mark_broken(struct mpk_link *l);

static int valid_ring_bytes(uint64_t n)
{
	return n >= MPK_LINK_RING_MIN && n <= MPK_LINK_RING_MAX && !(n & (n - 1));
}

static unsigned log2_of(uint64_t pow2)
{
	return (unsigned)__builtin_ctzll(pow2);
}

/* A geometry as published (by the peer, or a process sharing our side):
 * a capacity that is a power of two within the ring's room, a base that
 * is a multiple of 4096. Returns 0 and sets *base, *cap, or -1. */
static int geom_decode(const struct mpk_link *l, uint64_t g, uint64_t *base, uint64_t *cap)
{
	unsigned s = MPK_GEOM_SHIFT(g);

	if ((g & MPK_GEOM_LOW & ~MPK_GEOM_SHIFT_MASK) || s < log2_of(MPK_LINK_RING_MIN) ||
	    s > log2_of(l->ring_bytes))
		return -1;
	*base = MPK_GEOM_BASE(g);
	*cap = UINT64_C(1) << s;
	return 0;
}

static void set_tx_geom(struct mpk_link *l, uint64_t base, uint64_t cap)
{
	mpk_store_relaxed(&l->tx_base, base);
	mpk_store_relaxed(&l->tx_cap, cap);
}

static void set_rx_geom(struct mpk_link *l, uint64_t base, uint64_t cap)
{
	mpk_store_relaxed(&l->rx_base, base);
	mpk_store_relaxed(&l->rx_cap, cap);
}

/* Where index pos of our TX (RX) ring is in its data. Writer's (reader's)
 * thread. */
static inline size_t tx_off(const struct mpk_link *l, uint64_t pos)
{
	return (size_t)((pos - l->tx_base) & (l->tx_cap - 1));
}

static inline size_t rx_off(const struct mpk_link *l, uint64_t pos)
{
	return (size_t)((pos - l->rx_base) & (l->rx_cap - 1));
}

/*
 * Whether the reader may take geometry (base, cap) in place of its own:
 * the same; or larger with a base that puts each byte it has yet to read
 * (those it saw: up to rx_tail_seen) where it already is; or, while the
 * ring is not grown and it has no such byte, any base at a capacity no
 * smaller (the writer moved an empty ring's base, and may have grown it
 * since) (link_abi.h).
 * Reader's thread.
 */
static int rx_geom_ok(const struct mpk_link *l, uint64_t base, uint64_t cap)
{
	uint64_t seen = l->rx_tail_seen - base;

	if (cap == l->rx_cap && base == l->rx_base)
		return 1;
	if (l->rx_head == l->rx_tail_seen && l->rx_cap < l->ring_bytes)
		return cap >= l->rx_cap;
	return cap > l->rx_cap && !((base - l->rx_base) & (l->rx_cap - 1)) &&
	       l->rx_head - base <= seen && seen <= l->rx_cap;
}

int mpk_link_create(size_t ring_bytes)
{
	return mpk_link_create_flags(ring_bytes, 0);
}

/* The capacity each ring of a link with room ring_bytes starts at. */
static uint64_t ring_start(uint64_t ring_bytes)
{
	return ring_bytes < MPK_LINK_RING_START ? ring_bytes : MPK_LINK_RING_START;
}

/* A new link's header, of generation gen. */
static void hdr_init(struct mpk_link_hdr *h, uint64_t ring_bytes, unsigned flags, uint32_t gen)
{
	memset(h, 0, sizeof(*h));
	h->magic = MPK_LINK_MAGIC;
	h->version = MPK_LINK_VERSION;
	h->hdr_bytes = MPK_LINK_HDR_BYTES;
	h->ring_bytes = ring_bytes;
	h->total_bytes = MPK_LINK_HDR_BYTES + 2 * ring_bytes;
	h->flags = flags & MPK_LINK_MAC ? MPK_HDR_MAC : 0;
	h->ring[0].geom = h->ring[1].geom = MPK_GEOM(0, log2_of(ring_start(ring_bytes)));
	h->gen = gen;
}

int mpk_link_create_flags(size_t ring_bytes, unsigned flags)
{
	struct mpk_link_hdr h;
	uint64_t total;
	int fd, r;

	if (!ring_bytes)
		ring_bytes = MPK_LINK_RING_DEFAULT;
	if (!valid_ring_bytes(ring_bytes) || (flags & ~MPK_LINK_MAC))
		return -EINVAL;
	total = MPK_LINK_HDR_BYTES + 2 * (uint64_t)ring_bytes;

	fd = mpk__sys()->memfd_create("mpklink-link", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)total) < 0)
		goto fail_errno;
	/* Written, not mapped: a mapping, its page fault and its unmapping
	 * cost the launcher ~30 us a link here (page-table updates are slow
	 * in this VM), on the path of every connection's setup. */
	hdr_init(&h, ring_bytes, flags, 0);
	r = (int)pwrite(fd, &h, sizeof(h), 0);
	if (r != (int)sizeof(h)) {
		if (r >= 0)
			errno = EIO;
		goto fail_errno;
	}
	if (mpk__sys()->fcntl(fd, F_ADD_SEALS, REQUIRED_SEALS) < 0)
		goto fail_errno;
	return fd;

fail_errno:
	r = -errno;
	mpk__sys()->close(fd);
	return r;
}

int mpk_link_recycle(int fd, size_t ring_bytes, unsigned flags)
{
	static const uint8_t zero[4096];
	struct mpk_link_hdr h, n;
	uint64_t start;

	if (!ring_bytes)
		ring_bytes = MPK_LINK_RING_DEFAULT;
	if (!valid_ring_bytes(ring_bytes) || (flags & ~MPK_LINK_MAC))
		return -EINVAL;
	start = ring_start(ring_bytes);
	/* A copy: the sides' stores (mpk_link_release's release stores, the
	 * rings') are visible to a read by the kernel after them. */
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -ESTALE;
	hdr_init(&n, ring_bytes, flags, h.gen + 1);
	if (h.magic != n.magic || h.version != n.version || h.hdr_bytes != n.hdr_bytes ||
	    h.ring_bytes != n.ring_bytes || h.total_bytes != n.total_bytes || h.flags != n.flags)
		return -ESTALE;
	/* Both sides done: the client's, and the server's that took it (or
	 * none could: the client never claimed it, or the server refused
	 * its claim, and never takes a link it refused). */
	if (h.released[1] != 1 ||
	    (h.claim && h.claim != MPK_CLAIM_REFUSED && h.released[0] != 1))
		return -EAGAIN;
	/* Only a link that never grew nor wrapped: its bytes are [0, tail)
	 * of each ring, cleared here, and it holds no more memory than a new
	 * one would after the same first bytes. */
	for (int r = 0; r < 2; r++)
		if (h.ring[r].geom != n.ring[r].geom || h.ring[r].tail > start ||
		    h.ring[r].head > h.ring[r].tail)
			return -ESTALE;
	/* The last connection's bytes are not the next one's to read. */
	for (int r = 0; r < 2; r++) {
		off_t at = (off_t)(MPK_LINK_HDR_BYTES + (uint64_t)r * ring_bytes);

		for (uint64_t done = 0; done < h.ring[r].tail;) {
			size_t k = h.ring[r].tail - done < sizeof(zero) ? h.ring[r].tail - done
									: sizeof(zero);

			if (pwrite(fd, zero, k, at + (off_t)done) != (ssize_t)k)
				return -ESTALE;
			done += k;
		}
	}
	if (pwrite(fd, &n, sizeof(n), 0) != (ssize_t)sizeof(n))
		return -ESTALE;
	return 0;
}

/* What this process has mapped of links (mpk_link_mapped_bytes), kept
 * mappings included. */
static uint64_t mapped_bytes;

/*
 * Mappings kept after detach, of links this process released: the link's
 * creator may make it over and hand it to us again (mpk_link_recycle),
 * and an attach that finds its memfd here takes the mapping back: no
 * mmap, no page faults, and no munmap (with its TLB shootdown in a
 * threaded program) per connection. Newest last; the oldest is unmapped
 * when full. Guarded by a try-lock: a fork while another thread holds it
 * leaves the child without the cache, never waiting.
 */
#define MAP_KEEP 64
static struct kept {
	dev_t dev;
	ino_t ino;
	void *base;
	size_t len;
} kept[MAP_KEEP];
static int nkept, kept_lock;

static int kept_trylock(void)
{
	return mpk_xchg(&kept_lock, 1) == 0; /* pairs with kept_unlock's release */
}

static void kept_unlock(void)
{
	mpk_store_release(&kept_lock, 0);
}

/* The mapping kept for (dev, ino, len), taken out of the cache, or NULL. */
static void *map_take(dev_t dev, ino_t ino, size_t len)
{
	void *base = NULL;

	if (!kept_trylock())
		return NULL;
	for (int i = nkept; i-- > 0;) {
		if (kept[i].dev == dev && kept[i].ino == ino && kept[i].len == len) {
			base = kept[i].base;
			memmove(kept + i, kept + i + 1, (size_t)(nkept - i - 1) * sizeof(*kept));
			nkept--;
			break;
		}
	}
	kept_unlock();
	return base;
}

/* Keeps l's mapping, or unmaps it. */
static void map_keep(const struct mpk_link *l)
{
	struct kept old = {0};

	if (!kept_trylock()) {
		munmap(l->base, l->map_len);
		mpk_fetch_add_relaxed(&mapped_bytes, -(uint64_t)l->map_len);
		return;
	}
	if (nkept == MAP_KEEP) {
		old = kept[0];
		memmove(kept, kept + 1, (MAP_KEEP - 1) * sizeof(*kept));
		nkept--;
	}
	kept[nkept++] = (struct kept){l->dev, l->ino, l->base, l->map_len};
	kept_unlock();
	if (old.base) {
		munmap(old.base, old.len);
		mpk_fetch_add_relaxed(&mapped_bytes, -(uint64_t)old.len);
	}
}

int mpk_link_attach(int fd, int side, struct mpk_link **out)
{
	struct mpk_link_hdr *h;
	struct mpk_link *l;
	uint64_t magic, ring_bytes, total;
	uint32_t version, hdr_bytes, hflags, gen;
	struct stat st;
	int seals, r;
	void *map;

	*out = NULL;
	if (side != 0 && side != 1)
		return -EINVAL;
	r = mpk_guard_init_env();
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	seals = mpk__sys()->fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return -EINVAL; /* not a memfd */
	if ((seals & REQUIRED_SEALS) != REQUIRED_SEALS ||
	    (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return -EINVAL;
	if (st.st_size < (off_t)(MPK_LINK_HDR_BYTES + 2 * (uint64_t)MPK_LINK_RING_MIN) ||
	    st.st_size > (off_t)(MPK_LINK_HDR_BYTES + 2 * (uint64_t)MPK_LINK_RING_MAX))
		return -EINVAL;

	/* The seals fix the size, so the mapping cannot SIGBUS under us. A
	 * kept one was tagged when it was made. */
	map = map_take(st.st_dev, st.st_ino, (size_t)st.st_size);
	if (map) {
		mpk_fetch_add_relaxed(&mapped_bytes, -(uint64_t)st.st_size); /* counted again */
	} else {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			return -errno;
		r = mpk__guard_tag(map, (size_t)st.st_size);
		if (r < 0)
			goto err_unmap;
	}

	/* Read once: the peer may change the header while we look at it. */
	h = map;
	mpk__guard_open();
	magic = mpk_load_relaxed(&h->magic);
	version = mpk_load_relaxed(&h->version);
	hdr_bytes = mpk_load_relaxed(&h->hdr_bytes);
	ring_bytes = mpk_load_relaxed(&h->ring_bytes);
	total = mpk_load_relaxed(&h->total_bytes);
	hflags = mpk_load_relaxed(&h->flags);
	/* Pairs with nothing: the creator wrote it before it handed out the
	 * fd (a system call later). */
	gen = mpk_load_relaxed(&h->gen);
	mpk__guard_close();
	r = -EPROTO;
	if ((hflags & ~MPK_HDR_VALID) || magic != MPK_LINK_MAGIC || version != MPK_LINK_VERSION ||
	    hdr_bytes != MPK_LINK_HDR_BYTES || !valid_ring_bytes(ring_bytes) ||
	    total != (uint64_t)st.st_size || total != MPK_LINK_HDR_BYTES + 2 * ring_bytes)
		goto err_unmap;

	l = calloc(1, sizeof(*l));
	r = -ENOMEM;
	if (!l)
		goto err_unmap;
	l->base = map;
	l->map_len = (size_t)st.st_size;
	mpk_fetch_add_relaxed(&mapped_bytes, (uint64_t)l->map_len);
	l->side = side;
	l->gen = gen;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->ring_bytes = ring_bytes;
	l->tx = &h->ring[side];
	l->rx = &h->ring[!side];
	l->tx_data = (uint8_t *)map + MPK_LINK_HDR_BYTES + (uint64_t)side * ring_bytes;
	l->rx_data = (uint8_t *)map + MPK_LINK_HDR_BYTES + (uint64_t)!side * ring_bytes;
	l->hdr_flags = hflags;
	/* A frame and its overhead fit the ring twice: a writer can always
	 * make progress while the reader holds the other half. */
	l->frame_max = ring_bytes / 2 - MPK_FRAME_HDR - MPK_FRAME_TAG < MPK_FRAME_MAX
			       ? (uint32_t)(ring_bytes / 2 - MPK_FRAME_HDR - MPK_FRAME_TAG)
			       : MPK_FRAME_MAX;
	l->bell_fd = -1;
	l->bell_wait = -1;
	l->bell_ring = -1;
	/* Start from what is there: a link may be attached after the peer
	 * already wrote (the server's first bytes race the client's attach). */
	r = -EPROTO; /* indices no honest creator or peer could have left */
	if (mpk_link_resync(l) < 0) {
		free(l);
		goto err_unmap;
	}
	*out = l;
	return 0;

err_unmap:
	munmap(map, (size_t)st.st_size);
	return r;
}

int mpk_link_resync(struct mpk_link *l)
{
	uint64_t tail, head, rhead, rtail, tg, rg, tbase, tcap, rbase, rcap;

	mpk__guard_open();
	/* Ours, as published: pairs with our own earlier release stores
	 * (made by this process before fork, or by the one we follow). */
	tail = mpk_load_acquire(&l->tx->tail);
	rhead = mpk_load_acquire(&l->rx->head);
	/* The peer's, as in tx_fetch and rx_fetch. */
	head = mpk_load_acquire(&l->tx->head);
	rtail = mpk_load_acquire(&l->rx->tail);
	/* After the tails, as in rx_fetch: the geometries of their bytes. */
	tg = mpk_load_relaxed(&l->tx->geom);
	rg = mpk_load_relaxed(&l->rx->geom);
	mpk__guard_close();
	if (geom_decode(l, tg, &tbase, &tcap) < 0 || geom_decode(l, rg, &rbase, &rcap) < 0 ||
	    tail - head > tcap || rtail - rhead > rcap)
		return mark_broken(l);
	set_tx_geom(l, tbase, tcap);
	set_rx_geom(l, rbase, rcap);
	mpk_store_relaxed(&l->tx_tail, tail);
	l->tx_head_seen = head;
	mpk_store_relaxed(&l->rx_head, rhead);
	l->rx_tail_seen = rhead;
	return 0;
}

void mpk_link_sync_rx(struct mpk_link *l)
{
	uint64_t rhead, rtail, rg, rbase, rcap;

	mpk__guard_open();
	/* Ours as published: another process that shares this side (a
	 * fork) may have read since we did. Pairs with its release store. */
	rhead = mpk_load_acquire(&l->rx->head);
	if (rhead == l->rx_head) {
		mpk__guard_close();
		return;
	}
	rtail = mpk_load_acquire(&l->rx->tail);
	rg = mpk_load_relaxed(&l->rx->geom); /* after tail, as in rx_fetch */
	mpk__guard_close();
	if (geom_decode(l, rg, &rbase, &rcap) < 0 || rcap < l->rx_cap || rtail - rhead > rcap ||
	    l->mac) {
		/* Out of range, or a MAC link's frame state we cannot take
		 * over mid-stream. */
		mark_broken(l);
		return;
	}
	set_rx_geom(l, rbase, rcap);
	mpk_store_relaxed(&l->rx_head, rhead);
	l->rx_tail_seen = rhead;
}

void mpk_link_sync_tx(struct mpk_link *l)
{
	uint64_t tail, head, g, base, cap;

	mpk__guard_open();
	tail = mpk_load_acquire(&l->tx->tail);
	if (tail == l->tx_tail) {
		mpk__guard_close();
		return;
	}
	head = mpk_load_acquire(&l->tx->head);
	/* The other writer grew the ring before it published that tail. */
	g = mpk_load_relaxed(&l->tx->geom);
	mpk__guard_close();
	if (geom_decode(l, g, &base, &cap) < 0 || cap < l->tx_cap || tail - head > cap || l->mac) {
		mark_broken(l);
		return;
	}
	set_tx_geom(l, base, cap);
	mpk_store_relaxed(&l->tx_tail, tail);
	l->tx_head_seen = head;
}

uint64_t mpk_link_mapped_bytes(void)
{
	return mpk_load_relaxed(&mapped_bytes);
}

void mpk_link_detach(struct mpk_link *l)
{
	if (!l)
		return;
	/* Kept only where it may come back: released, and never grown (a
	 * grown link is not made over, and its pages would stay). */
	if (l->released && mpk_load_relaxed(&l->tx_cap) == ring_start(l->ring_bytes) &&
	    mpk_load_relaxed(&l->rx_cap) == ring_start(l->ring_bytes)) {
		map_keep(l);
	} else {
		munmap(l->base, l->map_len);
		mpk_fetch_add_relaxed(&mapped_bytes, -(uint64_t)l->map_len);
	}
	if (l->stage) {
		sodium_memzero(l->stage, MPK_FRAME_HDR + l->frame_max + MPK_FRAME_TAG);
		free(l->stage);
	}
	mpk_poly_free(l->tx_poly);
	mpk_poly_free(l->rx_poly);
	sodium_memzero(l->mac_key, sizeof(l->mac_key));
	free(l);
}

int mpk_link_mac_required(const struct mpk_link *l)
{
	return !!(l->hdr_flags & MPK_HDR_MAC);
}

int mpk_link_claim(struct mpk_link *l, uint64_t cookie)
{
	struct mpk_link_hdr *h = (struct mpk_link_hdr *)l->base;

	if (l->side != 1 || !cookie)
		return -EINVAL;
	mpk__guard_open();
	/* Pairs with mpk_link_claimed's acquire load: the server that sees
	 * the claim sees it after the client's connect (a syscall) anyway;
	 * release keeps the order explicit. */
	mpk_store_release(&h->claim, cookie);
	mpk__guard_close();
	return 0;
}

uint64_t mpk_link_claimed(const struct mpk_link *l)
{
	const struct mpk_link_hdr *h = (const struct mpk_link_hdr *)l->base;
	uint64_t c;

	mpk__guard_open();
	c = mpk_load_acquire(&h->claim); /* pairs with mpk_link_claim's store */
	mpk__guard_close();
	return c;
}

uint64_t mpk_claim_of_addr(const uint8_t addr[16], unsigned port)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	return MPK_CLAIM_ADDR | (uint64_t)h << 16 | (port & 0xffffu);
}

int mpk_link_claim_swap(struct mpk_link *l, uint64_t expect, uint64_t value)
{
	struct mpk_link_hdr *h = (struct mpk_link_hdr *)l->base;
	int won;

	if (l->side == 0 && !value)
		return -EINVAL;
	mpk__guard_open();
	/* Both sides swap; the first decides (mpk_link_claimed's acquire
	 * load sees whichever won). */
	won = mpk_cas(&h->claim, &expect, value);
	mpk__guard_close();
	return won ? 0 : -EALREADY;
}

int mpk_link_take(struct mpk_link *l)
{
	struct mpk_link_hdr *h = (struct mpk_link_hdr *)l->base;
	int won;

	mpk__guard_open();
	won = mpk_xchg(&h->taken, 1u) == 0; /* one of the holders wins */
	mpk__guard_close();
	return won ? 0 : -EALREADY;
}

void mpk_link_release(struct mpk_link *l)
{
	struct mpk_link_hdr *h = (struct mpk_link_hdr *)l->base;

	mpk__guard_open();
	/* After every access of ours: pairs with the creator's read of the
	 * header (mpk_link_recycle's pread, a kernel copy after it). */
	mpk_store_release(&h->released[l->side], 1u);
	mpk__guard_close();
	l->released = 1;
}

int mpk_link_stale(const struct mpk_link *l)
{
	const struct mpk_link_hdr *h = (const struct mpk_link_hdr *)l->base;
	uint32_t g;

	mpk__guard_open();
	/* The creator's pwrite came before it handed the link out again,
	 * and so before any claim a look here could act on. */
	g = mpk_load_relaxed(&h->gen);
	mpk__guard_close();
	return g != l->gen;
}

uint32_t mpk_link_gen(const struct mpk_link *l)
{
	return l->gen;
}

int mpk_link_taken(const struct mpk_link *l)
{
	const struct mpk_link_hdr *h = (const struct mpk_link_hdr *)l->base;
	uint32_t t;

	mpk__guard_open();
	t = mpk_load_relaxed(&h->taken);
	mpk__guard_close();
	return t != 0;
}

int mpk_link_set_mac(struct mpk_link *l, const uint8_t key[MPK_LINK_MAC_KEY_BYTES])
{
	if (!(l->hdr_flags & MPK_HDR_MAC) || l->mac)
		return -EINVAL;
	l->stage = malloc(MPK_FRAME_HDR + l->frame_max + MPK_FRAME_TAG);
	if (!l->stage || mpk_poly_new(&l->tx_poly) < 0 || mpk_poly_new(&l->rx_poly) < 0) {
		free(l->stage);
		l->stage = NULL;
		mpk_poly_free(l->tx_poly);
		mpk_poly_free(l->rx_poly);
		l->tx_poly = l->rx_poly = NULL;
		return -ENOMEM;
	}
	memcpy(l->mac_key, key, sizeof(l->mac_key));
	l->mac = 1;
	return 0;
}

size_t mpk_link_ring_bytes(const struct mpk_link *l)
{
	return (size_t)l->ring_bytes;
}

void mpk_link_set_doorbell(struct mpk_link *l, int fd, mpk_send_fn send_fn,
			   mpk_recv_fn recv_fn)
{
	l->bell_fd = fd;
	l->bell_send = send_fn ? send_fn : mpk__sys()->send;
	l->bell_recv = recv_fn ? recv_fn : mpk__sys()->recv;
}

void mpk_link_set_bells(struct mpk_link *l, int wait_fd, int ring_fd)
{
	l->bell_wait = wait_fd;
	l->bell_ring = ring_fd;
}

int mpk_link_bells_create(int bells[2])
{
	bells[0] = mpk__sys()->eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (bells[0] < 0)
		return -errno;
	bells[1] = mpk__sys()->eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (bells[1] < 0) {
		int e = errno;

		mpk__sys()->close(bells[0]);
		bells[0] = -1;
		return -e;
	}
	return 0;
}

/* The inode the kernel's eventfds share (anon_inode_getfile's, which
 * timerfds, signalfds, epoll and inotify fds share too), from one of our
 * own: known, or not (then every check takes the slow way). */
static pthread_once_t anon_once = PTHREAD_ONCE_INIT;
static int anon_known;
static dev_t anon_dev;
static ino_t anon_ino;

static void anon_learn(void)
{
	int fd = mpk__sys()->eventfd(0, EFD_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0) {
		anon_dev = st.st_dev;
		anon_ino = st.st_ino;
		anon_known = 1;
	}
	mpk__sys()->close(fd);
}

int mpk_link_bell_check(int fd)
{
	char path[64], target[32];
	struct stat st;
	ssize_t n;
	int fl;

	/* The quick way (a client's launcher checks two bells per link it
	 * gets: readlink of /proc/self/fd costs 2.8 us here, this 0.45): a
	 * file of the shared anonymous inode whose write takes a count of
	 * zero. Of the files there, eventfd's does; timerfd, signalfd, epoll
	 * and inotify have no write, fanotify refuses a response of 0. A
	 * device's file there with a write of its own (vfio) would pass: the
	 * peer's own device, which it could write itself, and a link that
	 * then fails as the peer made it. Adding zero changes nobody's count.
	 * Anything else is decided by its name. */
	pthread_once(&anon_once, anon_learn);
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!(anon_known && st.st_dev == anon_dev && st.st_ino == anon_ino &&
	      eventfd_write(fd, 0) == 0)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			return errno == ENOENT ? -EBADF : -errno;
		target[n] = 0;
		if (strcmp(target, "anon_inode:[eventfd]") != 0)
			return -EPROTO;
	}
	/* A blocking bell would let the peer stop us in ring_bell. */
	fl = mpk__sys()->fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && mpk__sys()->fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return -errno;
	return 0;
}

void mpk_link_get_stats(const struct mpk_link *l, struct mpk_link_stats *st)
{
	st->tx_bytes = mpk_load_relaxed(&l->stats.tx_bytes);
	st->rx_bytes = mpk_load_relaxed(&l->stats.rx_bytes);
	st->tx_calls = mpk_load_relaxed(&l->stats.tx_calls);
	st->rx_calls = mpk_load_relaxed(&l->stats.rx_calls);
	st->bells_sent = mpk_load_relaxed(&l->stats.bells_sent);
	st->bells_drained = mpk_load_relaxed(&l->stats.bells_drained);
}

static inline int is_broken(struct mpk_link *l)
{
	return mpk_load_relaxed(&l->broken);
}

/* Sticky: the peer broke the protocol. Nothing it wrote is trusted again. */
static int mark_broken(struct mpk_link *l)
{
	mpk_store_relaxed(&l->broken, 1);
	return -ECONNRESET;
}

void mpk_link_break(struct mpk_link *l)
{
	mark_broken(l);
}

static void ring_bell(struct mpk_link *l)
{
	static const char b = 1;
	ssize_t r;

	if (l->bell_ring >= 0) {
		/* glibc's eventfd_write calls its internal write: not the
		 * preload's. EAGAIN only at 2^64-2 unread rings: the peer
		 * has plenty to wake for. */
		if (eventfd_write(l->bell_ring, 1) == 0)
			mpk_fetch_add_relaxed(&l->stats.bells_sent, 1);
		return;
	}
	if (l->bell_fd < 0)
		return;
	do
		r = l->bell_send(l->bell_fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	/* EAGAIN: bytes are already pending, the peer will wake.
	 * Anything else: the peer is gone, and its hang-up wakes us. */
	if (r == 1)
		mpk_fetch_add_relaxed(&l->stats.bells_sent, 1);
}

/*
 * Reader side: how many bytes the peer has published. Guard open.
 * Returns the count, or -ECONNRESET. Sets *eof when no more will come.
 * judge 0, for a look in the middle of a read that already has bytes: a
 * lie is 0, not a break, and the next call judges it (the bytes this one
 * returns were checked, and a read that fails copies nothing).
 */
static int64_t rx_fetch_j(struct mpk_link *l, int *eof, int judge)
{
	uint32_t pf;
	uint64_t tail, avail, g, base, cap;
	int gone;

	/* A doorbell hang-up seen before the tail load makes that tail final:
	 * the peer's last ring stores precede its socket's close. */
	gone = mpk_load_acquire(&l->peer_gone);
	/* Flags before tail: pairs with the store_release of prod_flags in
	 * shutdown/close, which follows the producer's last tail store. */
	pf = mpk_load_acquire(&l->rx->prod_flags);
	/* Pairs with the store_release of tail in writev: the bytes below
	 * tail are in the ring before we see it. */
	tail = mpk_load_acquire(&l->rx->tail);
	/* After tail, ordered by its acquire: the producer stores a new
	 * geometry before the tail store that covers the first byte it
	 * places (tx_grow_now). */
	g = mpk_load_relaxed(&l->rx->geom);
	avail = tail - l->rx_head;
	/* In range, and never behind what we saw before; a geometry that
	 * leaves every byte we saw where it was. */
	if ((pf & ~MPK_PROD_VALID) || geom_decode(l, g, &base, &cap) < 0 ||
	    !rx_geom_ok(l, base, cap) || avail > cap || avail < l->rx_tail_seen - l->rx_head ||
	    (l->rx_eof && tail != l->rx_eof_tail))
		return judge ? mark_broken(l) : 0;
	if (cap != l->rx_cap || base != l->rx_base)
		set_rx_geom(l, base, cap);
	l->rx_tail_seen = tail;
	if (!l->rx_eof && (pf || gone)) {
		l->rx_eof = 1;
		l->rx_eof_tail = tail;
	}
	*eof = l->rx_eof;
	return (int64_t)avail;
}

static int64_t rx_fetch(struct mpk_link *l, int *eof)
{
	return rx_fetch_j(l, eof, 1);
}

/*
 * A reader's look at its ring asks for the line the next bytes land on.
 * While the ring is empty each look repeats it, so the line is fetched
 * again soon after the writer's copy takes it away, and it travels while
 * the reader still waits for tail: the two transfers of a small message
 * overlap instead of following each other. A poll that finds bytes sends
 * for them while its caller goes back to the program, which then reads
 * (docs/PERFORMANCE.md, "The reader prefetches"). A prefetch reads
 * nothing the program sees: what the peer
 * wrote there is judged, as ever, only by the copy after tail. Guard open.
 */
static inline void rx_prefetch(const struct mpk_link *l, uint64_t head)
{
	uint64_t off = (head - mpk_load_relaxed(&l->rx_base)) & (mpk_load_relaxed(&l->rx_cap) - 1);

	__builtin_prefetch(l->rx_data + off, 0, 3);
}

/*
 * Grows the TX ring to its full room if the bytes not yet read (as far as
 * we know: tx_head_seen) lie in one block of the present capacity, i.e.
 * do not straddle the ring's end: a base at that block's start then puts
 * each of them where it already is, and the reader may take the new
 * geometry whenever it sees it. The geometry
 * is published by our next tail store (release), which pairs with the
 * acquire of tail in rx_fetch. Returns 1 if grown. Writer, guard open.
 */
static int tx_grow_now(struct mpk_link *l)
{
	uint64_t c = l->tx_cap, h = l->tx_head_seen - l->tx_base, t = l->tx_tail - l->tx_base;
	uint64_t base;

	if (h != t && h / c != (t - 1) / c)
		return 0;
	base = l->tx_base + (h & ~(c - 1));
	set_tx_geom(l, base, l->ring_bytes);
	mpk_store_relaxed(&l->tx->geom, MPK_GEOM(base, log2_of(l->ring_bytes)));
	mpk_store_relaxed(&l->tx_grow, 0);
	return 1;
}

/*
 * Moves an empty ring's base to base, at the same capacity: published,
 * as a growth is, by our next tail store (rx_geom_ok takes it from a
 * reader that has read every byte it saw, which an empty ring's has).
 * Writer, guard open.
 */
static void tx_rebase(struct mpk_link *l, uint64_t base)
{
	set_tx_geom(l, base, l->tx_cap);
	mpk_store_relaxed(&l->tx->geom, MPK_GEOM(base, log2_of(l->tx_cap)));
}

/*
 * The smallest write that makes progress: one byte, or one MAC frame of
 * one byte.
 */
static uint64_t tx_atom(const struct mpk_link *l)
{
	return l->hdr_flags & MPK_HDR_MAC ? MPK_FRAME_HDR + MPK_FRAME_TAG + 1 : 1;
}

/*
 * Writer side: free space in the TX ring, at least want bytes of it when
 * there is that much. Guard open.
 * Returns the count, -EPIPE, or -ECONNRESET. judge 0 (the middle of a
 * write that already has bytes): a lie or a close is 0, the next call's.
 * from: where this call's bytes start.
 *
 * A ring not yet grown never holds unread bytes across its end, and so
 * can always grow (tx_grow_now): the writer stops at the end, and there
 * it grows the ring if bytes are unread, or wraps if none are. A call
 * that would cross the end of an empty ring instead moves the ring's base
 * to the page of its first byte, and starts near the ring's start. So a
 * reader that falls behind never meets a full ring of the start capacity
 * (the writer meets EAGAIN with the ring's full room unread, about where
 * loopback TCP's autotuned buffers do), and a link of small messages,
 * whose reader keeps up, keeps its small ring.
 */
static int64_t tx_fetch_j(struct mpk_link *l, size_t want, int judge, uint64_t from)
{
	uint64_t head, room, off, end = UINT64_MAX,
			     known = l->tx_cap - (l->tx_tail - l->tx_head_seen);
	uint32_t cf;

	/* Up to a small ring's end, where we wrap or grow on the reader's
	 * head as it is then (an empty ring's end is as good as any place). */
	if (l->tx_cap < l->ring_bytes) {
		off = tx_off(l, l->tx_tail);
		end = off ? l->tx_cap - off : known == l->tx_cap ? l->tx_cap : 0;
	}
	/* Space already known is enough: no look at the consumer's line,
	 * which then stays in the consumer's cache instead of crossing
	 * cores on every message.
	 * A peer's close is then seen when that space is used up, as TCP
	 * also takes the first writes after the peer closed. A hang-up we
	 * saw is ours to check, for free. */
	if (known >= want && end >= want && !mpk_load_relaxed(&l->tx_grow) &&
	    !mpk_load_relaxed(&l->peer_gone))
		return (int64_t)(known < end ? known : end);
	cf = mpk_load_acquire(&l->tx->cons_flags);
	/* Pairs with the store_release of head in readv: the consumer has
	 * copied those bytes out before we overwrite them. */
	head = mpk_load_acquire(&l->tx->head);
	/* Between what it consumed before and what we published. */
	if ((cf & ~MPK_CONS_VALID) || head - l->tx_head_seen > l->tx_tail - l->tx_head_seen)
		return judge ? mark_broken(l) : 0;
	l->tx_head_seen = head;
	if (cf & MPK_CONS_CLOSED || mpk_load_relaxed(&l->peer_gone))
		return judge ? -EPIPE : 0;
	room = l->tx_cap - (l->tx_tail - head);
	if (l->tx_cap == l->ring_bytes)
		return (int64_t)room;
	off = tx_off(l, l->tx_tail);
	end = l->tx_cap - off;
	/* Grow to the ring's room: at its end (or too near it for the
	 * smallest write) with bytes unread, or for a write larger than the
	 * room. A ring whose unread bytes straddle its end (a MAC frame too
	 * long for the rest of an empty ring crosses it) grows at a later
	 * write, once the reader has passed the end. */
	if (room < want || (head != l->tx_tail && (!off || end < tx_atom(l))))
		mpk_store_relaxed(&l->tx_grow, 1);
	if (mpk_load_relaxed(&l->tx_grow) && tx_grow_now(l))
		return (int64_t)(l->tx_cap - (l->tx_tail - head));
	if (head == l->tx_tail && l->tx_tail == from && off && (want > end || end < tx_atom(l))) {
		tx_rebase(l, from & ~(uint64_t)(MPK_LINK_RING_MIN - 1));
		end = l->tx_cap - tx_off(l, l->tx_tail);
	}
	return (int64_t)(end >= tx_atom(l) && end < room ? end : room);
}

/* At the start of a call. */
static int64_t tx_fetch(struct mpk_link *l, size_t want)
{
	return tx_fetch_j(l, want, 1, l->tx_tail);
}

static int iov_total(const struct iovec *iov, int iovcnt, size_t *total)
{
	size_t t = 0;
	int i;

	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - t)
			return -EINVAL;
		t += iov[i].iov_len;
	}
	*total = t;
	return 0;
}

/* A position in an iovec array; n bytes past it are always there (the
 * callers never ask for more than iov_total counted). */
struct iov_cur {
	const struct iovec *iov;
	size_t off;
};

/* The next piece of at most n bytes at the cursor, which moves past it. */
static void *iov_take(struct iov_cur *c, size_t n, size_t *got)
{
	void *p;

	while (c->off == c->iov->iov_len) { /* done with it, or empty */
		c->iov++;
		c->off = 0;
	}
	p = (uint8_t *)c->iov->iov_base + c->off;
	*got = c->iov->iov_len - c->off < n ? c->iov->iov_len - c->off : n;
	c->off += *got;
	return p;
}

/* The copy routines: the only code that touches ring data. Guard open. */
static void copy_in(struct mpk_link *l, uint64_t pos, struct iov_cur *cur, size_t n)
{
	size_t off = tx_off(l, pos), k, c;
	const uint8_t *src;

	for (; n; n -= k, off = (off + k) & (l->tx_cap - 1)) {
		src = iov_take(cur, n, &k);
		c = l->tx_cap - off < k ? l->tx_cap - off : k;
		memcpy(l->tx_data + off, src, c);
		if (k > c) /* wrapped */
			memcpy(l->tx_data, src + c, k - c);
	}
}

static void copy_out(struct mpk_link *l, uint64_t pos, struct iov_cur *cur, size_t n)
{
	size_t off = rx_off(l, pos), k, c;
	uint8_t *dst;

	for (; n; n -= k, off = (off + k) & (l->rx_cap - 1)) {
		dst = iov_take(cur, n, &k);
		c = l->rx_cap - off < k ? l->rx_cap - off : k;
		memcpy(dst, l->rx_data + off, c);
		if (k > c) /* wrapped */
			memcpy(dst + c, l->rx_data, k - c);
	}
}

/*
 * Publishing, for plain writes and MAC frames alike. Guard open. Each
 * returns whether the peer said it sleeps and must be rung (after the
 * guard is closed).
 */
static int publish_tail(struct mpk_link *l, uint64_t tail)
{
	/* Ours before the shared one, so ready_now never sees head > tx_tail. */
	mpk_store_relaxed(&l->tx_tail, tail);
	/* Pairs with the load_acquire of tail in rx_fetch. */
	mpk_store_release(&l->tx->tail, tail);
	/* Pairs with the fence in mpk_link_arm between setting data_waiting
	 * and re-checking tail: either it sees our tail, or we see its flag. */
	mpk_fence_full();
	return mpk_load_relaxed(&l->tx->data_waiting) && mpk_xchg(&l->tx->data_waiting, 0) != 0;
}

static int publish_head(struct mpk_link *l, uint64_t head)
{
	mpk_store_relaxed(&l->rx_head, head);
	/* Pairs with the load_acquire of head in tx_fetch: our copy out is
	 * done before the producer may overwrite. */
	mpk_store_release(&l->rx->head, head);
	/* Pairs with the fence in mpk_link_arm after space_waiting. */
	mpk_fence_full();
	return mpk_load_relaxed(&l->rx->space_waiting) && mpk_xchg(&l->rx->space_waiting, 0) != 0;
}

/* The next copy of a large read or write: up to PUBLISH_CHUNK of left,
 * within room (> 0). */
static size_t step(size_t left, int64_t room)
{
	size_t n = left < PUBLISH_CHUNK ? left : PUBLISH_CHUNK;

	return (uint64_t)room < n ? (size_t)room : n;
}

/* Rings the peer between two steps of a copy: outside the guard, as every
 * system call is. Guard open before and after. */
static void ring_midway(struct mpk_link *l)
{
	mpk__guard_close();
	ring_bell(l);
	mpk__guard_open();
}

/* ---------------------------------------------------------- MAC frames */

/* Raw copies into and out of a ring at a free-running position. Guard open. */
static void ring_put(struct mpk_link *l, uint64_t pos, const void *src, size_t n)
{
	size_t off = tx_off(l, pos), c = l->tx_cap - off < n ? l->tx_cap - off : n;

	memcpy(l->tx_data + off, src, c);
	memcpy(l->tx_data, (const uint8_t *)src + c, n - c);
}

static void ring_get(struct mpk_link *l, uint64_t pos, void *dst, size_t n)
{
	size_t off = rx_off(l, pos), c = l->rx_cap - off < n ? l->rx_cap - off : n;

	memcpy(dst, l->rx_data + off, c);
	memcpy((uint8_t *)dst + c, l->rx_data, n - c);
}

/* A frame's Poly1305 state, keyed as ChaCha20-Poly1305 keys it (RFC 8439
 * 2.6): the first 32 bytes of ChaCha20 under the session key, with the
 * writer's side and the frame's number as the nonce. Each (key, nonce) is
 * used once, as Poly1305 requires. */
static int tag_begin(const struct mpk_link *l, struct mpk_poly *st, int side, uint64_t seq)
{
	uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
	uint8_t otk[MPK_POLY_KEY];
	int r;

	nonce[0] = (uint8_t)side;
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(seq >> (8 * i));
	crypto_stream_chacha20_ietf(otk, sizeof(otk), nonce, l->mac_key);
	r = mpk_poly_init(st, otk);
	sodium_memzero(otk, sizeof(otk));
	return r;
}

/* Whole frames of the iovecs' bytes, as many as fit. The tag is computed
 * over our own source bytes, never read back from the shared ring. */
static ssize_t mac_writev(struct mpk_link *l, const struct iovec *iov, size_t total)
{
	const uint32_t ovh = MPK_FRAME_HDR + MPK_FRAME_TAG;
	struct iov_cur cur = {iov, 0};
	size_t done = 0, first = total < l->frame_max ? total : l->frame_max;
	uint64_t pos, from;
	int64_t space;

	mpk__guard_open();
	from = l->tx_tail;
	space = tx_fetch(l, first + ovh);
	if (space <= (int64_t)ovh) {
		mpk__guard_close();
		return space < 0 ? (ssize_t)space : -EAGAIN;
	}
	pos = l->tx_tail;
	while (done < total && space > (int64_t)ovh) {
		struct mpk_poly *st = l->tx_poly;
		uint8_t hdr[MPK_FRAME_HDR] = {0}, tag[MPK_FRAME_TAG];
		size_t n = total - done, left;
		int bad;

		if (n > l->frame_max)
			n = l->frame_max;
		if ((int64_t)n > space - (int64_t)ovh)
			n = (size_t)(space - (int64_t)ovh);
		for (int i = 0; i < 4; i++)
			hdr[i] = (uint8_t)(n >> (8 * i));
		bad = tag_begin(l, st, l->side, l->tx_seq);
		bad |= mpk_poly_update(st, hdr, sizeof(hdr));
		ring_put(l, pos, hdr, sizeof(hdr));
		pos += sizeof(hdr);
		for (left = n; left;) {
			size_t k;
			const uint8_t *src = iov_take(&cur, left, &k);

			ring_put(l, pos, src, k);
			bad |= mpk_poly_update(st, src, k);
			pos += k;
			left -= k;
		}
		bad |= mpk_poly_final(st, tag);
		if (bad) {
			/* libcrypto failed (out of memory): no frame can be
			 * tagged, so none is published; the link says so. */
			mpk__guard_close();
			return mark_broken(l);
		}
		ring_put(l, pos, tag, sizeof(tag));
		pos += sizeof(tag);
		l->tx_seq++;
		done += n;
		space -= (int64_t)(n + ovh);
		/* Each frame as it is whole: the reader checks one while we tag
		 * the next. */
		if (publish_tail(l, pos))
			ring_midway(l);
		/* At the end of a ring not yet grown (tx_fetch_j), or the
		 * space we knew of used up: what the reader freed since. */
		if (space <= (int64_t)ovh && done < total) {
			size_t next = total - done < l->frame_max ? total - done : l->frame_max;

			space = tx_fetch_j(l, next + ovh, 0, from);
		}
	}
	mpk__guard_close();
	mpk_store_relaxed(&l->stats.tx_bytes, l->stats.tx_bytes + done);
	mpk_store_relaxed(&l->stats.tx_calls, l->stats.tx_calls + 1);
	return (ssize_t)done;
}

/* Moves the next whole frame out of the ring into our stage and checks its
 * tag there, where the peer cannot change it any more. Returns 1 (staged),
 * 0 (end of stream), -EAGAIN, or -ECONNRESET (a bad frame, or a tail that
 * is not at a frame's end: nothing of it is ever delivered). */
static int mac_stage(struct mpk_link *l)
{
	const uint32_t ovh = MPK_FRAME_HDR + MPK_FRAME_TAG;
	uint8_t tag[MPK_FRAME_TAG];
	uint32_t len, zero;
	int64_t avail;
	int eof = 0, ring = 0;

	mpk__guard_open();
	avail = rx_fetch(l, &eof);
	if (avail <= 0 || avail < (int64_t)MPK_FRAME_HDR) {
		mpk__guard_close();
		if (avail < 0)
			return (int)avail;
		if (!avail)
			return eof ? 0 : -EAGAIN;
		/* Frames are published whole: a tail inside one is a lie. */
		return mark_broken(l);
	}
	ring_get(l, l->rx_head, l->stage, MPK_FRAME_HDR);
	len = (uint32_t)l->stage[0] | (uint32_t)l->stage[1] << 8 | (uint32_t)l->stage[2] << 16 |
	      (uint32_t)l->stage[3] << 24;
	memcpy(&zero, l->stage + 4, sizeof(zero));
	if (!len || len > l->frame_max || zero) {
		mpk__guard_close();
		return mark_broken(l);
	}
	if (avail < (int64_t)(len + ovh)) {
		mpk__guard_close();
		return mark_broken(l);
	}
	ring_get(l, l->rx_head + MPK_FRAME_HDR, l->stage + MPK_FRAME_HDR, len + MPK_FRAME_TAG);
	ring = publish_head(l, l->rx_head + len + ovh);
	mpk__guard_close();
	if (ring)
		ring_bell(l);

	if (tag_begin(l, l->rx_poly, !l->side, l->rx_seq) < 0 ||
	    mpk_poly_update(l->rx_poly, l->stage, MPK_FRAME_HDR + len) < 0 ||
	    mpk_poly_final(l->rx_poly, tag) < 0 ||
	    sodium_memcmp(tag, l->stage + MPK_FRAME_HDR + len, sizeof(tag)) != 0) {
		sodium_memzero(l->stage, MPK_FRAME_HDR + len + MPK_FRAME_TAG);
		return mark_broken(l);
	}
	l->rx_seq++;
	mpk_store_relaxed(&l->stage_off, MPK_FRAME_HDR);
	mpk_store_relaxed(&l->stage_end, MPK_FRAME_HDR + len);
	return 1;
}

/* Frame after frame while the iovecs have room and checked frames come (a
 * peek: the staged frame only). A frame that fails its check after others
 * were delivered ends the call with those; the link is broken and the next
 * call says so. */
static ssize_t mac_readv(struct mpk_link *l, const struct iovec *iov, size_t total,
			 unsigned flags)
{
	struct iov_cur cur = {iov, 0};
	uint32_t off = mpk_load_relaxed(&l->stage_off), end = mpk_load_relaxed(&l->stage_end);
	size_t done = 0, n, k;
	uint8_t *dst;
	int r;

	if (total > l->ring_bytes)
		total = l->ring_bytes;
	for (;;) {
		if (off == end) {
			r = mac_stage(l);
			if (r <= 0) {
				if (!done)
					return r;
				break;
			}
			off = MPK_FRAME_HDR;
			end = mpk_load_relaxed(&l->stage_end);
		}
		n = end - off < total - done ? end - off : total - done;
		for (size_t left = n; left; left -= k, off += (uint32_t)k) {
			dst = iov_take(&cur, left, &k);
			memcpy(dst, l->stage + off, k);
		}
		done += n;
		if (flags & MPK_READ_PEEK)
			return (ssize_t)done;
		mpk_store_relaxed(&l->stage_off, off);
		if (done == total)
			break;
	}
	mpk_store_relaxed(&l->stats.rx_bytes, l->stats.rx_bytes + done);
	mpk_store_relaxed(&l->stats.rx_calls, l->stats.rx_calls + 1);
	return (ssize_t)done;
}

ssize_t mpk_link_writev(struct mpk_link *l, const struct iovec *iov, int iovcnt)
{
	struct iov_cur cur = {iov, 0};
	size_t total, n, done = 0;
	uint64_t from;
	int64_t space;
	int r;

	r = iov_total(iov, iovcnt, &total);
	if (r < 0)
		return r;
	if (is_broken(l))
		return -ECONNRESET;
	if (mpk_load_relaxed(&l->tx_shut))
		return -EPIPE;
	if (!total)
		return 0;
	if (l->hdr_flags & MPK_HDR_MAC)
		return l->mac ? mac_writev(l, iov, total) : -EPROTO;

	mpk__guard_open();
	from = l->tx_tail;
	space = tx_fetch(l, total);
	if (space <= 0) {
		mpk__guard_close();
		return space < 0 ? (ssize_t)space : -EAGAIN;
	}
	/* While there is room: space the reader frees meanwhile is used too,
	 * up to one ring's worth a call. */
	if (total > l->tx_cap)
		total = l->tx_cap;
	while (space > 0) {
		n = step(total - done, space);
		copy_in(l, l->tx_tail, &cur, n);
		done += n;
		if (publish_tail(l, l->tx_tail + n))
			ring_midway(l);
		if (done == total)
			break;
		space -= (int64_t)n;
		if (!space)
			space = tx_fetch_j(l, total - done, 0, from);
	}
	mpk__guard_close();

	mpk_store_relaxed(&l->stats.tx_bytes, l->stats.tx_bytes + done);
	mpk_store_relaxed(&l->stats.tx_calls, l->stats.tx_calls + 1);
	return (ssize_t)done;
}

ssize_t mpk_link_write(struct mpk_link *l, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return mpk_link_writev(l, &iov, 1);
}

ssize_t mpk_link_readv(struct mpk_link *l, const struct iovec *iov, int iovcnt,
		       unsigned flags)
{
	struct iov_cur cur = {iov, 0};
	size_t total, n, done = 0;
	int64_t avail;
	int eof = 0, r;

	if (flags & ~MPK_READ_PEEK)
		return -EINVAL;
	r = iov_total(iov, iovcnt, &total);
	if (r < 0)
		return r;
	if (is_broken(l))
		return -ECONNRESET;
	if (!total)
		return 0;
	if (l->hdr_flags & MPK_HDR_MAC)
		return l->mac ? mac_readv(l, iov, total, flags) : -EPROTO;

	mpk__guard_open();
	avail = rx_fetch(l, &eof);
	if (avail <= 0) {
		if (!avail && !eof)
			rx_prefetch(l, l->rx_head);
		mpk__guard_close();
		return avail < 0 ? (ssize_t)avail : eof ? 0 : -EAGAIN;
	}
	if (flags & MPK_READ_PEEK) {
		n = (uint64_t)avail < total ? (size_t)avail : total;
		copy_out(l, l->rx_head, &cur, n);
		mpk__guard_close();
		return (ssize_t)n;
	}
	/* As writev: freed space is published as we go, and bytes the writer
	 * adds meanwhile are taken too, up to one ring's worth a call. */
	if (total > l->rx_cap)
		total = l->rx_cap;
	while (avail > 0) {
		n = step(total - done, avail);
		copy_out(l, l->rx_head, &cur, n);
		done += n;
		if (publish_head(l, l->rx_head + n))
			ring_midway(l);
		if (done == total)
			break;
		avail -= (int64_t)n;
		if (!avail)
			avail = rx_fetch_j(l, &eof, 0);
	}
	mpk__guard_close();

	mpk_store_relaxed(&l->stats.rx_bytes, l->stats.rx_bytes + done);
	mpk_store_relaxed(&l->stats.rx_calls, l->stats.rx_calls + 1);
	return (ssize_t)done;
}

ssize_t mpk_link_read(struct mpk_link *l, void *buf, size_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	return mpk_link_readv(l, &iov, 1, 0);
}

/* Sets flags in the shared header, then wakes a peer sleeping on either
 * ring: it must see them. */
static int publish_flags(struct mpk_link *l, uint32_t prod, uint32_t cons)
{
	int ring;

	mpk__guard_open();
	/* Pairs with the load_acquire of prod_flags in rx_fetch; comes after
	 * every tail store of ours, so the peer reads all data first. */
	if (prod)
		mpk_store_release(&l->tx->prod_flags, prod);
	/* Pairs with the load_acquire of cons_flags in tx_fetch. */
	if (cons)
		mpk_store_release(&l->rx->cons_flags, cons);
	/* Pairs with the fence in mpk_link_arm, as in writev. */
	mpk_fence_full();
	ring = mpk_xchg(&l->tx->data_waiting, 0) != 0;
	ring |= mpk_xchg(&l->rx->space_waiting, 0) != 0;
	mpk__guard_close();
	if (ring)
		ring_bell(l);
	return is_broken(l) ? -ECONNRESET : 0;
}

int mpk_link_shutdown_write(struct mpk_link *l)
{
	if (mpk_xchg(&l->tx_shut, 1))
		return is_broken(l) ? -ECONNRESET : 0;
	return publish_flags(l, MPK_PROD_SHUT, 0);
}

int mpk_link_close(struct mpk_link *l)
{
	mpk_store_relaxed(&l->tx_shut, 1);
	if (mpk_xchg(&l->closed, 1))
		return is_broken(l) ? -ECONNRESET : 0;
	return publish_flags(l, MPK_PROD_SHUT | MPK_PROD_CLOSED, MPK_CONS_CLOSED);
}

/*
 * Advisory readiness, callable from any thread: it reads only shared
 * indices and this side's own published counters, indexes nothing, and
 * leaves the validation to the read or write that follows. A hostile value
 * can at worst make us report "ready", and that call then fails.
 */
struct mpk__ready {
	uint64_t readable, writable;
	uint64_t rx_gen, tx_gen;
	unsigned mask;
	int write_err; /* what a write would return instead of blocking */
};

/* tx 0: the reading side only (no OUT, tx_gen 0), without a look at the
 * TX ring's consumer line; see mpk_link_poll_rx. */
static void ready_now(struct mpk_link *l, struct mpk__ready *rd, int tx)
{
	uint32_t pf, cf = 0;
	uint64_t tail, head = 0, rx_head;
	int64_t d;
	int gone, in_ring;

	rd->readable = rd->writable = 0;
	rd->rx_gen = rd->tx_gen = 0;
	rd->write_err = 0;
	if (is_broken(l)) {
		rd->write_err = -ECONNRESET;
		rd->mask = MPK_LINK_ERR | MPK_LINK_IN | MPK_LINK_OUT | MPK_LINK_HUP;
		return;
	}
	rd->mask = 0;
	gone = mpk_load_acquire(&l->peer_gone);
	mpk__guard_open();
	pf = mpk_load_acquire(&l->rx->prod_flags); /* as in rx_fetch */
	tail = mpk_load_acquire(&l->rx->tail);     /* as in rx_fetch */
	if (tx) {
		cf = mpk_load_acquire(&l->tx->cons_flags); /* as in tx_fetch */
		head = mpk_load_acquire(&l->tx->head);     /* as in tx_fetch */
	}
	/* Our counters may be newer than the indices loaded above. */
	rx_head = mpk_load_relaxed(&l->rx_head);
	d = (int64_t)(tail - rx_head);
	rx_prefetch(l, rx_head);
	mpk__guard_close();
	rd->rx_gen = tail;
	rd->tx_gen = head;

	if (d > 0)
		rd->readable = (uint64_t)d > l->ring_bytes ? l->ring_bytes : (uint64_t)d;
	in_ring = d > 0;
	if (tx) {
		uint64_t cap = mpk_load_relaxed(&l->tx_cap), t = mpk_load_relaxed(&l->tx_tail);

		d = (int64_t)(t - head);
		if (d >= 0 && (uint64_t)d < cap)
			rd->writable = cap - (uint64_t)d;
		/* At the end of a ring not yet grown with bytes unread: the
		 * next write grows it (tx_fetch_j). */
		if (d > 0 && (uint64_t)d <= cap && cap < l->ring_bytes &&
		    !((t - mpk_load_relaxed(&l->tx_base)) & (cap - 1)))
			rd->writable = l->ring_bytes - (uint64_t)d;
	}

	if (l->hdr_flags & MPK_HDR_MAC) {
		/* A frame checked and staged, else what the ring holds (its
		 * framing is the read's to check); whole frames to write. */
		uint32_t staged = mpk_load_relaxed(&l->stage_end) - mpk_load_relaxed(&l->stage_off);
		const uint64_t ovh = MPK_FRAME_HDR + MPK_FRAME_TAG;

		if (staged)
			rd->readable = staged;
		else
			rd->readable = rd->readable > ovh ? rd->readable - ovh : 0;
		if (staged || in_ring)
			rd->mask |= MPK_LINK_IN;
		rd->writable = rd->writable > ovh ? rd->writable - ovh : 0;
	}
	if (rd->readable || pf || gone)
		rd->mask |= MPK_LINK_IN;
	if (pf || gone)
		rd->mask |= MPK_LINK_RDHUP;
	if ((pf & MPK_PROD_CLOSED) || gone)
		rd->mask |= MPK_LINK_HUP;
	if (!tx)
		return;
	if (cf || gone || mpk_load_relaxed(&l->tx_shut)) {
		rd->write_err = -EPIPE;
		rd->writable = 0;
	}
	/* A write that would fail does not block either. */
	if (rd->writable || rd->write_err)
		rd->mask |= MPK_LINK_OUT;
}

unsigned mpk_link_poll_gen(struct mpk_link *l, uint64_t *rx_gen, uint64_t *tx_gen)
{
	struct mpk__ready rd;

	ready_now(l, &rd, 1);
	if (rx_gen)
		*rx_gen = rd.rx_gen;
	if (tx_gen)
		*tx_gen = rd.tx_gen;
	return rd.mask;
}

unsigned mpk_link_poll_rx(struct mpk_link *l, uint64_t *rx_gen)
{
	struct mpk__ready rd;

	ready_now(l, &rd, 0);
	if (rx_gen)
		*rx_gen = rd.rx_gen;
	return rd.mask & ~MPK_LINK_OUT; /* a broken link's mask has it */
}

unsigned mpk_link_poll(struct mpk_link *l)
{
	return mpk_link_poll_gen(l, NULL, NULL);
}

ssize_t mpk_link_readable(struct mpk_link *l)
{
	struct mpk__ready rd;

	ready_now(l, &rd, 0);
	return rd.mask & MPK_LINK_ERR ? -ECONNRESET : (ssize_t)rd.readable;
}

uint64_t mpk_link_tx_unread(struct mpk_link *l)
{
	uint64_t head, tail = l->tx_tail;

	mpk__guard_open();
	/* Pairs with the store_release of head in readv. */
	head = mpk_load_acquire(&l->tx->head);
	mpk__guard_close();
	/* A head out of range is the peer's lie: count it all unread. */
	return head <= tail && tail - head <= l->ring_bytes ? tail - head : l->ring_bytes;
}

ssize_t mpk_link_writable(struct mpk_link *l)
{
	struct mpk__ready rd;

	ready_now(l, &rd, 1);
	return rd.write_err ? rd.write_err : (ssize_t)rd.writable;
}

int mpk_link_hangup_check(struct mpk_link *l)
{
	char buf[256];
	ssize_t r;
	int i;

	if (l->bell_fd < 0)
		return 0;
	for (i = 0; i < DRAIN_MAX_CALLS; i++) {
		r = l->bell_recv(l->bell_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0 && l->bell_ring >= 0) {
			/* With eventfd bells nothing may cross the stream: these
			 * bytes went past the link, and their order against the
			 * ring's is lost. */
			mark_broken(l);
			return -EPROTO;
		}
		if (r > 0) {
			mpk_fetch_add_relaxed(&l->stats.bells_drained, (uint64_t)r);
			if ((size_t)r < sizeof(buf))
				return 0;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r < 0 && errno == ECONNRESET) {
			/* The peer reset the connection (it closed with bytes
			 * unread, or broke the link loudly): it is gone, and the
			 * caller says so as TCP would. */
			mpk_store_release(&l->peer_gone, 1);
			return -ECONNRESET;
		}
		/* End of stream or another error: the peer closed or died. Its
		 * last ring stores precede its socket's close. */
		mpk_store_release(&l->peer_gone, 1);
		return -EPIPE;
	}
	return 0;
}

void mpk_link_drain(struct mpk_link *l)
{
	eventfd_t v;

	if (l->bell_wait < 0) {
		(void)mpk_link_hangup_check(l);
		return;
	}
	if (eventfd_read(l->bell_wait, &v) == 0)
		mpk_fetch_add_relaxed(&l->stats.bells_drained, v);
}

unsigned mpk_link_arm(struct mpk_link *l, unsigned want)
{
	unsigned ready;

	if (is_broken(l))
		return mpk_link_poll(l);
	/* Drain first: a byte that arrives after this is one rung after our
	 * flag below was seen, so it stays pending and wakes us. */
	if (!(want & MPK_ARM_NODRAIN))
		mpk_link_drain(l);
	mpk__guard_open();
	if (want & MPK_LINK_IN)
		mpk_store_relaxed(&l->rx->data_waiting, 1);
	if (want & MPK_LINK_OUT)
		mpk_store_relaxed(&l->tx->space_waiting, 1);
	/* Pairs with the fences in writev and readv (and publish_flags):
	 * the flag stores above are visible before the re-check below. */
	mpk_fence_full();
	mpk__guard_close();
	ready = mpk_link_poll(l);
	return ready;
}

void mpk_link_disarm(struct mpk_link *l, unsigned want)
{
	/* A bell already rung stays pending: one spurious wakeup, never a
	 * lost one. */
	mpk__guard_open();
	if (want & MPK_LINK_IN)
		mpk_store_relaxed(&l->rx->data_waiting, 0);
	if (want & MPK_LINK_OUT)
		mpk_store_relaxed(&l->tx->space_waiting, 0);
	mpk__guard_close();
}
