/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer in its own process, driven over a SOCK_SEQPACKET control
 * socket, and the victim-side "lab" that talks to it. The peer maps each
 * link's memfd itself (mmap of the fd, no transport code) and writes into
 * the header whatever it is told, or whatever its own dice say.
 */
#ifndef MPK_HOSTILE_PEER_H
#define MPK_HOSTILE_PEER_H

#include <stdint.h>
#include <sys/types.h>

#include "hostile.h"

enum peer_op {
	PEER_NEWLINK = 1, /* fds: memfd, doorbell end; arg: victim's side; a: lie % */
	PEER_STEP,        /* one random action; a, b: victim's rx_head, tx_tail */
	PEER_SET,         /* arg: hs_fields index; a: value */
	PEER_PRODUCE,     /* a: bytes to publish on the victim's RX ring; b: its rx_head */
	PEER_CONSUME,     /* a: bytes to consume from the victim's TX ring; b: its tx_tail */
	PEER_FREERUN,     /* act at random, racing the victim, until the next message */
	PEER_COUNT,       /* how many lies so far (free-running goes on) */
	PEER_QUIT,
};

/* What a step did, in peer_reply.what. */
enum peer_act {
	ACT_LIE = 1, ACT_PRODUCE, ACT_CONSUME, ACT_WAITING, ACT_BELL, ACT_FLAGS, ACT_NONE,
};

struct peer_msg {
	uint32_t op;
	uint32_t arg;
	uint64_t a, b;
};

struct peer_reply {
	uint32_t op;
	uint32_t what;  /* STEP: enum peer_act */
	uint32_t field; /* STEP lie, SET: hs_fields index */
	uint32_t pad;
	uint64_t value; /* the value written, or bytes moved */
	uint64_t lies;  /* COUNT, QUIT: lies told over the whole run */
};

/* Forks the peer. Returns its pid; *ctl is the victim's control socket. */
pid_t peer_spawn(uint64_t seed, int *ctl);
/* One request, one reply. 0 or -errno. */
int peer_call(int ctl, const struct peer_msg *msg, const int *fds, int nfds,
	      struct peer_reply *rep);
/* PEER_QUIT, then waits for the peer. Returns its lies count, or -1 when it
 * did not exit cleanly. */
int64_t peer_quit(pid_t pid, int ctl);

/* A field index by role and ring, for PEER_SET. */
unsigned peer_field(enum hs_role role, int ring);

#endif
