/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the parsers that see peer or user bytes. The first
 * byte picks one:
 *   'H'  a HELLO, to the server side (fresh replay cache each time)
 *   'R'  a REPLY, to the client side of the fixed HELLO
 *   'S'  a RESUME, to the server side of the fixed session's ticket
 *   'D'  a RESUMED, to the client side of the fixed RESUME
 *   'C'  a certificate
 *   'A'  an MPKLINK_ALLOW string
 *   'E'  an MPKLINK_ENDPOINTS string (expected server names)
 * Besides "no crash, no sanitizer report", it checks what the handshake
 * promises: outputs are wiped on failure, and only the genuine HELLO and
 * REPLY, RESUME and RESUMED (the seeds' bytes) are ever accepted: no
 * mutation gets through, and a refused RESUME changes no ticket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fixed.h"

static struct fixed f;

#define CHECK(c)                                                                               \
	do {                                                                                   \
		if (!(c))                                                                      \
			abort();                                                               \
	} while (0)

static void fuzz_hello(const uint8_t *p, size_t n)
{
	struct mpk_keys_replay *rc;
	struct mpk_keys_server st;
	struct mpk_keys_session ss, cs;
	struct mpk_keys_client c = f.client_st;
	uint8_t reply[MPK_KEYS_REPLY_BYTES], token[MPK_KEYS_TOKEN_BYTES] = {1};
	const char *why = NULL;
	int r;

	CHECK(mpk_keys_replay_new(0, 4, &rc) == 0);
	r = mpk__server_hello_with(&st, p, n, f.ca_pk, FIXED_NOW, rc, f.server_eph, &why);
	/* The genuine HELLO must pass: else the fuzzer explores nothing deep. */
	CHECK(r == 0 || n != sizeof(f.hello) || memcmp(p, f.hello, n));
	if (r < 0) {
		CHECK(why != NULL);
		CHECK(sodium_is_zero((const uint8_t *)&st, sizeof(st)));
		goto out;
	}
	CHECK(n == sizeof(f.hello) && !memcmp(p, f.hello, n));
	CHECK(mpk_keys_name_check(st.client_name) == 0);
	/* The same bytes again are a replay. */
	{
		struct mpk_keys_server st2;

		CHECK(mpk__server_hello_with(&st2, p, n, f.ca_pk, FIXED_NOW, rc, f.server_eph,
					     &why) == -EALREADY);
	}
	CHECK(mpk_keys_server_reply(&st, f.server, token, FIXED_RING, reply, &ss) == 0);
	CHECK(mpk_keys_client_reply(&c, reply, sizeof(reply), f.ca_pk, FIXED_NOW, "server", &cs,
				    NULL, &why) == 0);
	CHECK(!memcmp(cs.key, ss.key, sizeof(cs.key)));
out:
	mpk_keys_replay_free(rc);
}

static void fuzz_reply(const uint8_t *p, size_t n)
{
	struct mpk_keys_client c = f.client_st;
	struct mpk_keys_session cs;
	const char *why = NULL;
	int status = 1, r;

	r = mpk_keys_client_reply(&c, p, n, f.ca_pk, FIXED_NOW, "server", &cs, &status, &why);
	CHECK(r == 0 || n != sizeof(f.reply) || memcmp(p, f.reply, n));
	CHECK(r == -ECONNREFUSED || n != sizeof(f.refusal) || memcmp(p, f.refusal, n));
	CHECK(sodium_is_zero((const uint8_t *)&c, sizeof(c)));
	if (r < 0) {
		CHECK(why != NULL);
		CHECK(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)));
		CHECK(r == -ECONNREFUSED ? status < 0 && status >= -4095 : status == 0);
		return;
	}
	CHECK(n == sizeof(f.reply) && !memcmp(p, f.reply, n));
	CHECK(!strcmp(cs.peer_name, "server"));
}

static void fuzz_resume(const uint8_t *p, size_t n)
{
	struct mpk_keys_ticket t = f.server_ticket, before = t;
	struct mpk_keys_resume_req req;
	uint8_t id[MPK_KEYS_TICKET_ID_BYTES];
	const char *why = NULL;
	int r;

	if (mpk_keys_resume_id(p, n, id, &why) < 0)
		CHECK(sodium_is_zero(id, sizeof(id)));
	r = mpk_keys_resume_check(&t, p, n, FIXED_NOW, &req, &why);
	CHECK(r == 0 || n != sizeof(f.resume) || memcmp(p, f.resume, n));
	if (r < 0) {
		CHECK(why != NULL);
		CHECK(sodium_is_zero((const uint8_t *)&req, sizeof(req)));
		CHECK(!memcmp(&t, &before, sizeof(t)));
		return;
	}
	CHECK(n == sizeof(f.resume) && !memcmp(p, f.resume, n));
	CHECK(!memcmp(req.hash, f.resume_hash, sizeof(req.hash)));
	/* The same bytes again are a replay. */
	CHECK(mpk_keys_resume_check(&t, p, n, FIXED_NOW, &req, &why) == -EALREADY);
}

static void fuzz_resumed(const uint8_t *p, size_t n)
{
	struct mpk_keys_session cs;
	const char *why = NULL;
	int status = 1, r;

	r = mpk_keys_resumed_check(&f.client_ticket, f.resume_hash, p, n, &cs, &status, &why);
	CHECK(r == 0 || n != sizeof(f.resumed) || memcmp(p, f.resumed, n));
	CHECK(r == -ECONNREFUSED || n != sizeof(f.resumed_refusal) ||
	      memcmp(p, f.resumed_refusal, n));
	if (r < 0) {
		CHECK(why != NULL);
		CHECK(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)));
		CHECK(r == -ECONNREFUSED ? status < 0 && status >= -4095 : status == 0);
		return;
	}
	CHECK(n == sizeof(f.resumed) && !memcmp(p, f.resumed, n));
	CHECK(!strcmp(cs.peer_name, "server"));
}

static void fuzz_cert(const uint8_t *p, size_t n)
{
	struct mpk_keys_cert c;
	const char *why;

	if (mpk_keys_cert_parse(p, n, &c, &why) < 0) {
		CHECK(sodium_is_zero((const uint8_t *)&c, sizeof(c)));
		return;
	}
	CHECK(mpk_keys_name_check(c.name) == 0 && c.not_before <= c.not_after);
	mpk_keys_cert_verify(&c, f.ca_pk, FIXED_NOW, &why);
}

static void fuzz_strings(int which, const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1), name[MPK_KEYS_NAME_MAX + 1], why[MPK_KEYS_WHY_MAX];
	struct mpk_keys_allow *a;

	CHECK(s);
	memcpy(s, p, n);
	s[n] = 0;
	if (which == 'A') {
		if (mpk_keys_allow_parse(s, &a, why, sizeof(why)) == 0) {
			mpk_keys_allow_check(a, 50051, "greeter", NULL);
			mpk_keys_allow_check(a, 1, NULL, NULL);
			mpk_keys_allow_free(a);
		} else {
			CHECK(a == NULL);
		}
	} else {
		int r = mpk_keys_endpoint_name(s, 50051, name, why, sizeof(why));

		CHECK(r <= 0 ? name[0] == 0 : mpk_keys_name_check(name) == 0);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		CHECK(fixed_init(&f) == 0);
		ready = 1;
	}
	if (size < 1)
		return 0;
	switch (data[0]) {
	case 'H': fuzz_hello(data + 1, size - 1); break;
	case 'R': fuzz_reply(data + 1, size - 1); break;
	case 'S': fuzz_resume(data + 1, size - 1); break;
	case 'D': fuzz_resumed(data + 1, size - 1); break;
	case 'C': fuzz_cert(data + 1, size - 1); break;
	case 'A':
	case 'E': fuzz_strings(data[0], data + 1, size - 1); break;
	default: break;
	}
	return 0;
}
