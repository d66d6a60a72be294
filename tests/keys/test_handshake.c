/* SPDX-License-Identifier: MIT */
/*
 * The handshake matrix: each bad case refused with its own error and
 * reason, and nothing usable left in the outputs; the good case gives both
 * sides one session key, new every time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "kt.h"

#define SPORT 50051
#define CPORT 40000
#define RING  (1u << 20)

static char dir[256], ca_a[300], ca_b[300];
static uint8_t ca_pk[MPK_KEYS_PK_BYTES];
static struct mpk_keys_identity *alice, *greeter, *other, *old, *young, *stranger;
static struct mpk_keys_replay *rc;
static int64_t now;
static const uint8_t token[MPK_KEYS_TOKEN_BYTES] = "0123456789abcdef";

static void setup(void)
{
	kt_tmpdir(dir, sizeof(dir));
	snprintf(ca_a, sizeof(ca_a), "%s/a", dir);
	snprintf(ca_b, sizeof(ca_b), "%s/b", dir);
	kt_ca(ca_a);
	kt_ca(ca_b);
	kt_ca_pk(ca_a, ca_pk);
	alice = kt_identity(ca_a, "alice", -60, 3600);
	greeter = kt_identity(ca_a, "greeter", -60, 3600);
	other = kt_identity(ca_a, "other", -60, 3600);
	old = kt_identity(ca_a, "old", -7200, -3600);
	young = kt_identity(ca_a, "young", 3600, 7200);
	stranger = kt_identity(ca_b, "stranger", -60, 3600);
	cr_assert_eq(mpk_keys_replay_new(0, 0, &rc), 0);
	now = (int64_t)time(NULL);
}

static void teardown(void)
{
	mpk_keys_identity_free(alice);
	mpk_keys_identity_free(greeter);
	mpk_keys_identity_free(other);
	mpk_keys_identity_free(old);
	mpk_keys_identity_free(young);
	mpk_keys_identity_free(stranger);
	mpk_keys_replay_free(rc);
	kt_rmrf(dir);
}

TestSuite(handshake, .init = setup, .fini = teardown);

static void hello_of(struct mpk_keys_client *c, struct mpk_keys_identity *id,
		     uint8_t hello[MPK_KEYS_HELLO_BYTES])
{
	int r = mpk_keys_client_hello(c, id, now, SPORT, CPORT, RING, hello);

	cr_assert_eq(r, 0, "mpk_keys_client_hello = %d", r);
}

/* The server's side of a good HELLO, answered by id. */
static void reply_of(const uint8_t *hello, struct mpk_keys_identity *id,
		     uint8_t reply[MPK_KEYS_REPLY_BYTES], struct mpk_keys_session *ss)
{
	struct mpk_keys_server s;
	const char *why;
	int r = mpk_keys_server_hello(&s, hello, MPK_KEYS_HELLO_BYTES, ca_pk, now, rc, &why);

	cr_assert_eq(r, 0, "mpk_keys_server_hello = %d (%s)", r, why);
	r = mpk_keys_server_reply(&s, id, token, RING, reply, ss);
	cr_assert_eq(r, 0, "mpk_keys_server_reply = %d", r);
	cr_assert(sodium_is_zero((const uint8_t *)&s, sizeof(s)), "server state not wiped");
}

/* Server verdict on a HELLO buffer: the code, the reason, and a wiped state. */
static void server_refuses(const void *hello, size_t len, int64_t at, int want,
			   const char *want_why)
{
	struct mpk_keys_server s;
	const char *why = NULL;
	int r;

	memset(&s, 0xa5, sizeof(s));
	r = mpk_keys_server_hello(&s, hello, len, ca_pk, at, rc, &why);
	cr_assert_eq(r, want, "server_hello = %d (%s), want %d (%s)", r, why ? why : "-", want,
		     want_why);
	cr_assert(why && strstr(why, want_why), "reason \"%s\", want \"%s\"", why ? why : "(null)",
		  want_why);
	cr_assert(sodium_is_zero((const uint8_t *)&s, sizeof(s)),
		  "server state not wiped after a refusal");
}

/* Client verdict on a REPLY buffer. */
static void client_refuses(struct mpk_keys_client *c, const void *reply, size_t len,
			   const char *expect_name, int want, const char *want_why)
{
	struct mpk_keys_session cs;
	const char *why = NULL;
	int r, status = 12345;

	memset(&cs, 0xa5, sizeof(cs));
	r = mpk_keys_client_reply(c, reply, len, ca_pk, now, expect_name, &cs, &status, &why);
	cr_assert_eq(r, want, "client_reply = %d (%s), want %d (%s)", r, why ? why : "-", want,
		     want_why);
	cr_assert(why && strstr(why, want_why), "reason \"%s\", want \"%s\"", why ? why : "(null)",
		  want_why);
	cr_assert(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)),
		  "session not wiped: a refused handshake left a key");
	cr_assert(sodium_is_zero((const uint8_t *)c, sizeof(*c)), "client state not wiped");
	if (want != -ECONNREFUSED)
		cr_assert_eq(status, 0, "peer_status %d on a non-refusal", status);
}

Test(handshake, happy_path_same_key_both_sides_new_each_time)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_session ss, cs, first;
	struct mpk_keys_server s;
	struct mpk_keys_client c;
	const char *why;
	int r, status = 7;

	for (int round = 0; round < 2; round++) {
		hello_of(&c, alice, hello);
		r = mpk_keys_server_hello(&s, hello, sizeof(hello), ca_pk, now, rc, &why);
		cr_assert_eq(r, 0, "server_hello = %d (%s)", r, why);
		cr_assert_str_eq(s.client_name, "alice");
		cr_assert_eq(s.server_port, SPORT);
		cr_assert_eq(s.client_port, CPORT);
		cr_assert_eq(s.ring_bytes, RING);
		r = mpk_keys_server_reply(&s, greeter, token, RING, reply, &ss);
		cr_assert_eq(r, 0);
		r = mpk_keys_client_reply(&c, reply, sizeof(reply), ca_pk, now, "greeter", &cs,
					  &status, &why);
		cr_assert_eq(r, 0, "client_reply = %d (%s)", r, why);
		cr_assert_eq(status, 0);
		cr_assert(!sodium_is_zero(cs.key, sizeof(cs.key)));
		cr_assert_eq(memcmp(cs.key, ss.key, sizeof(cs.key)), 0, "the sides' keys differ");
		cr_assert_eq(memcmp(cs.token, token, sizeof(token)), 0);
		cr_assert_eq(cs.ring_bytes, RING);
		cr_assert_str_eq(cs.peer_name, "greeter");
		cr_assert_str_eq(ss.peer_name, "alice");
		if (round == 0)
			first = cs;
		else
			cr_assert_neq(memcmp(first.key, cs.key, sizeof(cs.key)), 0,
				      "two handshakes gave the same session key");
	}
	/* NULL expected name: any identity of the CA will do. */
	hello_of(&c, alice, hello);
	reply_of(hello, other, reply, &ss);
	r = mpk_keys_client_reply(&c, reply, sizeof(reply), ca_pk, now, NULL, &cs, NULL, &why);
	cr_assert_eq(r, 0, "client_reply(any name) = %d (%s)", r, why);
	cr_assert_str_eq(cs.peer_name, "other");
}

Test(handshake, garbage_or_missing_client_cert)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES];
	struct mpk_keys_client c;

	hello_of(&c, alice, hello);
	memset(hello + 12, 0, MPK_KEYS_CERT_BYTES);
	server_refuses(hello, sizeof(hello), now, -EPROTO, "client certificate malformed");
	randombytes_buf(hello + 12, MPK_KEYS_CERT_BYTES);
	server_refuses(hello, sizeof(hello), now, -EPROTO, "client certificate malformed");
	hello_of(&c, alice, hello);
	hello[12 + 14] = '9'; /* "mpklink-cert v9" */
	server_refuses(hello, sizeof(hello), now, -EPROTONOSUPPORT,
		       "unsupported client certificate version");
}

Test(handshake, client_cert_from_another_ca)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES];
	struct mpk_keys_client c;

	hello_of(&c, stranger, hello);
	server_refuses(hello, sizeof(hello), now, -EKEYREJECTED, "issued by another CA");
}

Test(handshake, client_cert_expired_or_not_yet_valid)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES];
	struct mpk_keys_client c;

	hello_of(&c, old, hello);
	server_refuses(hello, sizeof(hello), now, -EKEYEXPIRED, "client certificate expired");
	hello_of(&c, young, hello);
	server_refuses(hello, sizeof(hello), now, -ETIME, "client certificate not yet valid");
}

Test(handshake, tampered_cert_and_tampered_hello)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES];
	struct mpk_keys_client c;

	hello_of(&c, alice, hello);
	hello[12 + 112] ^= 0x01; /* a byte of the certified binary digest */
	server_refuses(hello, sizeof(hello), now, -EBADMSG, "client certificate signature invalid");
	hello_of(&c, alice, hello);
	hello[324] ^= 0x01; /* the server port, under the HELLO signature */
	server_refuses(hello, sizeof(hello), now, -EBADMSG, "HELLO signature invalid");
	hello_of(&c, alice, hello);
	hello[MPK_KEYS_HELLO_BYTES - 1] ^= 0x80; /* the signature itself */
	server_refuses(hello, sizeof(hello), now, -EBADMSG, "HELLO signature invalid");
}

Test(handshake, malformed_hellos)
{
	uint8_t hello[MPK_KEYS_MSG_MAX] = {0}, junk[MPK_KEYS_HELLO_BYTES];
	struct mpk_keys_client c;

	hello_of(&c, alice, hello);
	server_refuses(hello, MPK_KEYS_HELLO_BYTES - 1, now, -EPROTO, "HELLO truncated");
	server_refuses(hello, 10, now, -EPROTO, "HELLO truncated");
	server_refuses(hello, 0, now, -EPROTO, "HELLO truncated");
	server_refuses(NULL, 0, now, -EPROTO, "HELLO truncated");
	server_refuses(hello, MPK_KEYS_HELLO_BYTES + 1, now, -EMSGSIZE, "HELLO too long");
	server_refuses(hello, sizeof(hello), now, -EMSGSIZE, "HELLO too long");
	randombytes_buf(junk, sizeof(junk));
	server_refuses(junk, sizeof(junk), now, -EPROTO, "bad magic");
	hello[8] = 2;
	server_refuses(hello, MPK_KEYS_HELLO_BYTES, now, -EPROTONOSUPPORT,
		       "unsupported HELLO version");
	hello[8] = 1;
	hello[10] = 1;
	server_refuses(hello, MPK_KEYS_HELLO_BYTES, now, -EPROTO, "reserved");
	hello[10] = 0;
	/* The unmodified HELLO still passes: each refusal above was its own. */
	{
		struct mpk_keys_server s;
		const char *why;

		cr_assert_eq(mpk_keys_server_hello(&s, hello, MPK_KEYS_HELLO_BYTES, ca_pk, now, rc,
						   &why),
			     0, "%s", why);
		mpk_keys_server_clear(&s);
	}
}

Test(handshake, replayed_hello_refused)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES];
	struct mpk_keys_server s;
	struct mpk_keys_client c;
	const char *why;

	hello_of(&c, alice, hello);
	cr_assert_eq(mpk_keys_server_hello(&s, hello, sizeof(hello), ca_pk, now, rc, &why), 0);
	mpk_keys_server_clear(&s);
	server_refuses(hello, sizeof(hello), now, -EALREADY, "replayed HELLO");
	/* Still refused later in the window, and stale once it has passed. */
	server_refuses(hello, sizeof(hello), now + MPK_KEYS_FRESH_WINDOW, -EALREADY,
		       "replayed HELLO");
	server_refuses(hello, sizeof(hello), now + MPK_KEYS_FRESH_WINDOW + 1, -ESTALE,
		       "freshness window");
}

Test(handshake, stale_or_future_timestamp)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES];
	struct mpk_keys_server s;
	struct mpk_keys_client c;
	const char *why;

	hello_of(&c, alice, hello);
	server_refuses(hello, sizeof(hello), now + MPK_KEYS_FRESH_WINDOW + 1, -ESTALE,
		       "freshness window");
	server_refuses(hello, sizeof(hello), now - MPK_KEYS_FRESH_WINDOW - 1, -ESTALE,
		       "freshness window");
	/* The edge of the window is inside it. */
	cr_assert_eq(mpk_keys_server_hello(&s, hello, sizeof(hello), ca_pk,
					   now + MPK_KEYS_FRESH_WINDOW, rc, &why),
		     0, "%s", why);
	mpk_keys_server_clear(&s);
}

Test(handshake, replay_cache_full_refuses_rather_than_forgets)
{
	uint8_t h1[MPK_KEYS_HELLO_BYTES], h2[MPK_KEYS_HELLO_BYTES];
	struct mpk_keys_replay *small;
	struct mpk_keys_server s;
	struct mpk_keys_client c;
	const char *why;

	cr_assert_eq(mpk_keys_replay_new(5, 1, &small), 0);
	hello_of(&c, alice, h1);
	hello_of(&c, alice, h2);
	cr_assert_eq(mpk_keys_server_hello(&s, h1, sizeof(h1), ca_pk, now, small, &why), 0);
	cr_assert_eq(mpk_keys_server_hello(&s, h2, sizeof(h2), ca_pk, now, small, &why), -ENOBUFS);
	cr_assert(strstr(why, "replay cache full"));
	/* While h1's nonce is live, its slot stays taken... */
	cr_assert_eq(mpk_keys_server_hello(&s, h2, sizeof(h2), ca_pk, now + 5, small, &why),
		     -ENOBUFS);
	/* ...and once it has aged out (stale anyway), the slot is free. */
	cr_assert_eq(mpk_keys_server_hello(&s, h1, sizeof(h1), ca_pk, now + 6, small, &why),
		     -ESTALE);
	cr_assert_eq(mpk_keys_client_hello(&c, alice, now + 6, SPORT, CPORT, RING, h2), 0);
	cr_assert_eq(mpk_keys_server_hello(&s, h2, sizeof(h2), ca_pk, now + 6, small, &why), 0,
		     "%s", why);
	mpk_keys_server_clear(&s);
	mpk_keys_replay_free(small);
	cr_assert_eq(mpk_keys_replay_new(3601, 1, &small), -EINVAL);
}

Test(handshake, name_not_allowed_for_port_gets_a_refusal)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_allow *allow;
	struct mpk_keys_session cs;
	struct mpk_keys_server s;
	struct mpk_keys_client c;
	const char *why;
	int r, status = 0;

	cr_assert_eq(mpk_keys_allow_parse("50051:bob|carol,8080:*", &allow, NULL, 0), 0);
	hello_of(&c, alice, hello);
	cr_assert_eq(mpk_keys_server_hello(&s, hello, sizeof(hello), ca_pk, now, rc, &why), 0);
	r = mpk_keys_allow_check(allow, s.server_port, s.client_name, &why);
	cr_assert_eq(r, -EACCES);
	cr_assert(strstr(why, "not in MPKLINK_ALLOW"), "%s", why);
	mpk_keys_server_clear(&s);
	cr_assert_eq(mpk_keys_refusal(r, reply), 0);
	memset(&cs, 0x5a, sizeof(cs));
	r = mpk_keys_client_reply(&c, reply, sizeof(reply), ca_pk, now, "greeter", &cs, &status,
				  &why);
	cr_assert_eq(r, -ECONNREFUSED, "client_reply = %d (%s)", r, why);
	cr_assert_eq(status, -EACCES, "peer_status %d", status);
	cr_assert(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)), "a refusal left a session");
	mpk_keys_allow_free(allow);
}

Test(handshake, refusals_are_strict)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_client c;

	cr_assert_eq(mpk_keys_refusal(0, reply), -EINVAL);
	cr_assert_eq(mpk_keys_refusal(5, reply), -EINVAL);
	cr_assert_eq(mpk_keys_refusal(-4096, reply), -EINVAL);
	/* A refusal carrying anything after the status is not believed. */
	hello_of(&c, alice, hello);
	cr_assert_eq(mpk_keys_refusal(-EACCES, reply), 0);
	reply[200] = 1;
	client_refuses(&c, reply, sizeof(reply), NULL, -EPROTO, "malformed refusal");
	hello_of(&c, alice, hello);
	cr_assert_eq(mpk_keys_refusal(-EACCES, reply), 0);
	reply[12] = 5; /* status 5: positive */
	reply[13] = reply[14] = reply[15] = 0;
	client_refuses(&c, reply, sizeof(reply), NULL, -EPROTO, "malformed refusal");
}

Test(handshake, server_not_the_expected_name)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_session ss;
	struct mpk_keys_client c;

	hello_of(&c, alice, hello);
	reply_of(hello, other, reply, &ss);
	client_refuses(&c, reply, sizeof(reply), "greeter", -EPERM, "not the expected identity");
}

Test(handshake, server_cert_checked_like_the_client_one)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_session ss;
	struct mpk_keys_client c;

	hello_of(&c, alice, hello);
	reply_of(hello, stranger, reply, &ss);
	client_refuses(&c, reply, sizeof(reply), NULL, -EKEYREJECTED,
		       "server certificate issued by another CA");
	hello_of(&c, alice, hello);
	reply_of(hello, old, reply, &ss);
	client_refuses(&c, reply, sizeof(reply), NULL, -EKEYEXPIRED, "server certificate expired");
	hello_of(&c, alice, hello);
	reply_of(hello, young, reply, &ss);
	client_refuses(&c, reply, sizeof(reply), NULL, -ETIME,
		       "server certificate not yet valid");
	hello_of(&c, alice, hello);
	reply_of(hello, greeter, reply, &ss);
	reply[16 + 112] ^= 0x04; /* the server certificate's digest */
	client_refuses(&c, reply, sizeof(reply), NULL, -EBADMSG,
		       "server certificate signature invalid");
	hello_of(&c, alice, hello);
	reply_of(hello, greeter, reply, &ss);
	memset(reply + 16, 0, MPK_KEYS_CERT_BYTES);
	client_refuses(&c, reply, sizeof(reply), NULL, -EPROTO, "server certificate malformed");
}

Test(handshake, reply_for_another_hello_or_tampered)
{
	uint8_t h1[MPK_KEYS_HELLO_BYTES], h2[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_client c1, c2;
	struct mpk_keys_session ss;

	hello_of(&c1, alice, h1);
	hello_of(&c2, alice, h2);
	reply_of(h2, greeter, reply, &ss);
	client_refuses(&c1, reply, sizeof(reply), "greeter", -EBADMSG, "answers another HELLO");
	/* The same REPLY is fine for the HELLO it answers... */
	{
		struct mpk_keys_session cs;
		const char *why;

		cr_assert_eq(mpk_keys_client_reply(&c2, reply, sizeof(reply), ca_pk, now, "greeter",
						   &cs, NULL, &why),
			     0, "%s", why);
		cr_assert_eq(memcmp(cs.key, ss.key, sizeof(cs.key)), 0);
	}
	/* ...once: the client state is spent. */
	client_refuses(&c2, reply, sizeof(reply), "greeter", -EINVAL, "no HELLO pending");

	hello_of(&c1, alice, h1);
	reply_of(h1, greeter, reply, &ss);
	reply[304] ^= 1; /* the token */
	client_refuses(&c1, reply, sizeof(reply), "greeter", -EBADMSG, "REPLY signature invalid");
}

Test(handshake, malformed_replies)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_MSG_MAX] = {0}, junk[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_session ss;
	struct mpk_keys_client c;

	hello_of(&c, alice, hello);
	reply_of(hello, greeter, reply, &ss);
	client_refuses(&c, reply, MPK_KEYS_REPLY_BYTES - 1, NULL, -EPROTO, "REPLY truncated");
	hello_of(&c, alice, hello);
	client_refuses(&c, reply, 3, NULL, -EPROTO, "REPLY truncated");
	hello_of(&c, alice, hello);
	client_refuses(&c, reply, MPK_KEYS_REPLY_BYTES + 1, NULL, -EMSGSIZE, "REPLY too long");
	hello_of(&c, alice, hello);
	client_refuses(&c, reply, sizeof(reply), NULL, -EMSGSIZE, "REPLY too long");
	hello_of(&c, alice, hello);
	randombytes_buf(junk, sizeof(junk));
	client_refuses(&c, junk, sizeof(junk), NULL, -EPROTO, "bad magic");
	hello_of(&c, alice, hello);
	client_refuses(&c, hello, sizeof(hello), NULL, -EPROTO, "bad magic"); /* a HELLO */

	hello_of(&c, alice, hello);
	reply_of(hello, greeter, reply, &ss);
	reply[8] = 9;
	client_refuses(&c, reply, MPK_KEYS_REPLY_BYTES, NULL, -EPROTONOSUPPORT,
		       "unsupported REPLY version");
	hello_of(&c, alice, hello);
	reply_of(hello, greeter, reply, &ss);
	reply[11] = 1;
	client_refuses(&c, reply, MPK_KEYS_REPLY_BYTES, NULL, -EPROTO, "reserved");
	hello_of(&c, alice, hello);
	reply_of(hello, greeter, reply, &ss);
	reply[320] = 1; /* ring_bytes 2^20 + 1 */
	client_refuses(&c, reply, MPK_KEYS_REPLY_BYTES, NULL, -EPROTO, "ring size");
}

Test(handshake, bad_arguments)
{
	uint8_t hello[MPK_KEYS_HELLO_BYTES], reply[MPK_KEYS_REPLY_BYTES];
	struct mpk_keys_session ss;
	struct mpk_keys_server s;
	struct mpk_keys_client c;

	cr_assert_eq(mpk_keys_client_hello(&c, alice, now, 0, CPORT, RING, hello), -EINVAL);
	cr_assert_eq(mpk_keys_client_hello(&c, alice, now, SPORT, 0, RING, hello), -EINVAL);
	cr_assert_eq(mpk_keys_client_hello(&c, alice, now, SPORT, CPORT, 4095, hello), -EINVAL);
	cr_assert_eq(mpk_keys_client_hello(&c, alice, now, SPORT, CPORT, 3u << 20, hello), -EINVAL);
	cr_assert_eq(mpk_keys_client_hello(&c, alice, now, SPORT, CPORT, 0, hello), 0);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(mpk_keys_server_reply(&s, greeter, token, RING, reply, &ss), -EINVAL,
		     "a REPLY without a verified HELLO");
	cr_assert(sodium_is_zero(reply, sizeof(reply)));
	cr_assert_eq(mpk_keys_server_hello(&s, hello, sizeof(hello), ca_pk, now, rc, NULL), 0);
	cr_assert_eq(mpk_keys_server_reply(&s, greeter, token, 0, reply, &ss), -EINVAL,
		     "a REPLY must carry a real ring size");
	cr_assert(sodium_is_zero((const uint8_t *)&s, sizeof(s)), "state not wiped");
}
