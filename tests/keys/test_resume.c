/* SPDX-License-Identifier: MIT */
/*
 * Resumption (keys.h): a handshake's session, kept as a ticket by both
 * sides, makes batches with one keyed hash each way. Each bad case is
 * refused with its own error and reason, and leaves nothing usable; the
 * good case gives both sides one batch key, new for every batch and
 * never the handshake's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "kt.h"

#define SPORT 50051
#define RING  (1u << 20)

static char dir[256];
static uint8_t ca_pk[MPK_KEYS_PK_BYTES];
static struct mpk_keys_identity *alice, *greeter;
static struct mpk_keys_replay *rc;
static int64_t now;
static const uint8_t token[MPK_KEYS_TOKEN_BYTES] = "0123456789abcdef";
/* The tickets of one handshake: the client's and the server's. */
static struct mpk_keys_ticket ct, st;
static struct mpk_keys_session hs; /* the handshake's session (client's) */

static void setup(void)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_session ss;
	struct mpk_keys_server s;
	struct mpk_keys_client c;
	const char *why = NULL;

	kt_tmpdir(dir, sizeof(dir));
	kt_ca(dir);
	kt_ca_pk(dir, ca_pk);
	alice = kt_identity(dir, "alice", -60, 3600);
	greeter = kt_identity(dir, "greeter", -60, 7200);
	cr_assert_eq(mpk_keys_replay_new(0, 0, &rc), 0);
	now = (int64_t)time(NULL);
	cr_assert_eq(mpk_keys_client_hello(&c, alice, now, SPORT, 2, RING, hello), 0);
	cr_assert_eq(mpk_keys_server_hello(&s, hello, sizeof(hello), ca_pk, now, rc, &why), 0);
	cr_assert_eq(mpk_keys_server_reply(&s, greeter, token, RING, reply, &ss), 0);
	cr_assert_eq(mpk_keys_client_reply(&c, reply, sizeof(reply), ca_pk, now, "greeter", &hs,
					   NULL, &why),
		     0);
	cr_assert_eq(mpk_keys_ticket_open(&hs, now + 600, &ct), 0);
	cr_assert_eq(mpk_keys_ticket_open(&ss, now + 600, &st), 0);
}

static void teardown(void)
{
	mpk_keys_identity_free(alice);
	mpk_keys_identity_free(greeter);
	mpk_keys_replay_free(rc);
	kt_rmrf(dir);
}

TestSuite(resume, .init = setup, .fini = teardown);

/* One batch under the tickets: the RESUME, the server's check and
 * RESUMED, the client's check. Returns the client's batch session. */
static struct mpk_keys_session batch(uint16_t count)
{
	uint8_t q[MPK_KEYS_RESUME_BYTES], d[MPK_KEYS_RESUMED_BYTES], hash[32];
	uint8_t id[MPK_KEYS_TICKET_ID_BYTES];
	struct mpk_keys_resume_req req;
	struct mpk_keys_session cs, ss;
	const char *why = NULL;
	int r;

	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, count, 0, q, hash), 0);
	cr_assert_eq(mpk_keys_resume_id(q, sizeof(q), id, &why), 0);
	cr_assert_eq(memcmp(id, st.id, sizeof(id)), 0, "the RESUME names another ticket");
	r = mpk_keys_resume_check(&st, q, sizeof(q), now, &req, &why);
	cr_assert_eq(r, 0, "resume_check = %d (%s)", r, why);
	cr_assert_eq(req.server_port, SPORT);
	cr_assert_eq(req.count, count);
	cr_assert_eq(req.ring_bytes, 0);
	cr_assert_eq(mpk_keys_resumed(&st, &req, token, RING, d, &ss), 0);
	r = mpk_keys_resumed_check(&ct, hash, d, sizeof(d), &cs, NULL, &why);
	cr_assert_eq(r, 0, "resumed_check = %d (%s)", r, why);
	cr_assert_eq(memcmp(cs.key, ss.key, sizeof(cs.key)), 0, "the sides' batch keys differ");
	cr_assert_eq(memcmp(cs.token, token, sizeof(token)), 0);
	cr_assert_eq(cs.ring_bytes, RING);
	cr_assert_str_eq(cs.peer_name, "greeter");
	cr_assert_str_eq(ss.peer_name, "alice");
	return cs;
}

/* The server's verdict on a RESUME: its code and reason, nothing taken. */
static void server_refuses(const void *q, size_t len, int64_t at, int want, const char *want_why)
{
	struct mpk_keys_ticket before = st;
	struct mpk_keys_resume_req req;
	const char *why = NULL;
	int r;

	memset(&req, 0xa5, sizeof(req));
	r = mpk_keys_resume_check(&st, q, len, at, &req, &why);
	cr_assert_eq(r, want, "resume_check = %d (%s), want %d (%s)", r, why ? why : "-", want,
		     want_why);
	cr_assert(why && strstr(why, want_why), "reason \"%s\", want \"%s\"", why ? why : "(null)",
		  want_why);
	cr_assert(sodium_is_zero((const uint8_t *)&req, sizeof(req)), "request not wiped");
	cr_assert_eq(memcmp(&before, &st, sizeof(st)), 0, "a refused RESUME changed the ticket");
}

/* The client's verdict on a RESUMED: its code and reason, no key. */
static void client_refuses(const uint8_t hash[32], const void *d, size_t len, int want,
			   const char *want_why)
{
	struct mpk_keys_session cs;
	const char *why = NULL;
	int r, status = 12345;

	memset(&cs, 0xa5, sizeof(cs));
	r = mpk_keys_resumed_check(&ct, hash, d, len, &cs, &status, &why);
	cr_assert_eq(r, want, "resumed_check = %d (%s), want %d (%s)", r, why ? why : "-", want,
		     want_why);
	cr_assert(why && strstr(why, want_why), "reason \"%s\", want \"%s\"", why ? why : "(null)",
		  want_why);
	cr_assert(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)), "a refused RESUMED left a key");
	if (want != -ECONNREFUSED)
		cr_assert_eq(status, 0);
}

Test(resume, tickets_agree_and_batches_get_new_keys)
{
	struct mpk_keys_session a, b;

	cr_assert_eq(memcmp(ct.id, st.id, sizeof(ct.id)), 0);
	cr_assert_eq(memcmp(ct.secret, st.secret, sizeof(ct.secret)), 0);
	cr_assert_neq(memcmp(ct.secret, hs.key, sizeof(ct.secret)), 0,
		      "the ticket's secret is the session key itself");
	/* The earlier of the chosen expiry and the peer's certificate. */
	cr_assert_eq(ct.expires, now + 600);
	cr_assert_eq(mpk_keys_ticket_open(&hs, now + 100000, &ct), 0);
	cr_assert_eq(ct.expires, hs.peer_not_after);
	cr_assert_lt(ct.expires, now + 100000);
	cr_assert_eq(mpk_keys_ticket_open(&hs, now + 600, &ct), 0);

	a = batch(4);
	b = batch(32);
	cr_assert_neq(memcmp(a.key, b.key, sizeof(a.key)), 0, "two batches got one key");
	cr_assert_neq(memcmp(a.key, hs.key, sizeof(a.key)), 0, "a batch got the handshake's key");
	cr_assert_eq(ct.number, 2);
	cr_assert_eq(st.number, 2);
}

Test(resume, replayed_resume_refused_out_of_order_taken_once)
{
	uint8_t q[5][MPK_KEYS_RESUME_BYTES], hash[32];
	struct mpk_keys_resume_req req;
	const char *why;

	for (int i = 0; i < 5; i++)
		cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 0, q[i], hash), 0);
	/* Batches asked for at once arrive in any order: 3, 1, 5, 2, 4. */
	int order[] = {2, 0, 4, 1, 3};
	for (int i = 0; i < 5; i++)
		cr_assert_eq(mpk_keys_resume_check(&st, q[order[i]], MPK_KEYS_RESUME_BYTES, now,
						   &req, &why),
			     0, "RESUME %d refused: %s", order[i] + 1, why);
	for (int i = 0; i < 5; i++)
		server_refuses(q[i], MPK_KEYS_RESUME_BYTES, now, -EALREADY, "replayed RESUME");
	/* Past the window, an old number is refused even if never seen. */
	uint8_t late[MPK_KEYS_RESUME_BYTES];
	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 0, late, hash), 0); /* number 6 */
	for (int i = 0; i < MPK_KEYS_RESUME_WINDOW; i++) {
		cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 0, q[0], hash), 0);
		cr_assert_eq(mpk_keys_resume_check(&st, q[0], sizeof(q[0]), now, &req, &why), 0);
	}
	server_refuses(late, sizeof(late), now, -EALREADY, "older than the window");
}

Test(resume, tampered_or_foreign_resume_refused)
{
	uint8_t q[MPK_KEYS_RESUME_BYTES], bad[MPK_KEYS_RESUME_BYTES], hash[32];
	struct mpk_keys_ticket other;
	struct mpk_keys_session s2 = hs;

	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 0, q, hash), 0);
	/* Every byte after the header, flipped in turn: refused, never taken. */
	for (size_t i = 12; i < sizeof(q); i++) {
		memcpy(bad, q, sizeof(q));
		bad[i] ^= 0x40;
		struct mpk_keys_resume_req req;
		const char *why = NULL;
		struct mpk_keys_ticket before = st;
		int r = mpk_keys_resume_check(&st, bad, sizeof(bad), now, &req, &why);

		cr_assert_lt(r, 0, "RESUME with byte %zu flipped accepted", i);
		cr_assert(r == -EBADMSG || r == -EPROTO, "byte %zu: %d (%s)", i, r, why);
		cr_assert_eq(memcmp(&before, &st, sizeof(st)), 0, "byte %zu: ticket changed", i);
	}
	/* The genuine one still goes through: nothing was taken meanwhile. */
	{
		struct mpk_keys_resume_req req;
		const char *why;

		cr_assert_eq(mpk_keys_resume_check(&st, q, sizeof(q), now, &req, &why), 0);
	}
	/* A ticket of another session: its RESUME names another id, and a
	 * forged id does not make its tag good. */
	s2.key[0] ^= 1;
	cr_assert_eq(mpk_keys_ticket_open(&s2, now + 600, &other), 0);
	cr_assert_eq(mpk_keys_resume(&other, now, SPORT, 2, 0, q, hash), 0);
	server_refuses(q, sizeof(q), now, -EBADMSG, "names another ticket");
	memcpy(q + 16, st.id, MPK_KEYS_TICKET_ID_BYTES);
	server_refuses(q, sizeof(q), now, -EBADMSG, "RESUME tag invalid");
}

Test(resume, malformed_and_expired)
{
	uint8_t q[MPK_KEYS_RESUME_BYTES], big[MPK_KEYS_RESUME_BYTES + 1], hash[32];
	uint8_t id[MPK_KEYS_TICKET_ID_BYTES];
	const char *why;

	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 0, q, hash), 0);
	server_refuses(q, sizeof(q) - 1, now, -EPROTO, "RESUME truncated");
	memcpy(big, q, sizeof(q));
	big[sizeof(q)] = 0;
	server_refuses(big, sizeof(big), now, -EMSGSIZE, "RESUME too long");
	cr_assert_eq(mpk_keys_resume_id(big, sizeof(big), id, &why), -EMSGSIZE);
	memcpy(big, q, sizeof(q));
	big[8] = 2;
	server_refuses(big, sizeof(q), now, -EPROTONOSUPPORT, "unsupported RESUME version");
	memcpy(big, q, sizeof(q));
	big[0] = 'X';
	server_refuses(big, sizeof(q), now, -EPROTO, "not a RESUME");
	cr_assert_eq(mpk_keys_resume_id(big, sizeof(q), id, &why), -EPROTO);
	cr_assert(sodium_is_zero(id, sizeof(id)));
	/* Expired: the server refuses, the client will not make one. */
	server_refuses(q, sizeof(q), now + 601, -EKEYEXPIRED, "expired ticket");
	cr_assert_eq(mpk_keys_resume(&ct, now + 601, SPORT, 2, 0, q, hash), -EKEYEXPIRED);
	/* Bad arguments. */
	cr_assert_eq(mpk_keys_resume(&ct, now, 0, 2, 0, q, hash), -EINVAL);
	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 0, 0, q, hash), -EINVAL);
	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 5000, q, hash), -EINVAL);
	ct.number = UINT64_MAX;
	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 0, q, hash), -EOVERFLOW);
	{
		struct mpk_keys_session empty;

		memset(&empty, 0, sizeof(empty));
		cr_assert_eq(mpk_keys_ticket_open(&empty, now, &ct), -EINVAL);
	}
}

Test(resume, resumed_bound_to_its_resume_and_refusals_strict)
{
	uint8_t q1[MPK_KEYS_RESUME_BYTES], q2[MPK_KEYS_RESUME_BYTES], h1[32], h2[32];
	uint8_t d[MPK_KEYS_RESUMED_BYTES], bad[MPK_KEYS_RESUMED_BYTES];
	struct mpk_keys_resume_req req;
	struct mpk_keys_session ss, cs;
	const char *why;
	int status = 0;

	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 0, q1, h1), 0);
	cr_assert_eq(mpk_keys_resume(&ct, now, SPORT, 2, 0, q2, h2), 0);
	cr_assert_eq(mpk_keys_resume_check(&st, q1, sizeof(q1), now, &req, &why), 0);
	cr_assert_eq(mpk_keys_resumed(&st, &req, token, RING, d, &ss), 0);
	/* The answer to RESUME 1 does not answer RESUME 2. */
	client_refuses(h2, d, sizeof(d), -EBADMSG, "answers another RESUME");
	for (size_t i = 12; i < sizeof(d); i++) {
		memcpy(bad, d, sizeof(d));
		bad[i] ^= 0x01;
		cr_assert_lt(mpk_keys_resumed_check(&ct, h1, bad, sizeof(bad), &cs, NULL, &why), 0,
			     "RESUMED with byte %zu flipped accepted", i);
	}
	cr_assert_eq(mpk_keys_resumed_check(&ct, h1, d, sizeof(d), &cs, NULL, &why), 0);
	/* Refusals: the status is only the server's claim, and strict. */
	cr_assert_eq(mpk_keys_resumed_refusal(-ENOKEY, d), 0);
	client_refuses(h1, d, sizeof(d), -ECONNREFUSED, "refused");
	cr_assert_eq(mpk_keys_resumed_check(&ct, h1, d, sizeof(d), &cs, &status, &why),
		     -ECONNREFUSED);
	cr_assert_eq(status, -ENOKEY);
	d[20] = 1;
	client_refuses(h1, d, sizeof(d), -EPROTO, "malformed refusal");
	cr_assert_eq(mpk_keys_resumed_refusal(0, d), -EINVAL);
	cr_assert_eq(mpk_keys_resumed_refusal(-5000, d), -EINVAL);
	cr_assert(sodium_is_zero(d, sizeof(d)), "a refused refusal left bytes");
	cr_assert_eq(mpk_keys_resumed_refusal(-EACCES, d), 0);
	client_refuses(h1, d, sizeof(d) - 1, -EPROTO, "RESUMED truncated");
}
