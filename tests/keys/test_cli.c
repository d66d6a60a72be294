/* SPDX-License-Identifier: MIT */
/* mpklink-keys end to end: real files in a temporary directory, the real
 * binary in a child process, exit statuses and the one-line reasons. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "kt.h"

#define CAP 8192

static char dir[256], ca[300], out[CAP], err[CAP];

static void setup(void)
{
	kt_tmpdir(dir, sizeof(dir));
	snprintf(ca, sizeof(ca), "%s/ca", dir);
}

static void teardown(void)
{
	kt_rmrf(dir);
}

TestSuite(cli, .init = setup, .fini = teardown);

#define RUN(...) kt_run(out, err, CAP, (const char *const[]){__VA_ARGS__, NULL})

static const char *P(const char *name)
{
	static char bufs[4][512];
	static int i;

	i = (i + 1) % 4;
	return kt_join(bufs[i], sizeof(bufs[i]), ca, name);
}

static void expect(int got, int want, const char *what)
{
	cr_assert_eq(got, want, "%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, got, want, out,
		     err);
}

static void err_has(const char *s)
{
	cr_assert(strstr(err, s), "stderr lacks \"%s\":\n%s", s, err);
}

/* An issued identity "greeter" for /bin/true in ca/. */
static void make_greeter(void)
{
	expect(RUN("init", "--dir", ca), 0, "init");
	expect(RUN("issue", "--dir", ca, "greeter", "--binary", "/bin/true"), 0, "issue");
}

static mode_t mode_of(const char *p)
{
	struct stat st;

	cr_assert_eq(stat(p, &st), 0, "stat %s: %s", p, strerror(errno));
	return st.st_mode & 07777;
}

Test(cli, init_issue_verify_happy_path)
{
	make_greeter();
	cr_expect_eq(mode_of(ca), 0700, "CA dir mode %o", mode_of(ca));
	cr_expect_eq(mode_of(P("ca.key")), 0600);
	cr_expect_eq(mode_of(P("greeter.key")), 0600);
	cr_expect_eq(mode_of(P("ca.pub")), 0644);
	cr_expect_eq(mode_of(P("greeter.cert")), 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 0, "verify");
	cr_expect(strstr(out, "greeter: ok"), "stdout: %s", out);
	expect(RUN("verify", "--dir", ca, "greeter", "--binary", "/bin/true"), 0,
	       "verify --binary");
	cr_expect(strstr(out, "binary /bin/true matches"), "stdout: %s", out);
}

Test(cli, verify_another_binary_fails)
{
	make_greeter();
	expect(RUN("verify", "--dir", ca, "greeter", "--binary", "/bin/false"), 1,
	       "verify --binary /bin/false");
	err_has("/bin/false: SHA-256 differs");
	cr_expect(!strchr(err, '\n') || strchr(err, '\n') == err + strlen(err) - 1,
		  "more than one line: %s", err);
	expect(RUN("verify", "--dir", ca, "greeter", "--binary", "/nonexistent/bin"), 1,
	       "verify --binary missing");
	err_has("/nonexistent/bin: cannot read the binary");
}

Test(cli, init_refuses_to_overwrite)
{
	uint8_t a[64], b[64];
	size_t na, nb;

	expect(RUN("init", "--dir", ca), 0, "init");
	cr_assert_eq(kt_read(P("ca.key"), a, sizeof(a), &na), 0);
	expect(RUN("init", "--dir", ca), 1, "second init");
	err_has("ca.key: already exists");
	err_has("--force");
	cr_assert_eq(kt_read(P("ca.key"), b, sizeof(b), &nb), 0);
	cr_assert(na == nb && !memcmp(a, b, na), "ca.key changed without --force");
	expect(RUN("init", "--dir", ca, "--force"), 0, "init --force");
	cr_assert_eq(kt_read(P("ca.key"), b, sizeof(b), &nb), 0);
	cr_assert(memcmp(a, b, na), "init --force did not replace ca.key");
	expect(RUN("issue", "--dir", ca, "svc", "--binary", "/bin/true"), 0, "issue");
	expect(RUN("issue", "--dir", ca, "svc", "--binary", "/bin/true"), 1, "second issue");
	err_has("svc.key: already exists");
}

Test(cli, show_cert_pub_and_key_without_secret)
{
	uint8_t key[64], digest[32];
	char hex[65], seedhex[65];
	size_t n;
	int fd;

	make_greeter();
	expect(RUN("show", P("greeter.cert")), 0, "show cert");
	cr_expect(strstr(out, "name:        greeter"), "%s", out);
	fd = open("/bin/true", O_RDONLY);
	cr_assert_eq(mpk_keys_digest_fd(fd, digest), 0);
	close(fd);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	cr_expect(strstr(out, hex), "show lacks the binary's SHA-256 %s:\n%s", hex, out);
	cr_expect(strstr(out, "within the validity window"), "%s", out);

	expect(RUN("show", P("ca.pub")), 0, "show ca.pub");
	cr_expect(strstr(out, "CA public key"), "%s", out);

	cr_assert_eq(kt_read(P("greeter.key"), key, sizeof(key), &n), 0);
	cr_assert_eq(n, 15 + 32);
	sodium_bin2hex(seedhex, sizeof(seedhex), key + 15, 32);
	expect(RUN("show", P("greeter.key")), 0, "show key");
	cr_expect(strstr(out, "SECRET: not shown"), "%s", out);
	cr_expect(!strstr(out, seedhex) && !strstr(err, seedhex), "show printed the secret");
	/* The public key it prints is the certificate's. */
	{
		char line[256];
		char *pk = strstr(out, "public key:");

		cr_assert(pk);
		snprintf(line, sizeof(line), "%.*s", 64, pk + 13);
		expect(RUN("show", P("greeter.cert")), 0, "show cert");
		cr_expect(strstr(out, line), "key's public key %s is not the cert's", line);
	}
	expect(RUN("show", "/etc/hostname"), 1, "show a non-mpklink file");
	err_has("/etc/hostname: not an mpklink file");
}

Test(cli, secret_readable_by_others_is_refused_with_chmod_hint)
{
	char want[600];

	make_greeter();
	cr_assert_eq(chmod(P("greeter.key"), 0644), 0);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "verify with 0644 key");
	snprintf(want, sizeof(want), "chmod 600 %s", P("greeter.key"));
	err_has(want);
	err_has("mode 0644");
	expect(RUN("show", P("greeter.key")), 1, "show 0644 key");
	err_has(want);
	cr_assert_eq(chmod(P("greeter.key"), 0640), 0);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "verify with 0640 key");
	err_has(want);
	cr_assert_eq(chmod(P("greeter.key"), 0600), 0);
	expect(RUN("verify", "--dir", ca, "greeter"), 0, "verify after chmod 600");

	cr_assert_eq(chmod(P("ca.key"), 0604), 0);
	expect(RUN("issue", "--dir", ca, "other", "--binary", "/bin/true"), 1,
	       "issue with a world-readable ca.key");
	snprintf(want, sizeof(want), "chmod 600 %s", P("ca.key"));
	err_has(want);
	cr_expect_neq(access(P("other.key"), F_OK), 0, "issued despite the refusal");
}

/* Replaces a file's contents. */
static void put(const char *path, const void *buf, size_t len, unsigned mode)
{
	cr_assert_eq(kt_write(path, buf, len, mode), 0, "write %s", path);
}

Test(cli, broken_cert_files_are_errors_naming_the_file)
{
	uint8_t cert[300];
	size_t n;
	const char *cp;

	make_greeter();
	cp = P("greeter.cert");
	cr_assert_eq(kt_read(cp, cert, sizeof(cert), &n), 0);
	cr_assert_eq(n, MPK_KEYS_CERT_BYTES);

	put(cp, cert, 100, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "truncated cert");
	err_has(cp);
	err_has("truncated certificate");
	expect(RUN("show", cp), 1, "show truncated cert");
	err_has("truncated certificate");

	put(cp, "", 0, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "empty cert");
	err_has("file is empty");

	cert[n] = 'x';
	put(cp, cert, n + 1, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "oversized cert");
	err_has(cp);
	err_has("oversized certificate");

	cert[3] ^= 0x20; /* "mpKlink-..." */
	put(cp, cert, n, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "garbled header");
	err_has(cp);
	err_has("not an mpklink certificate");
	cert[3] ^= 0x20;

	cert[14] = '7'; /* "mpklink-cert v7\n" */
	put(cp, cert, n, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "unknown version");
	err_has("format version 7 is not supported");
	cert[14] = '1';

	cert[MPK_KEYS_CERT_BYTES - 1] ^= 1; /* the signature */
	put(cp, cert, n, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "flipped signature byte");
	err_has("certificate signature invalid");
	cert[MPK_KEYS_CERT_BYTES - 1] ^= 1;

	cert[20] = '/'; /* inside the name */
	put(cp, cert, n, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "garbled name");
	err_has("certificate name invalid");
	cert[20] = (uint8_t)"greeter"[4];

	put(cp, cert, n, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 0, "restored cert");
}

Test(cli, broken_ca_pub_is_an_error_naming_the_file)
{
	uint8_t pub[100];
	size_t n;
	const char *pp;

	make_greeter();
	pp = P("ca.pub");
	cr_assert_eq(kt_read(pp, pub, sizeof(pub), &n), 0);
	cr_assert_eq(n, 18 + 32);

	put(pp, pub, n - 1, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "truncated ca.pub");
	err_has(pp);
	err_has("truncated CA public key");

	pub[n] = 0;
	put(pp, pub, n + 1, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "oversized ca.pub");
	err_has("oversized CA public key");

	put(pp, "garbage garbage garbage garbage garbage garbage!!", 50, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "garbage ca.pub");
	err_has(pp);
	err_has("not an mpklink CA public key");

	memcpy(pub + 16, "2\n", 2); /* "mpklink-ca-pub v2\n" */
	put(pp, pub, n, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "ca.pub v2");
	err_has("format version 2 is not supported");

	/* A certificate where the CA key should be: the kind is named. */
	{
		uint8_t cert[MPK_KEYS_CERT_BYTES];
		size_t cn;

		cr_assert_eq(kt_read(P("greeter.cert"), cert, sizeof(cert), &cn), 0);
		put(pp, cert, cn, 0644);
		expect(RUN("verify", "--dir", ca, "greeter"), 1, "cert as ca.pub");
		err_has("is an mpklink-cert file, not CA public key");
	}
}

Test(cli, another_ca_and_another_key_are_refused)
{
	char ca2[400], cmd_cert[512];
	uint8_t buf[MPK_KEYS_CERT_BYTES + 64];
	size_t n;

	make_greeter();
	snprintf(ca2, sizeof(ca2), "%s/ca2", dir);
	expect(RUN("init", "--dir", ca2), 0, "init ca2");
	expect(RUN("issue", "--dir", ca2, "greeter", "--binary", "/bin/true"), 0, "issue in ca2");

	/* ca2's greeter.cert checked against ca's ca.pub. */
	snprintf(cmd_cert, sizeof(cmd_cert), "%s/greeter.cert", ca2);
	cr_assert_eq(kt_read(cmd_cert, buf, sizeof(buf), &n), 0);
	put(P("greeter.cert"), buf, n, 0644);
	expect(RUN("verify", "--dir", ca, "greeter"), 1, "cert of another CA");
	err_has("issued by another CA");

	/* ca2's own cert, with ca's (different) greeter.key. */
	snprintf(cmd_cert, sizeof(cmd_cert), "%s/greeter.key", ca2);
	cr_assert_eq(kt_read(P("greeter.key"), buf, sizeof(buf), &n), 0);
	put(cmd_cert, buf, n, 0600);
	expect(RUN("verify", "--dir", ca2, "greeter"), 1, "key of another identity");
	err_has("greeter.key: does not match");
}

Test(cli, bad_names_are_usage_errors_naming_the_name)
{
	static const char *const bad[] = {
		"bad/name", "", "..", "ca", "white space", "semi;colon",
		"0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
	};

	expect(RUN("init", "--dir", ca), 0, "init");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect(RUN("issue", "--dir", ca, bad[i], "--binary", "/bin/true"), 2, bad[i]);
		err_has("bad NAME '");
		err_has(bad[i]);
	}
	/* 63 characters and every allowed character class are fine. */
	expect(RUN("issue", "--dir", ca,
		   "A.b_c-9.0123456789012345678901234567890123456789012345678901234",
		   "--binary", "/bin/true"),
	       0, "63-character name");
}

Test(cli, expired_and_not_yet_valid)
{
	expect(RUN("init", "--dir", ca), 0, "init");
	expect(RUN("issue", "--dir", ca, "old", "--binary", "/bin/true", "--not-before", "now-2d",
		   "--not-after", "now-1d"),
	       0, "issue expired");
	expect(RUN("verify", "--dir", ca, "old"), 1, "verify expired");
	err_has("certificate expired");
	expect(RUN("issue", "--dir", ca, "young", "--binary", "/bin/true", "--not-before",
		   "now+1h", "--days", "2"),
	       0, "issue future");
	expect(RUN("verify", "--dir", ca, "young"), 1, "verify not yet valid");
	err_has("certificate not yet valid");
	expect(RUN("show", P("old.cert")), 0, "show expired");
	cr_expect(strstr(out, "EXPIRED"), "%s", out);
	expect(RUN("issue", "--dir", ca, "x", "--binary", "/bin/true", "--days", "0"), 2,
	       "--days 0");
	expect(RUN("issue", "--dir", ca, "x", "--binary", "/bin/true", "--not-before", "now+2d",
		   "--not-after", "now+1d"),
	       2, "inverted window");
	expect(RUN("issue", "--dir", ca, "x", "--binary", "/bin/true", "--not-after", "yesterday"),
	       2, "bad WHEN");
}

Test(cli, usage_and_help)
{
	static const char *const subs[] = {"init", "issue", "verify", "show"};

	expect(RUN("--help"), 0, "--help");
	for (size_t i = 0; i < 4; i++)
		cr_expect(strstr(out, subs[i]), "--help lacks %s", subs[i]);
	for (size_t i = 0; i < 4; i++) {
		expect(RUN(subs[i], "--help"), 0, subs[i]);
		cr_expect(strstr(out, "Usage: mpklink-keys "), "%s --help: %s", subs[i], out);
	}
	expect(kt_run(out, err, CAP, (const char *const[]){NULL}), 2, "no arguments");
	expect(RUN("frobnicate"), 2, "unknown command");
	err_has("unknown command 'frobnicate'");
	expect(RUN("init"), 2, "init without --dir");
	err_has("--dir DIR is required");
	expect(RUN("init", "--dir", ca, "--bogus"), 2, "unknown option");
	err_has("unknown option --bogus");
	expect(RUN("issue", "--dir", ca, "svc"), 2, "issue without --binary");
	err_has("--binary PATH is required");
	expect(RUN("verify", "--dir", ca), 2, "verify without NAME");
	expect(RUN("show"), 2, "show without FILE");
	expect(RUN("issue", "--dir", ca, "a", "b", "--binary", "/bin/true"), 2, "two names");
}
