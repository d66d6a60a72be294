/* SPDX-License-Identifier: MIT */
/*
 * A deterministic CA, client, server and handshake: the fuzz target and the
 * seed generator build the same bytes, so the committed seeds carry valid
 * signatures that the fuzzer then mutates.
 */
#ifndef MPK_KEYS_FIXED_H
#define MPK_KEYS_FIXED_H

#include <stdint.h>

#include "keys_internal.h"

#define FIXED_NOW   INT64_C(1700000000)
#define FIXED_SPORT 50051
#define FIXED_CPORT 40000
#define FIXED_RING  (UINT64_C(1) << 20)

struct fixed {
	uint8_t ca_pk[MPK_KEYS_PK_BYTES];
	struct mpk_keys_identity *client, *server;
	/* The client's state right after sending hello: copy it to answer
	 * any REPLY candidate. */
	struct mpk_keys_client client_st;
	uint8_t hello[MPK_KEYS_HELLO_BYTES];
	uint8_t reply[MPK_KEYS_REPLY_BYTES];
	uint8_t refusal[MPK_KEYS_REPLY_BYTES];
	uint8_t server_eph[32];
	/* The session that handshake opened, as each side keeps it (both
	 * numbered 0), a RESUME under it (number 1), the RESUMED and a
	 * refusal answering it. */
	struct mpk_keys_ticket client_ticket, server_ticket;
	uint8_t resume[MPK_KEYS_RESUME_BYTES], resume_hash[32];
	uint8_t resumed[MPK_KEYS_RESUMED_BYTES], resumed_refusal[MPK_KEYS_RESUMED_BYTES];
};

/* 0 or -errno. The hello and the reply to it are in *f. */
int fixed_init(struct fixed *f);
void fixed_free(struct fixed *f);

#endif
