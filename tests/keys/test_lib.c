/* SPDX-License-Identifier: MIT */
/* The library the launcher links: loaders and their error codes, the
 * identity's guarded page, binary checks, and the policy helpers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "kt.h"
#include "mpklink/pkey.h"

static char dir[256], ca[300], path[600], why[MPK_KEYS_WHY_MAX];

static void setup(void)
{
	kt_tmpdir(dir, sizeof(dir));
	snprintf(ca, sizeof(ca), "%s/ca", dir);
	kt_ca(ca);
}

static void teardown(void)
{
	kt_rmrf(dir);
}

TestSuite(lib, .init = setup, .fini = teardown);
TestSuite(policy);

static const char *P(const char *name)
{
	return kt_join(path, sizeof(path), ca, name);
}

Test(lib, name_check)
{
	static const char *const good[] = {"a", "greeter", "A-b_c.9", "..a", "ca2", "x.key"};
	static const char *const bad[] = {"", ".", "..", "ca", "a/b", "a b", "a:b", "a|b", "a=b",
					  "é", "a\n"};
	char long_ok[64], long_bad[65];

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		cr_expect_eq(mpk_keys_name_check(good[i]), 0, "'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect_eq(mpk_keys_name_check(bad[i]), -EINVAL, "'%s' accepted", bad[i]);
	memset(long_ok, 'n', 63);
	long_ok[63] = 0;
	memset(long_bad, 'n', 64);
	long_bad[64] = 0;
	cr_expect_eq(mpk_keys_name_check(long_ok), 0);
	cr_expect_eq(mpk_keys_name_check(long_bad), -EINVAL);
	cr_expect_eq(mpk_keys_name_check(NULL), -EINVAL);
}

Test(lib, cert_load_error_codes)
{
	struct mpk_keys_identity *id = kt_identity(ca, "svc", -10, 100);
	uint8_t raw[MPK_KEYS_CERT_BYTES + 8];
	struct mpk_keys_cert c;
	const char *w;
	size_t n;

	mpk_keys_identity_free(id);
	cr_assert_eq(kt_read(P("svc.cert"), raw, sizeof(raw), &n), 0);
	cr_assert_eq(mpk_keys_cert_parse(raw, n, &c, &w), 0);
	cr_assert_str_eq(c.name, "svc");
	cr_assert_eq(c.not_after - c.not_before, 110);

	cr_assert_eq(mpk_keys_cert_parse(raw, n - 1, &c, &w), -EPROTO);
	cr_assert_str_eq(w, "certificate truncated");
	cr_assert(sodium_is_zero((uint8_t *)&c, sizeof(c)), "output not wiped");
	cr_assert_eq(mpk_keys_cert_parse(raw, n + 1, &c, &w), -EMSGSIZE);
	raw[14] = '3';
	cr_assert_eq(mpk_keys_cert_parse(raw, n, &c, &w), -EPROTONOSUPPORT);
	raw[14] = '1';
	/* Bytes after the name's NUL must be zero: no hidden payload. */
	raw[16 + 10] = 'x';
	cr_assert_eq(mpk_keys_cert_parse(raw, n, &c, &w), -EPROTO);
	cr_assert_str_eq(w, "certificate name field malformed");
	raw[16 + 10] = 0;
	/* not_before > not_after. */
	raw[144 + 7] = 0x7f;
	cr_assert_eq(mpk_keys_cert_parse(raw, n, &c, &w), -EPROTO);
	cr_assert_str_eq(w, "certificate validity window inverted");

	cr_assert_eq(mpk_keys_cert_load(P("missing.cert"), &c, why, sizeof(why)), -ENOENT);
	cr_assert(strstr(why, "missing.cert"), "%s", why);
	cr_assert_eq(mpk_keys_cert_load(ca, &c, why, sizeof(why)), -EINVAL, "a directory");
	cr_assert(strstr(why, "not a regular file"), "%s", why);
	cr_assert_eq(kt_write(P("v9.cert"), "mpklink-cert v9\nxyz", 19, 0644), 0);
	cr_assert_eq(mpk_keys_cert_load(P("v9.cert"), &c, why, sizeof(why)), -EPROTONOSUPPORT);
	cr_assert(strstr(why, "version 9"), "%s", why);
}

Test(lib, cert_verify_codes)
{
	struct mpk_keys_identity *id = kt_identity(ca, "svc", -10, 100);
	const struct mpk_keys_cert *c = mpk_keys_identity_cert(id);
	uint8_t ca_pk[MPK_KEYS_PK_BYTES], other[MPK_KEYS_PK_BYTES];
	int64_t now = (int64_t)time(NULL);
	struct mpk_keys_cert t;
	const char *w;

	kt_ca_pk(ca, ca_pk);
	cr_assert_eq(mpk_keys_cert_verify(c, ca_pk, now, &w), 0);
	cr_assert_eq(mpk_keys_cert_verify(c, ca_pk, c->not_after, &w), 0, "not_after inclusive");
	cr_assert_eq(mpk_keys_cert_verify(c, ca_pk, c->not_before, &w), 0, "not_before inclusive");
	cr_assert_eq(mpk_keys_cert_verify(c, ca_pk, c->not_after + 1, &w), -EKEYEXPIRED);
	cr_assert_eq(mpk_keys_cert_verify(c, ca_pk, c->not_before - 1, &w), -ETIME);
	memcpy(other, ca_pk, sizeof(other));
	other[0] ^= 1;
	cr_assert_eq(mpk_keys_cert_verify(c, other, now, &w), -EKEYREJECTED);
	/* A forged issuer field does not help: the signature is checked
	 * against the CA key we trust. */
	t = *c;
	memcpy(t.issuer, other, sizeof(other));
	cr_assert_eq(mpk_keys_cert_verify(&t, other, now, &w), -EBADMSG);
	mpk_keys_identity_free(id);
}

/* The signature check is remembered for a certificate that passed it: a
 * copy differing in any one byte, or under another CA key, is checked in
 * full and fails, however often the original was seen. */
Test(lib, cert_verify_remembers_only_exact_bytes)
{
	struct mpk_keys_identity *id = kt_identity(ca, "svc", -10, 100);
	const struct mpk_keys_cert *c = mpk_keys_identity_cert(id);
	uint8_t ca_pk[MPK_KEYS_PK_BYTES];
	int64_t now = (int64_t)time(NULL);
	struct mpk_keys_cert t;
	const char *w;

	kt_ca_pk(ca, ca_pk);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(mpk_keys_cert_verify(c, ca_pk, now, &w), 0);
	for (size_t i = 0; i < sizeof(t.raw); i++) {
		t = *c;
		t.raw[i] ^= 0x10;
		cr_assert_eq(mpk_keys_cert_verify(&t, ca_pk, now, &w), -EBADMSG, "byte %zu", i);
		cr_assert_eq(mpk_keys_cert_verify(&t, ca_pk, now, &w), -EBADMSG, "byte %zu again", i);
	}
	/* A window checked on every call, hit or not. */
	cr_assert_eq(mpk_keys_cert_verify(c, ca_pk, c->not_after + 1, &w), -EKEYEXPIRED);
	cr_assert_eq(mpk_keys_cert_verify(c, ca_pk, now, &w), 0);
	mpk_keys_identity_free(id);
}

Test(lib, identity_signs_and_the_signature_verifies)
{
	struct mpk_keys_identity *id = kt_identity(ca, "svc", -10, 100);
	uint8_t sig[MPK_KEYS_SIG_BYTES];
	const char *pw;
	int k;

	cr_assert_eq(mpk_keys_identity_sign(id, "hello", 5, sig), 0);
	cr_assert_eq(crypto_sign_verify_detached(sig, (const uint8_t *)"hello", 5,
						 mpk_keys_identity_cert(id)->pk),
		     0, "signature does not verify with the certified key");
	cr_assert_eq(mpk_keys_identity_sign(id, "hello", 5, sig), 0, "second signature");
	k = mpk_keys_identity_pkey(id, &pw);
	if (mpk_pkey_probe(NULL)) {
		cr_assert_gt(k, 0, "PKU here but no pkey: %d (%s)", k, pw ? pw : "");
		cr_assert(mpk_pkey_denied(k), "pkey %d open after signing", k);
	} else {
		cr_assert_eq(k, -ENOTSUP);
		cr_assert(pw && *pw, "no reason given for the missing pkey");
	}
	mpk_keys_identity_free(id);
}

/* Without PKU, PROT_NONE is what guards the page: touching it faults. In
 * a child, since the fault is fatal by design. */
Test(lib, secret_page_is_no_access_outside_signing)
{
	struct mpk_keys_identity *id = kt_identity(ca, "svc", -10, 100);
	uint8_t sig[MPK_KEYS_SIG_BYTES];
	size_t len;
	volatile uint8_t *page = mpk_keys_identity_secret_page(id, &len);
	pid_t pid;
	int st;

	cr_assert_not_null(page);
	cr_assert_eq(len, (size_t)sysconf(_SC_PAGESIZE));
	cr_assert_eq(mpk_keys_identity_sign(id, "m", 1, sig), 0);
	for (int i = 0; i < 2; i++) {
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			signal(SIGSEGV, SIG_DFL);
			if (i == 0)
				(void)page[len - 1];
			else
				page[0] = 1;
			_exit(0);
		}
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
			  "%s the secret page did not fault (status %#x)", i ? "writing" : "reading",
			  st);
	}
	mpk_keys_identity_free(id);
}

Test(lib, identity_load_refusals)
{
	struct mpk_keys_identity *id = kt_identity(ca, "svc", -10, 100), *id2;
	char base[700], other[700];
	uint8_t buf[MPK_KEYS_CERT_BYTES + 1];
	size_t n;

	mpk_keys_identity_free(id);
	id = kt_identity(ca, "two", -10, 100);
	mpk_keys_identity_free(id);
	snprintf(base, sizeof(base), "%s/svc", ca);

	cr_assert_eq(chmod(P("svc.key"), 0640), 0);
	cr_assert_eq(mpk_keys_identity_load(base, &id2, why, sizeof(why)), -EACCES);
	cr_assert(strstr(why, "chmod 600 "), "%s", why);
	cr_assert_null(id2);
	cr_assert_eq(chmod(P("svc.key"), 0600), 0);

	/* two.key under svc's name: the key does not match the certificate. */
	cr_assert_eq(kt_read(P("two.key"), buf, sizeof(buf), &n), 0);
	snprintf(other, sizeof(other), "%s/svc.key", ca);
	cr_assert_eq(kt_write(other, buf, n, 0600), 0);
	cr_assert_eq(mpk_keys_identity_load(base, &id2, why, sizeof(why)), -EKEYREJECTED);
	cr_assert(strstr(why, "does not match"), "%s", why);

	/* A certificate under another identity's file name. */
	cr_assert_eq(kt_read(P("two.cert"), buf, sizeof(buf), &n), 0);
	cr_assert_eq(kt_write(P("svc.cert"), buf, n, 0644), 0);
	cr_assert_eq(mpk_keys_identity_load(base, &id2, why, sizeof(why)), -EKEYREJECTED);
	cr_assert(strstr(why, "certificate of 'two', not of 'svc'"), "%s", why);

	/* A truncated key file. */
	cr_assert_eq(kt_read(P("two.key"), buf, sizeof(buf), &n), 0);
	cr_assert_eq(kt_write(P("two.key"), buf, n - 1, 0600), 0);
	snprintf(base, sizeof(base), "%s/two", ca);
	cr_assert_eq(mpk_keys_identity_load(base, &id2, why, sizeof(why)), -EPROTO);
	cr_assert(strstr(why, "truncated identity secret key"), "%s", why);
	/* A CA key is not an identity key. */
	cr_assert_eq(kt_read(P("ca.key"), buf, sizeof(buf), &n), 0);
	cr_assert_eq(kt_write(P("two.key"), buf, n, 0600), 0);
	cr_assert_eq(mpk_keys_identity_load(base, &id2, why, sizeof(why)), -EPROTO);
	cr_assert(strstr(why, "is an mpklink-ca-key file"), "%s", why);
}

Test(lib, binary_mismatch_is_distinct_from_unreadable)
{
	struct mpk_keys_identity *id = kt_identity(ca, "svc", -10, 100);
	const struct mpk_keys_cert *c = mpk_keys_identity_cert(id);

	cr_assert_eq(mpk_keys_cert_check_binary(c, "/bin/true", why, sizeof(why)), 0);
	cr_assert_eq(mpk_keys_cert_check_binary(c, "/bin/false", why, sizeof(why)), -EPERM);
	cr_assert(strstr(why, "/bin/false"), "%s", why);
	cr_assert_eq(mpk_keys_cert_check_binary(c, "/no/such/binary", why, sizeof(why)), -ENOENT);
	cr_assert_eq(mpk_keys_cert_check_binary(c, "/bin", why, sizeof(why)), -EINVAL);
	cr_assert_eq(kt_write(P("unreadable"), "x", 1, 0), 0);
	if (geteuid() != 0) /* root reads anything */
		cr_assert_eq(mpk_keys_cert_check_binary(c, P("unreadable"), why, sizeof(why)),
			     -EACCES);
	mpk_keys_identity_free(id);
}

Test(lib, issue_refuses_a_mismatched_ca)
{
	char ca2[400];
	uint8_t pub[64];
	size_t n;

	snprintf(ca2, sizeof(ca2), "%s/ca2", dir);
	kt_ca(ca2);
	cr_assert_eq(kt_read(kt_join(path, sizeof(path), ca2, "ca.pub"), pub, sizeof(pub), &n), 0);
	cr_assert_eq(kt_write(P("ca.pub"), pub, n, 0644), 0);
	cr_assert_eq(mpk_keys_issue(ca, "svc", "/bin/true", 0, 1, 0, why, sizeof(why)),
		     -EKEYREJECTED);
	cr_assert(strstr(why, "ca.key does not match"), "%s", why);
	cr_assert_eq(mpk_keys_issue(ca, "svc", "/bin/true", 2, 1, 0, why, sizeof(why)), -EINVAL);
	cr_assert_eq(mpk_keys_issue(ca, "ca", "/bin/true", 0, 1, 0, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "'ca'"), "%s", why);
}

/* ---------------------------------------------------------------- policy */

Test(policy, allow_parse_and_check)
{
	struct mpk_keys_allow *a;
	const char *w;

	cr_assert_eq(mpk_keys_allow_parse("50051:greeter|alice,8080:*,1:x", &a, why, sizeof(why)),
		     0, "%s", why);
	cr_expect_eq(mpk_keys_allow_check(a, 50051, "greeter", &w), 0);
	cr_expect_eq(mpk_keys_allow_check(a, 50051, "alice", &w), 0);
	cr_expect_eq(mpk_keys_allow_check(a, 50051, "mallory", &w), -EACCES);
	cr_expect_str_eq(w, "identity not in MPKLINK_ALLOW for this port");
	cr_expect_eq(mpk_keys_allow_check(a, 50051, "alic", &w), -EACCES, "prefix matched");
	cr_expect_eq(mpk_keys_allow_check(a, 8080, "anyone", &w), 0);
	cr_expect_eq(mpk_keys_allow_check(a, 1, "x", &w), 0);
	cr_expect_eq(mpk_keys_allow_check(a, 9999, "greeter", &w), -EACCES);
	cr_expect_str_eq(w, "no MPKLINK_ALLOW entry for this port");
	mpk_keys_allow_free(a);

	cr_assert_eq(mpk_keys_allow_parse("", &a, why, sizeof(why)), 0);
	cr_expect_eq(mpk_keys_allow_check(a, 50051, "greeter", &w), -EACCES, "deny by default");
	mpk_keys_allow_free(a);
	cr_assert_eq(mpk_keys_allow_parse(NULL, &a, why, sizeof(why)), 0);
	mpk_keys_allow_free(a);
}

Test(policy, allow_errors_name_the_entry)
{
	static const struct {
		const char *s, *entry, *reason;
	} bad[] = {
		{"50051:a,", "''", "empty entry"},
		{",50051:a", "''", "empty entry"},
		{"50051", "'50051'", "want PORT:NAME"},
		{"0:a", "'0:a'", "bad port"},
		{"65536:a", "'65536:a'", "bad port"},
		{"x1:a", "'x1:a'", "bad port"},
		{" 1:a", "' 1:a'", "bad port"},
		{"1:", "'1:'", "empty name"},
		{"1:a||b", "'1:a||b'", "empty name"},
		{"1:a|", "'1:a|'", "empty name"},
		{"1:bad/name", "'1:bad/name'", "bad name"},
		{"1:a b", "'1:a b'", "bad name"},
		{"1:*|a", "'1:*|a'", "'*' stands alone"},
		{"1:a,2:b,1:c", "'1:c'", "a second entry for this port"},
	};
	struct mpk_keys_allow *a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		a = (void *)1;
		cr_expect_eq(mpk_keys_allow_parse(bad[i].s, &a, why, sizeof(why)), -EINVAL,
			     "'%s' accepted", bad[i].s);
		cr_expect_null(a);
		cr_expect(strstr(why, bad[i].entry) && strstr(why, bad[i].reason),
			  "'%s': reason \"%s\" lacks %s / %s", bad[i].s, why, bad[i].entry,
			  bad[i].reason);
	}
}

Test(policy, endpoint_names)
{
	char name[MPK_KEYS_NAME_MAX + 1];
	const char *eps = "127.0.0.1:50051=greeter,[::1]:50051=greeter,localhost:8080,[::1]:9000=db";

	cr_assert_eq(mpk_keys_endpoint_name(eps, 50051, name, why, sizeof(why)), 1, "%s", why);
	cr_assert_str_eq(name, "greeter");
	cr_assert_eq(mpk_keys_endpoint_name(eps, 9000, name, why, sizeof(why)), 1);
	cr_assert_str_eq(name, "db");
	cr_assert_eq(mpk_keys_endpoint_name(eps, 8080, name, why, sizeof(why)), 0);
	cr_assert_str_eq(name, "");
	cr_assert_eq(mpk_keys_endpoint_name(eps, 1234, name, why, sizeof(why)), 0);
	cr_assert_eq(mpk_keys_endpoint_name(NULL, 1234, name, why, sizeof(why)), 0);

	cr_assert_eq(mpk_keys_endpoint_name("127.0.0.1:1=a,127.0.0.1:1=b", 1, name, why,
					    sizeof(why)),
		     -EINVAL);
	cr_assert(strstr(why, "'127.0.0.1:1=b'") && strstr(why, "another name"), "%s", why);
	cr_assert_str_eq(name, "");
	cr_assert_eq(mpk_keys_endpoint_name("127.0.0.1:1=bad/name", 2, name, why, sizeof(why)),
		     -EINVAL, "a bad name on another port is still an error");
	cr_assert(strstr(why, "'127.0.0.1:1=bad/name'") && strstr(why, "bad server name"), "%s",
		  why);
	cr_assert_eq(mpk_keys_endpoint_name("127.0.0.1:1=", 1, name, why, sizeof(why)), -EINVAL);
	cr_assert_eq(mpk_keys_endpoint_name("127.0.0.1=a", 1, name, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "want HOST:PORT[=NAME]"), "%s", why);
	cr_assert_eq(mpk_keys_endpoint_name("127.0.0.1:99999=a", 1, name, why, sizeof(why)),
		     -EINVAL);
}
