/* SPDX-License-Identifier: MIT */
/*
 * mpklink-keys: the CA and service identities of mpklink (mpklink-keys(1)).
 * A table of subcommands, each its own main; exit 0 ok, 1 failure, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keys_internal.h"
#include "mpklink/keys.h"

#ifndef MPK_VERSION
#define MPK_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define PROG "mpklink-keys"

static const char *sub; /* the running subcommand, for messages */

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errorf(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s%s%s: ", PROG, sub ? " " : "", sub ? sub : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Usage errors say what and where to look, and exit 2. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s %s: ", PROG, sub);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see '%s %s --help')\n", PROG, sub);
	return EXIT_USAGE;
}

/* getopt_long with our messages: opterr is off. */
static int next_opt(int argc, char **argv, const char *shorts, const struct option *longs,
		    int *bad)
{
	int c = getopt_long(argc, argv, shorts, longs, NULL);

	*bad = 0;
	if (c == '?' || c == ':') {
		const char *a = argv[optind - 1];

		*bad = c == ':' ? usage_error("option %s needs a value", a)
				: usage_error("unknown option %s", a);
	}
	return c;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, len, "@%lld", (long long)t);
}

static void print_hex(const char *label, const uint8_t *b, size_t n)
{
	char hex[2 * 64 + 1];

	sodium_bin2hex(hex, sizeof(hex), b, n);
	printf("  %-12s %s\n", label, hex);
}

/*
 * A time for --not-before/--not-after: "now", "now+N" or "now-N" (N with
 * an optional s, m, h or d), or Unix seconds. 0, or -EINVAL.
 */
static int parse_when(const char *s, int64_t now, int64_t *out)
{
	long long n;
	char *end;
	int64_t unit = 1, sign = 1;

	if (!strncmp(s, "now", 3)) {
		s += 3;
		if (!*s) {
			*out = now;
			return 0;
		}
		if (*s != '+' && *s != '-')
			return -EINVAL;
		sign = *s++ == '-' ? -1 : 1;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno || n > 100LL * 366 * 86400)
			return -EINVAL;
		switch (*end) {
		case 0: case 's': break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return -EINVAL;
		}
		if (*end && end[1])
			return -EINVAL;
		if (n * unit > 100LL * 366 * 86400)
			return -EINVAL;
		*out = now + sign * n * unit;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end || n > 253402300799LL) /* 9999-12-31 */
		return -EINVAL;
	*out = n;
	return 0;
}

/* ------------------------------------------------------------- init */

static int init_help(FILE *f)
{
	fprintf(f,
		"Usage: %s init --dir DIR [--force]\n"
		"\n"
		"Creates a CA: DIR/ca.key (secret, mode 0600) and DIR/ca.pub. DIR is\n"
		"created (mode 0700) if missing. Existing files are not overwritten\n"
		"unless --force is given.\n",
		PROG);
	return EXIT_OK;
}

static int init_main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"dir", required_argument, NULL, 'd'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *dir = NULL;
	char why[MPK_KEYS_WHY_MAX];
	int c, bad, force = 0, r;

	while ((c = next_opt(argc, argv, ":d:fh", longs, &bad)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'f': force = 1; break;
		case 'h': return init_help(stdout);
		default: return bad ? bad : EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!dir)
		return usage_error("--dir DIR is required");
	r = mpk_keys_ca_create(dir, force, why, sizeof(why));
	if (r < 0) {
		errorf("%s%s", why, r == -EEXIST ? " (--force replaces it)" : "");
		return EXIT_FAIL;
	}
	printf("created CA: %s/ca.key (secret), %s/ca.pub\n", dir, dir);
	return EXIT_OK;
}

/* ------------------------------------------------------------ issue */

static int issue_help(FILE *f)
{
	fprintf(f,
		"Usage: %s issue --dir DIR NAME --binary PATH [--days N]\n"
		"                    [--not-before WHEN] [--not-after WHEN] [--force]\n"
		"\n"
		"Issues the identity NAME, signed by DIR/ca.key: DIR/NAME.key (secret,\n"
		"mode 0600) and DIR/NAME.cert, which binds NAME, its public key and the\n"
		"SHA-256 of the binary at PATH. NAME: 1 to 63 of A-Z a-z 0-9 . _ -\n"
		"\n"
		"  --days N          valid for N days (1 to 36500; default 365)\n"
		"  --not-before WHEN start of validity (default: now)\n"
		"  --not-after WHEN  end of validity, instead of --days\n"
		"  --force           replace existing NAME.key and NAME.cert\n"
		"\n"
		"WHEN is \"now\", \"now+N\" or \"now-N\" (N seconds, or with a suffix m, h\n"
		"or d), or Unix seconds: meant for tests and for backdating, e.g. an\n"
		"already expired certificate: --not-before now-2d --not-after now-1d.\n",
		PROG);
	return EXIT_OK;
}

static int issue_main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"dir", required_argument, NULL, 'd'},
		{"binary", required_argument, NULL, 'b'},
		{"days", required_argument, NULL, 'n'},
		{"not-before", required_argument, NULL, 'B'},
		{"not-after", required_argument, NULL, 'A'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *dir = NULL, *binary = NULL, *name, *days_s = NULL, *nb_s = NULL, *na_s = NULL;
	int64_t now = (int64_t)time(NULL), nb = now, na;
	char why[MPK_KEYS_WHY_MAX], until[64];
	long days = 365;
	int c, bad, force = 0, r;

	while ((c = next_opt(argc, argv, ":d:b:n:B:A:fh", longs, &bad)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'b': binary = optarg; break;
		case 'n': days_s = optarg; break;
		case 'B': nb_s = optarg; break;
		case 'A': na_s = optarg; break;
		case 'f': force = 1; break;
		case 'h': return issue_help(stdout);
		default: return bad ? bad : EXIT_USAGE;
		}
	}
	if (optind + 1 != argc)
		return optind == argc ? usage_error("NAME is required")
				      : usage_error("unexpected argument '%s'", argv[optind + 1]);
	name = argv[optind];
	if (!dir)
		return usage_error("--dir DIR is required");
	if (!binary)
		return usage_error("--binary PATH is required");
	if (mpk_keys_name_check(name) < 0)
		return usage_error("bad NAME '%s': use 1 to %d of A-Z a-z 0-9 . _ - (not '.', "
				   "'..' or 'ca')",
				   name, MPK_KEYS_NAME_MAX);
	if (days_s && na_s)
		return usage_error("--days and --not-after exclude each other");
	if (days_s) {
		char *end;

		errno = 0;
		days = strtol(days_s, &end, 10);
		if (errno || *end || end == days_s || days < 1 || days > 36500)
			return usage_error("--days wants a number of days, 1 to 36500, not '%s'",
					   days_s);
	}
	if (nb_s && parse_when(nb_s, now, &nb) < 0)
		return usage_error("bad --not-before '%s'", nb_s);
	na = nb + (int64_t)days * 86400;
	if (na_s && parse_when(na_s, now, &na) < 0)
		return usage_error("bad --not-after '%s'", na_s);
	if (nb > na)
		return usage_error("the certificate would end before it starts");
	r = mpk_keys_issue(dir, name, binary, nb, na, force, why, sizeof(why));
	if (r < 0) {
		errorf("%s%s", why, r == -EEXIST ? " (--force replaces it)" : "");
		return EXIT_FAIL;
	}
	fmt_time(na, until, sizeof(until));
	printf("issued %s: %s/%s.key (secret), %s/%s.cert, valid until %s\n", name, dir, name, dir,
	       name, until);
	return EXIT_OK;
}

/* ----------------------------------------------------------- verify */

static int verify_help(FILE *f)
{
	fprintf(f,
		"Usage: %s verify --dir DIR NAME [--binary PATH]\n"
		"\n"
		"Checks DIR/NAME.cert against DIR/ca.pub (the CA's signature, the\n"
		"validity window, the name), that DIR/NAME.key is the key it\n"
		"certifies, and with --binary that PATH is the certified binary.\n"
		"Exit status 0 when all hold, else 1 with one line saying why.\n",
		PROG);
	return EXIT_OK;
}

static int verify_main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"dir", required_argument, NULL, 'd'},
		{"binary", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *dir = NULL, *binary = NULL, *name, *w;
	char why[MPK_KEYS_WHY_MAX], when[64];
	char *ca_path = NULL, *cert_path = NULL, *base = NULL;
	struct mpk_keys_identity *id = NULL;
	uint8_t ca_pk[MPK_KEYS_PK_BYTES];
	struct mpk_keys_cert cert;
	int64_t now = (int64_t)time(NULL);
	int c, bad, r, ret = EXIT_FAIL;

	while ((c = next_opt(argc, argv, ":d:b:h", longs, &bad)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'b': binary = optarg; break;
		case 'h': return verify_help(stdout);
		default: return bad ? bad : EXIT_USAGE;
		}
	}
	if (optind + 1 != argc)
		return optind == argc ? usage_error("NAME is required")
				      : usage_error("unexpected argument '%s'", argv[optind + 1]);
	name = argv[optind];
	if (!dir)
		return usage_error("--dir DIR is required");
	if (mpk_keys_name_check(name) < 0)
		return usage_error("bad NAME '%s': use 1 to %d of A-Z a-z 0-9 . _ -", name,
				   MPK_KEYS_NAME_MAX);
	ca_path = mpk__path(dir, "ca", ".pub");
	cert_path = mpk__path(dir, name, ".cert");
	base = mpk__path(dir, name, "");
	if (!ca_path || !cert_path || !base) {
		errorf("out of memory");
		goto out;
	}
	if (mpk_keys_ca_load(ca_path, ca_pk, why, sizeof(why)) < 0 ||
	    mpk_keys_cert_load(cert_path, &cert, why, sizeof(why)) < 0) {
		errorf("%s", why);
		goto out;
	}
	if (strcmp(cert.name, name)) {
		errorf("%s: is the certificate of '%s', not of '%s'", cert_path, cert.name, name);
		goto out;
	}
	r = mpk_keys_cert_verify(&cert, ca_pk, now, &w);
	if (r < 0) {
		if (r == -EKEYEXPIRED || r == -ETIME)
			fmt_time(r == -EKEYEXPIRED ? cert.not_after : cert.not_before, when,
				 sizeof(when));
		errorf("%s: %s%s%s%s", cert_path, w,
		       r == -EKEYEXPIRED ? " (not after " : r == -ETIME ? " (not before " : "",
		       r == -EKEYEXPIRED || r == -ETIME ? when : "",
		       r == -EKEYEXPIRED || r == -ETIME ? ")" : "");
		goto out;
	}
	if (mpk_keys_identity_load(base, &id, why, sizeof(why)) < 0) {
		errorf("%s", why);
		goto out;
	}
	if (binary && mpk_keys_cert_check_binary(&cert, binary, why, sizeof(why)) < 0) {
		errorf("%s", why);
		goto out;
	}
	fmt_time(cert.not_after, when, sizeof(when));
	printf("%s: ok: signed by %s, valid until %s, key matches%s%s%s\n", name, ca_path, when,
	       binary ? ", binary " : "", binary ? binary : "", binary ? " matches" : "");
	ret = EXIT_OK;
out:
	mpk_keys_identity_free(id);
	free(ca_path);
	free(cert_path);
	free(base);
	return ret;
}

/* ------------------------------------------------------------- show */

static int show_help(FILE *f)
{
	fprintf(f,
		"Usage: %s show FILE\n"
		"\n"
		"Prints a certificate (.cert), a CA public key (ca.pub), or the public\n"
		"half of a secret key (.key, ca.key; the secret is never printed).\n"
		"Show checks the format, not signatures: use verify for that.\n",
		PROG);
	return EXIT_OK;
}

/* The header line, read a byte at a time so not one secret byte is read
 * into ordinary memory. */
static int peek_kind(const char *path, char kind[MPK__HDR_MAX], unsigned *version, char *why,
		     size_t why_len)
{
	uint8_t line[MPK__HDR_MAX + 16];
	size_t n = 0, h;
	/* Not blocking on a FIFO in a file's place: refused, as a directory. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), ch;
	struct stat st;
	FILE *f;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "rb"))) {
		int r = fd < 0 ? -errno : -EINVAL;

		mpk__why(why, why_len, "%s: %s", path, fd < 0 ? strerror(-r) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return r;
	}
	setvbuf(f, NULL, _IONBF, 0);
	while (n < sizeof(line) && (ch = fgetc(f)) != EOF) {
		line[n++] = (uint8_t)ch;
		if (ch == '\n')
			break;
	}
	fclose(f);
	if (mpk__hdr_split(line, n, kind, version, &h) < 0) {
		mpk__why(why, why_len,
			 "%s: not an mpklink file (no \"mpklink-KIND vN\" header line)", path);
		return -EPROTO;
	}
	return 0;
}

static int show_main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char why[MPK_KEYS_WHY_MAX], kind[MPK__HDR_MAX], t1[64], t2[64];
	int64_t now = (int64_t)time(NULL);
	struct mpk__signer *s = NULL;
	struct mpk_keys_cert cert;
	uint8_t pk[MPK_KEYS_PK_BYTES];
	const char *path;
	unsigned version;
	int c, bad;

	while ((c = next_opt(argc, argv, ":h", longs, &bad)) != -1) {
		if (c == 'h')
			return show_help(stdout);
		return bad ? bad : EXIT_USAGE;
	}
	if (optind + 1 != argc)
		return optind == argc ? usage_error("FILE is required")
				      : usage_error("unexpected argument '%s'", argv[optind + 1]);
	path = argv[optind];
	if (peek_kind(path, kind, &version, why, sizeof(why)) < 0)
		goto fail;
	if (!strcmp(kind, MPK__KIND_CERT)) {
		if (mpk_keys_cert_load(path, &cert, why, sizeof(why)) < 0)
			goto fail;
		fmt_time(cert.not_before, t1, sizeof(t1));
		fmt_time(cert.not_after, t2, sizeof(t2));
		printf("%s: mpklink certificate, format v1\n", path);
		printf("  %-12s %s\n", "name:", cert.name);
		print_hex("public key:", cert.pk, sizeof(cert.pk));
		print_hex("binary:", cert.digest, sizeof(cert.digest));
		printf("  %-12s %s (%lld)\n", "not before:", t1, (long long)cert.not_before);
		printf("  %-12s %s (%lld)\n", "not after:", t2, (long long)cert.not_after);
		printf("  %-12s %s\n", "now:",
		       now > cert.not_after ? "EXPIRED"
		       : now < cert.not_before ? "NOT YET VALID"
					       : "within the validity window");
		print_hex("issuer (CA):", cert.issuer, sizeof(cert.issuer));
		printf("  %-12s not checked here (mpklink-keys verify checks it)\n", "signature:");
	} else if (!strcmp(kind, MPK__KIND_CA_PUB)) {
		if (mpk_keys_ca_load(path, pk, why, sizeof(why)) < 0)
			goto fail;
		printf("%s: mpklink CA public key, format v1\n", path);
		print_hex("public key:", pk, sizeof(pk));
	} else if (!strcmp(kind, MPK__KIND_KEY) || !strcmp(kind, MPK__KIND_CA_KEY)) {
		if (mpk__signer_load(path, kind, &s, why, sizeof(why)) < 0)
			goto fail;
		printf("%s: mpklink %s secret key, format v1 (SECRET: not shown; keep it mode 0600)\n",
		       path, strcmp(kind, MPK__KIND_KEY) ? "CA" : "identity");
		print_hex("public key:", mpk__signer_pk(s), MPK_KEYS_PK_BYTES);
		mpk__signer_free(s);
	} else {
		mpk__why(why, sizeof(why), "%s: unknown kind of mpklink file 'mpklink-%s'", path,
			 kind);
		goto fail;
	}
	return EXIT_OK;
fail:
	errorf("%s", why);
	return EXIT_FAIL;
}

/* ------------------------------------------------------------- main */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	int (*help)(FILE *f);
	const char *summary;
} subcommands[] = {
	{"init", init_main, init_help, "create a CA (ca.key, ca.pub)"},
	{"issue", issue_main, issue_help, "issue a service identity for a binary"},
	{"verify", verify_main, verify_help, "check an identity against the CA and a binary"},
	{"show", show_main, show_help, "print a certificate, CA key or public half of a key"},
};

#define N_SUB (sizeof(subcommands) / sizeof(subcommands[0]))

static void main_usage(FILE *f)
{
	fprintf(f, "Usage: %s COMMAND [OPTIONS]   (%s COMMAND --help for more)\n\n", PROG, PROG);
	for (size_t i = 0; i < N_SUB; i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\nExit status: 0 ok, 1 failure (with one line saying why), 2 usage error.\n");
}

int main(int argc, char **argv)
{
	opterr = 0;
	if (argc < 2) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		if (argc > 2 && !strcmp(argv[1], "help"))
			for (size_t i = 0; i < N_SUB; i++)
				if (!strcmp(argv[2], subcommands[i].name))
					return subcommands[i].help(stdout);
		main_usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("%s %s\n", PROG, MPK_VERSION);
		return EXIT_OK;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: libsodium failed to initialise\n", PROG);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < N_SUB; i++)
		if (!strcmp(argv[1], subcommands[i].name)) {
			sub = subcommands[i].name;
			return subcommands[i].fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "%s: unknown command '%s' (see '%s --help')\n", PROG, argv[1], PROG);
	return EXIT_USAGE;
}
