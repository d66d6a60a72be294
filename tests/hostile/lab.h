/* SPDX-License-Identifier: MIT */
/*
 * The victim's half of a hostile-peer test: one attached link at a time,
 * a raw view of the same memory (to know what the peer wrote, for the
 * model), the peer process, and the contract checks around every call.
 * Criterion-dependent: for tests/hostile only.
 */
#ifndef MPK_HOSTILE_LAB_H
#define MPK_HOSTILE_LAB_H

#include <criterion/criterion.h>

#include "hostile.h"
#include "peer.h"

struct lab {
	pid_t pid;
	int ctl;
	int fd, bell, side;
	uint64_t cap;
	struct hs_raw raw;
	struct mpk_link *l;
	struct hs_guard g;
	struct hs_model m;
	uint64_t rng;
	/* run statistics */
	unsigned long links, guarded, broken_links, eof_links;
	unsigned long ops, ok_data, eagain, epipe, econnreset;
};

/* Any check's failure message fails the test, with the model's words. */
#define HS_CHECK(expr)                                                    \
	do {                                                              \
		const char *hs_e_ = (expr);                               \
		cr_assert(hs_e_ == NULL, "%s", hs_e_ ? hs_e_ : "");       \
	} while (0)

void lab_start(struct lab *b, uint64_t seed);
/* Returns the peer's count of lies. */
uint64_t lab_stop(struct lab *b);

/*
 * A fresh link of cap bytes per ring, both rings' indices starting at
 * base0/base1 (free-running u64, so near the top tests the wrap), this
 * process attached as side, the peer told to lie lie_pct% of its steps.
 */
void lab_newlink(struct lab *b, uint64_t cap, int side, uint64_t base0, uint64_t base1,
		 unsigned lie_pct);
/* Detaches and closes the current link, if any. */
void lab_droplink(struct lab *b);

/* Peer commands, each acknowledged before it returns. */
void lab_set(struct lab *b, enum hs_role role, int ring, uint64_t value);
uint64_t lab_produce(struct lab *b, uint64_t n);
uint64_t lab_consume(struct lab *b, uint64_t n);
struct peer_reply lab_step(struct lab *b);
void lab_freerun(struct lab *b);
uint64_t lab_count_lies(struct lab *b);

/*
 * One random call on the link, its result checked against the model:
 * strictly when strict (the peer is idle, so the header is what the raw
 * view shows), else loosely.
 */
void lab_random_op(struct lab *b, int strict);

/* Single calls, checked strictly; return what the call returned. */
ssize_t lab_read(struct lab *b, size_t len, int how); /* 0 read, 1 readv, 2 peek */
ssize_t lab_write(struct lab *b, size_t len, int how); /* 0 write, 1 writev */

/* Every call on a broken link reports it, whatever the peer does now. */
void lab_expect_broken(struct lab *b);

#endif
