/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer process maps the link's memfd itself and writes what it
 * likes into the shared header while this process (the victim) uses the
 * link. Every return value is checked against the contract of ring.h;
 * when the peer is idle during the calls (lockstep), against the exact
 * value a correct transport returns for what the peer wrote.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "lab.h"
#include "testutil.h"

#define MIN_LIES 100000u

static uint64_t pick_cap(struct lab *b)
{
	/* Mostly small: a run is dominated by copies of up to 2 cap. */
	static const uint64_t caps[] = {4096, 4096, 4096, 8192, 8192, 16384, 16384, 65536};

	return caps[tu_rand(&b->rng) % 8];
}

/* Free-running indices start anywhere, the wrap of u64 included. */
static uint64_t pick_base(struct lab *b)
{
	uint64_t r = tu_rand(&b->rng);

	switch (r % 4) {
	case 0: return 0;
	case 1: return UINT64_MAX - (r >> 8) % 8192;
	case 2: return (UINT64_C(1) << 63) - (r >> 8) % 8192;
	default: return tu_rand(&b->rng);
	}
}

static void random_link(struct lab *b, const unsigned *pcts, unsigned npcts)
{
	lab_newlink(b, pick_cap(b), (int)(tu_rand(&b->rng) & 1), pick_base(b), pick_base(b),
		    pcts[tu_rand(&b->rng) % npcts]);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_stats(const char *what, struct lab *b, uint64_t lies)
{
	cr_log_info("%s: %llu lies, %lu links (%lu in guard pages), %lu broken, %lu to EOF; "
		    "%lu calls: %lu moved data, %lu -EAGAIN, %lu -EPIPE, %lu -ECONNRESET",
		    what, (unsigned long long)lies, b->links, b->guarded, b->broken_links,
		    b->eof_links, b->ops, b->ok_data, b->eagain, b->epipe, b->econnreset);
}

/*
 * Renews the link once a run on it has shown what it can: a few calls
 * after it broke (sticky while the peer keeps writing), a few after end of
 * stream, or after many steps.
 */
struct life {
	unsigned steps, since_end;
};

static void maybe_renew(struct lab *b, struct life *lf, unsigned after_end, unsigned max_steps,
			const unsigned *pcts, unsigned npcts)
{
	lf->steps++;
	if (b->m.broken || b->m.eof_seen || b->m.tx_shut)
		lf->since_end++;
	if (lf->since_end < after_end && lf->steps < max_steps)
		return;
	if (b->m.broken) {
		lab_expect_broken(b);
		b->broken_links++;
	} else if (b->m.eof_seen) {
		b->eof_links++;
	}
	random_link(b, pcts, npcts);
	memset(lf, 0, sizeof(*lf));
}

Test(mutate, lockstep, .timeout = 600)
{
	static const unsigned pcts[] = {2, 20, 60, 95};
	struct lab b;
	struct life lf = {0};
	unsigned long lies = 0, steps = 0;
	uint64_t told;

	lab_start(&b, 0xc0ffee);
	random_link(&b, pcts, 4);
	while (lies < MIN_LIES) {
		struct peer_reply rep = lab_step(&b);
		unsigned n = 1 + (unsigned)(tu_rand(&b.rng) % 4);

		lies += rep.what == ACT_LIE;
		steps++;
		for (unsigned i = 0; i < n; i++)
			lab_random_op(&b, 1);
		maybe_renew(&b, &lf, 4, 3000, pcts, 4);
	}
	told = lab_stop(&b);
	log_stats("lockstep", &b, told);
	cr_assert_geq(told, MIN_LIES);
	cr_assert_gt(b.broken_links, 1000, "the link must break, and often");
	cr_assert_gt(b.eof_links, 0);
	cr_assert_gt(b.ok_data, 10000, "data must flow between the lies");
	cr_assert_gt(b.guarded, 0, "no attach landed between guard pages");
}

Test(mutate, concurrent, .timeout = 600)
{
	static const unsigned pcts[] = {1, 10, 50};
	struct lab b;
	struct life lf = {0};
	double end;
	uint64_t told;

	lab_start(&b, 0xfeed);
	random_link(&b, pcts, 3);
	lab_freerun(&b);
	/* Three seconds, and on until the peer has told enough lies (a
	 * loaded machine may starve it). */
	end = now_s() + 3.0;
	for (;;) {
		for (int i = 0; i < 64; i++) {
			lab_random_op(&b, 0);
			maybe_renew(&b, &lf, 16, 5000, pcts, 3);
		}
		if (now_s() >= end && b.links >= 50 && lab_count_lies(&b) >= MIN_LIES)
			break;
	}
	told = lab_stop(&b);
	log_stats("concurrent", &b, told);
	cr_assert_geq(told, MIN_LIES);
	cr_assert_gt(b.broken_links, 0, "the link must break during the run");
}

/* ------------------------------------------------- specific lies, each caught */

#define ROUNDS 300

static struct lab L;

static void lies_init(void)
{
	lab_start(&L, 0x11e5);
}

static void lies_fini(void)
{
	lab_stop(&L);
}

static void fresh(void)
{
	static const unsigned none[] = {0};

	random_link(&L, none, 1);
}

static uint64_t rnd(uint64_t n)
{
	return n ? tu_rand(&L.rng) % n : 0;
}

static ssize_t read_any(size_t len)
{
	return lab_read(&L, len, (int)rnd(3));
}

/* A write for which the victim must look at the peer's side: more than
 * the space it saw free last time (less, it trusts what it saw). */
static ssize_t write_looking(void)
{
	uint64_t known = L.m.cap - (L.m.tx_tail - L.m.tx_head_seen);

	return lab_write(&L, known + 1 + rnd(L.cap), (int)rnd(2));
}

/* A positive distance: small, about the capacity, or far. */
static uint64_t pick_dist(uint64_t cap)
{
	switch (rnd(6)) {
	case 0: return 1;
	case 1: return 2;
	case 2: return 1 + rnd(cap);
	case 3: return cap;
	case 4: return UINT64_C(1) << (20 + rnd(43));
	default: return 1 + rnd(UINT64_C(1) << 62);
	}
}

/* The lie was caught by the call that met it, and stays caught after the
 * peer puts honest values back. */
static void caught(ssize_t got, const char *lie, uint64_t v)
{
	cr_assert_eq(got, -ECONNRESET, "lie not detected: %s (%#llx): got %zd", lie,
		     (unsigned long long)v, got);
	lab_set(&L, HS_ROLE_TAIL, !L.side, L.m.rx_head);
	lab_set(&L, HS_ROLE_PFLAGS, !L.side, 0);
	lab_set(&L, HS_ROLE_HEAD, L.side, L.m.tx_tail);
	lab_set(&L, HS_ROLE_CFLAGS, L.side, 0);
	lab_expect_broken(&L);
}

TestSuite(lies, .init = lies_init, .fini = lies_fini, .timeout = 300);

Test(lies, tail_beyond_head_plus_cap)
{
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t k, d, t;

		fresh();
		k = rnd(L.cap + 1);
		cr_assert_eq(lab_produce(&L, k), k);
		if (k && rnd(2))
			cr_assert_gt(lab_read(&L, 1 + rnd(k), 0), 0);
		d = pick_dist(L.cap);
		t = L.m.rx_head + L.cap + d;
		lab_set(&L, HS_ROLE_TAIL, !L.side, t);
		caught(read_any(1 + rnd(2 * L.cap)), "tail beyond head + cap", t);
	}
}

Test(lies, tail_moves_backwards)
{
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t k, seen, t;
		ssize_t r;

		fresh();
		k = 1 + rnd(L.cap);
		cr_assert_eq(lab_produce(&L, k), k);
		/* Let the victim see the tail: peek, read part, or read all. */
		r = lab_read(&L, 1 + rnd(k + 1), (int)rnd(3));
		cr_assert_gt(r, 0);
		seen = L.m.rx_seen;
		if (seen != L.m.rx_head && rnd(2)) {
			/* Still at or ahead of head: in range, only backwards. */
			t = seen - 1 - rnd(seen - L.m.rx_head);
		} else {
			t = L.m.rx_head - pick_dist(L.cap); /* behind head */
		}
		lab_set(&L, HS_ROLE_TAIL, !L.side, t);
		caught(read_any(1 + rnd(2 * L.cap)), "tail moved backwards", t);
	}
}

Test(lies, head_beyond_tail)
{
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t k, h;

		fresh();
		k = rnd(L.cap + 1);
		if (k)
			cr_assert_eq(lab_write(&L, k, (int)rnd(2)), (ssize_t)k);
		if (k && rnd(2)) {
			lab_consume(&L, rnd(k + 1));
			cr_assert_geq(write_looking(), 0); /* sees the head */
		}
		h = L.m.tx_tail + pick_dist(L.cap);
		lab_set(&L, HS_ROLE_HEAD, L.side, h);
		caught(write_looking(), "head beyond tail", h);
	}
}

Test(lies, head_moves_backwards)
{
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t k, j, h;

		fresh();
		k = 1 + rnd(L.cap);
		cr_assert_eq(lab_write(&L, k, 0), (ssize_t)k);
		j = 1 + rnd(k);
		cr_assert_eq(lab_consume(&L, j), j);
		/* A write one byte beyond the space known sees the new head
		 * (the space is there, j >= 1). */
		cr_assert_eq(lab_write(&L, L.cap - k + 1, 0), (ssize_t)(L.cap - k + 1));
		cr_assert_eq(L.m.tx_head_seen, L.m.tx_tail - (L.cap - k + 1) - k + j);
		h = L.m.tx_head_seen - (rnd(2) ? 1 + rnd(j) : pick_dist(L.cap));
		lab_set(&L, HS_ROLE_HEAD, L.side, h);
		caught(write_looking(), "head moved backwards", h);
	}
}

Test(lies, unknown_prod_flags)
{
	for (int i = 0; i < 30 + ROUNDS; i++) {
		/* Every unknown bit alone, then mixes with the known ones. */
		uint32_t f = i < 30 ? UINT32_C(1) << (i + 2)
				    : ((uint32_t)tu_rand(&L.rng) & ~MPK_PROD_VALID) | (uint32_t)rnd(4);

		if (!(f & ~MPK_PROD_VALID))
			f |= UINT32_C(1) << 31;
		fresh();
		if (rnd(2))
			lab_produce(&L, 1 + rnd(L.cap));
		lab_set(&L, HS_ROLE_PFLAGS, !L.side, f);
		caught(read_any(1 + rnd(2 * L.cap)), "unknown prod_flags", f);
	}
}

Test(lies, unknown_cons_flags)
{
	for (int i = 0; i < 31 + ROUNDS; i++) {
		uint32_t f = i < 31 ? UINT32_C(1) << (i + 1)
				    : ((uint32_t)tu_rand(&L.rng) & ~MPK_CONS_VALID) | (uint32_t)rnd(2);

		if (!(f & ~MPK_CONS_VALID))
			f |= UINT32_C(1) << 31;
		fresh();
		if (rnd(2))
			lab_write(&L, 1 + rnd(L.cap), 0);
		lab_set(&L, HS_ROLE_CFLAGS, L.side, f);
		caught(write_looking(), "unknown cons_flags", f);
	}
}

Test(lies, tail_moves_after_shutdown)
{
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t k, t;
		uint32_t pf = rnd(2) ? MPK_PROD_SHUT : MPK_PROD_SHUT | MPK_PROD_CLOSED;
		ssize_t r;

		fresh();
		k = rnd(L.cap);
		cr_assert_eq(lab_produce(&L, k), k);
		lab_set(&L, HS_ROLE_PFLAGS, !L.side, pf);
		if (rnd(2)) {
			/* To end of stream. */
			while ((r = lab_read(&L, 1 + rnd(L.cap), 0)) > 0)
				;
			cr_assert_eq(r, 0, "end of stream after the shutdown");
		} else {
			/* Part of it: end of stream is already fixed at the tail. */
			cr_assert_geq(lab_read(&L, 1 + rnd(k + 1), (int)rnd(3)), 0);
			cr_assert(L.m.rx_eof);
		}
		if (rnd(2))
			lab_set(&L, HS_ROLE_PFLAGS, !L.side, 0); /* takes it back, too */
		t = L.m.rx_eof_tail + (rnd(2) ? 1 + rnd(L.cap - k) : -pick_dist(L.cap));
		lab_set(&L, HS_ROLE_TAIL, !L.side, t);
		caught(read_any(1 + rnd(2 * L.cap)), "tail moved after shutdown", t);
	}
}

/* The other side of each check: honest extremes are not lies. */
Test(lies, honest_extremes_accepted)
{
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t cap;

		fresh();
		cap = L.cap;
		/* A full ring both ways, around the u64 wrap or not. */
		cr_assert_eq(lab_produce(&L, cap), cap);
		cr_assert_eq(lab_write(&L, 2 * cap, (int)rnd(2)), (ssize_t)cap);
		cr_assert_eq(lab_write(&L, 1, 0), -EAGAIN);
		cr_assert_eq(lab_read(&L, 2 * cap, 2), (ssize_t)cap, "peek of a full ring");
		cr_assert_eq(lab_read(&L, 2 * cap, (int)rnd(2)), (ssize_t)cap);
		cr_assert_eq(lab_read(&L, 1, 0), -EAGAIN);
		/* All consumed: head == tail. */
		cr_assert_eq(lab_consume(&L, cap), cap);
		cr_assert_eq(lab_write(&L, 2 * cap, 0), (ssize_t)cap);
		/* The peer closing its reading side is -EPIPE, not a lie. */
		lab_set(&L, HS_ROLE_CFLAGS, L.side, MPK_CONS_CLOSED);
		cr_assert_eq(lab_write(&L, 1, 0), -EPIPE);
		/* Data then shutdown: all of it, then end of stream. */
		cr_assert_eq(lab_produce(&L, cap / 2), cap / 2);
		lab_set(&L, HS_ROLE_PFLAGS, !L.side, MPK_PROD_SHUT | MPK_PROD_CLOSED);
		cr_assert_eq(mpk_link_poll(L.l) & (MPK_LINK_IN | MPK_LINK_RDHUP | MPK_LINK_HUP),
			     MPK_LINK_IN | MPK_LINK_RDHUP | MPK_LINK_HUP);
		cr_assert_eq(lab_read(&L, cap, 0), (ssize_t)(cap / 2));
		cr_assert_eq(lab_read(&L, cap, 0), 0);
		cr_assert_eq(lab_read(&L, cap, 1), 0, "end of stream stays");
		cr_assert(!L.m.broken);
		cr_assert_geq(mpk_link_readable(L.l), 0);
	}
}
