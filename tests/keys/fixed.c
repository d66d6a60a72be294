/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "fixed.h"

static void seed_of(uint8_t seed[32], uint8_t tag)
{
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(tag * 31 + i);
}

static int identity(struct mpk__signer *ca, uint8_t tag, const char *name,
		    struct mpk_keys_identity **out)
{
	uint8_t seed[32], digest[MPK_KEYS_DIGEST_BYTES];
	struct mpk__signer *s;
	struct mpk_keys_cert cert;
	int r;

	seed_of(seed, tag);
	memset(digest, tag, sizeof(digest));
	r = mpk__signer_from_seed(seed, &s, NULL, 0);
	if (r < 0)
		return r;
	/* Valid for a century around FIXED_NOW. */
	r = mpk__cert_make(ca, name, mpk__signer_pk(s), digest, FIXED_NOW - 86400,
			   FIXED_NOW + INT64_C(100) * 365 * 86400, &cert);
	if (r < 0) {
		mpk__signer_free(s);
		return r;
	}
	return mpk__identity_make(s, &cert, out);
}

/* The tickets of the fixed handshake, and one batch under them. */
static int resumption(struct fixed *f, const struct mpk_keys_session *ss)
{
	struct mpk_keys_client c = f->client_st;
	struct mpk_keys_ticket st;
	struct mpk_keys_resume_req req;
	struct mpk_keys_session cs, bs;
	uint8_t nonce[MPK_KEYS_NONCE_BYTES], token[MPK_KEYS_TOKEN_BYTES];
	int r;

	r = mpk_keys_client_reply(&c, f->reply, sizeof(f->reply), f->ca_pk, FIXED_NOW, "server",
				  &cs, NULL, NULL);
	if (r < 0)
		return r;
	if ((r = mpk_keys_ticket_open(&cs, FIXED_NOW + 3600, &f->client_ticket)) < 0 ||
	    (r = mpk_keys_ticket_open(ss, FIXED_NOW + 3600, &f->server_ticket)) < 0)
		return r;
	memset(nonce, 8, sizeof(nonce));
	r = mpk__resume_with(&f->client_ticket, nonce, FIXED_NOW, FIXED_SPORT, 32, FIXED_RING,
			     f->resume, f->resume_hash);
	if (r < 0)
		return r;
	f->client_ticket.number = 0; /* as sent: the fuzzer starts from here */
	st = f->server_ticket;
	r = mpk_keys_resume_check(&st, f->resume, sizeof(f->resume), FIXED_NOW, &req, NULL);
	if (r < 0)
		return r;
	memset(token, 9, sizeof(token));
	r = mpk_keys_resumed(&st, &req, token, FIXED_RING, f->resumed, &bs);
	if (r < 0)
		return r;
	return mpk_keys_resumed_refusal(-126 /* ENOKEY */, f->resumed_refusal);
}

int fixed_init(struct fixed *f)
{
	uint8_t seed[32], eph[32], nonce[MPK_KEYS_NONCE_BYTES], token[MPK_KEYS_TOKEN_BYTES];
	struct mpk_keys_replay *rc = NULL;
	struct mpk_keys_session ss;
	struct mpk_keys_server st;
	struct mpk__signer *ca = NULL;
	int r;

	memset(f, 0, sizeof(*f));
	seed_of(seed, 1);
	r = mpk__signer_from_seed(seed, &ca, NULL, 0);
	if (r < 0)
		goto out;
	memcpy(f->ca_pk, mpk__signer_pk(ca), sizeof(f->ca_pk));
	if ((r = identity(ca, 2, "client", &f->client)) < 0 ||
	    (r = identity(ca, 3, "server", &f->server)) < 0)
		goto out;
	seed_of(eph, 4);
	memset(nonce, 5, sizeof(nonce));
	r = mpk__client_hello_with(&f->client_st, f->client, eph, nonce, FIXED_NOW, FIXED_SPORT,
				   FIXED_CPORT, FIXED_RING, f->hello);
	if (r < 0)
		goto out;
	seed_of(f->server_eph, 6);
	r = mpk_keys_replay_new(0, 16, &rc);
	if (r < 0)
		goto out;
	r = mpk__server_hello_with(&st, f->hello, sizeof(f->hello), f->ca_pk, FIXED_NOW, rc,
				   f->server_eph, NULL);
	if (r < 0)
		goto out;
	memset(token, 7, sizeof(token));
	r = mpk_keys_server_reply(&st, f->server, token, FIXED_RING, f->reply, &ss);
	if (r < 0)
		goto out;
	r = mpk_keys_refusal(-13 /* EACCES */, f->refusal);
	if (r < 0)
		goto out;
	r = resumption(f, &ss);
out:
	mpk_keys_replay_free(rc);
	mpk__signer_free(ca);
	if (r < 0)
		fixed_free(f);
	return r;
}

void fixed_free(struct fixed *f)
{
	mpk_keys_identity_free(f->client);
	mpk_keys_identity_free(f->server);
	memset(f, 0, sizeof(*f));
}
