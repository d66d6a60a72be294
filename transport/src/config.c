/* SPDX-License-Identifier: MIT */
/* The MPKLINK_* settings' parsers and checks, for env files and the
 * environment alike (mpklink/config.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpklink/config.h"
#include "mpklink/ring.h"

/* HOST of an entry (h, n bytes): 0 a loopback or wildcard host, 1 another
 * unicast address (into addr, IPv4 mapped), -1 none we take; *w says why. */
static int host_parse(const char *h, size_t n, uint8_t addr[16], const char **w)
{
	char buf[64];
	struct in_addr a4;
	struct in6_addr a6;

	*w = "not an address (hosts: localhost, an IPv4 or IPv6 address; host names are "
	     "not resolved)";
	if (n && h[0] == '[') {
		if (n < 2 || h[n - 1] != ']')
			return -1;
		h++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, h, n);
	buf[n] = 0;
	if (!strcmp(buf, "localhost"))
		return 0;
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		uint32_t ip = ntohl(a4.s_addr);

		if ((ip >> 24) == 127 || ip == INADDR_ANY)
			return 0;
		if ((ip >> 28) == 14 || ip == INADDR_BROADCAST) {
			*w = "a multicast or broadcast address (a TCP server is reached at a "
			     "unicast one)";
			return -1;
		}
		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &a4.s_addr, 4);
		return 1;
	}
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127))
			return 0;
		if (IN6_IS_ADDR_MULTICAST(&a6)) {
			*w = "a multicast address (a TCP server is reached at a unicast one)";
			return -1;
		}
		memcpy(addr, a6.s6_addr, 16);
		return 1;
	}
	return -1;
}

/* Digits only, 1..65535. Returns the port or 0. */
static unsigned port_of(const char *s, size_t n)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v <= 65535 ? (unsigned)v : 0;
}

/* An identity name as keys/FORMATS.md has it: 1 to 63 of A-Z a-z 0-9 . _ -,
 * not ".", ".." or "ca". */
static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || (n == 1 && s[0] == '.') || (n == 2 && !memcmp(s, "..", 2)) ||
	    (n == 2 && !memcmp(s, "ca", 2)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

int mpk_endpoints_parse_why(const char *s, struct mpk_endpoint *eps, size_t max,
			    const char **bad, const char **why)
{
	const char *w = NULL;
	size_t n = 0;

	*bad = NULL;
	if (why)
		*why = NULL;
	while (s && *s) {
		const char *start = s, *end = strchr(s, ','), *colon, *eq;
		uint8_t addr[16] = {0};
		unsigned port;
		int remote;

		if (!end)
			end = s + strlen(s);
		if (end == start) {
			w = "an empty entry (two commas in a row, or one first)";
			goto bad;
		}
		eq = memchr(start, '=', (size_t)(end - start));
		if (!eq)
			eq = end;
		/* The last colon splits host and port (IPv6 hosts have more). */
		colon = NULL;
		for (const char *p = start; p < eq; p++)
			if (*p == ':')
				colon = p;
		if (!colon) {
			w = "want HOST:PORT[=NAME]";
			goto bad;
		}
		remote = host_parse(start, (size_t)(colon - start), addr, &w);
		if (remote < 0)
			goto bad;
		port = port_of(colon + 1, (size_t)(eq - colon - 1));
		if (!port) {
			w = "the port is not a number from 1 to 65535 (digits only)";
			goto bad;
		}
		if (eq != end && !name_ok(eq + 1, (size_t)(end - eq - 1))) {
			w = "bad server name after '=' (1 to 63 of A-Z a-z 0-9 . _ -)";
			goto bad;
		}
		for (size_t i = 0; i < n; i++)
			if (eps[i].port == port) {
				w = "a second entry for this port (one port, one entry: hosts all "
				    "match by port, and two names would leave the check to chance)";
				goto bad;
			}
		if (n == max) {
			*bad = start;
			if (why)
				*why = "too many endpoints";
			return -E2BIG;
		}
		eps[n] = (struct mpk_endpoint){.port = (uint16_t)port, .remote = (uint8_t)remote};
		memcpy(eps[n++].addr, addr, 16);
		if (!*end)
			break;
		s = end + 1;
		if (!*s) {
			start = end;
			w = "a trailing comma";
			goto bad;
		}
		continue;
bad:
		*bad = start;
		if (why)
			*why = w;
		return -EINVAL;
	}
	return (int)n;
}

int mpk_endpoints_parse(const char *s, struct mpk_endpoint *eps, size_t max, const char **bad)
{
	return mpk_endpoints_parse_why(s, eps, max, bad, NULL);
}

const struct mpk_endpoint *mpk_endpoint_find(const struct mpk_endpoint *eps, size_t n,
					     unsigned port)
{
	for (size_t i = 0; i < n; i++)
		if (eps[i].port == port)
			return &eps[i];
	return NULL;
}

const char *mpk_endpoint_host(const struct mpk_endpoint *e, char *buf, size_t len)
{
	if (!e->remote)
		return "loopback";
	static const uint8_t v4mapped[12] = {[10] = 0xff, [11] = 0xff};

	/* Bytes, not an in6_addr: addr is not aligned as one. */
	if (!memcmp(e->addr, v4mapped, sizeof(v4mapped))) {
		if (!inet_ntop(AF_INET, e->addr + 12, buf, (socklen_t)len))
			return "?";
	} else if (!inet_ntop(AF_INET6, e->addr, buf, (socklen_t)len)) {
		return "?";
	}
	return buf;
}

int mpk_endpoint_rdv_name(const struct mpk_endpoint *e, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	int n = e->remote ? snprintf(buf, len, "tcp-%s-%u.sock",
				     mpk_endpoint_host(e, host, sizeof(host)), e->port)
			  : snprintf(buf, len, "tcp-%u.sock", e->port);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int mpk_endpoints_named(const char *s)
{
	for (const char *p = s; p && *p;) {
		const char *end = strchr(p, ',');

		if (!end)
			end = p + strlen(p);
		if (memchr(p, '=', (size_t)(end - p)))
			return 1;
		p = *end ? end + 1 : end;
	}
	return 0;
}

long mpk_us_parse(const char *s)
{
	char *end;
	unsigned long n;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*end || errno || n > MPK_SPIN_US_MAX)
		return -EINVAL;
	return (long)n;
}

static int one_of(const char *s, const char *const *names)
{
	if (!s || !*s)
		return 0;
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -EINVAL;
}

int mpk_log_level_parse(const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug", NULL};

	return !s || !*s ? 1 : one_of(s, names);
}

int mpk_fallback_parse(const char *s)
{
	static const char *const names[] = {"tcp", "deny", NULL};

	return one_of(s, names);
}

int mpk_integrity_parse(const char *s)
{
	static const char *const names[] = {"off", "mac", NULL};

	return one_of(s, names);
}

int mpk_ring_bytes_parse(const char *s, size_t *out)
{
	unsigned long long n = 0;
	unsigned shift = 0;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	/* Digit by digit: anything past the largest ring is out of range,
	 * however many digits follow (strtoull's wrap-around never happens). */
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned)(*p - '0');
		if (n > MPK_LINK_RING_MAX)
			return -EINVAL;
	}
	if (*p == 'K' || *p == 'k')
		shift = 10, p++;
	else if (*p == 'M' || *p == 'm')
		shift = 20, p++;
	else if (*p == 'G' || *p == 'g')
		shift = 30, p++;
	if (*p || n > (MPK_LINK_RING_MAX >> shift))
		return -EINVAL;
	n <<= shift;
	if (n < MPK_LINK_RING_MIN || (n & (n - 1)))
		return -EINVAL;
	*out = (size_t)n;
	return 0;
}

static int check_endpoints(const char *v, const char **why)
{
	static __thread char msg[320];
	struct mpk_endpoint eps[MPK_MAX_ENDPOINTS];
	const char *bad, *w;
	int n = mpk_endpoints_parse_why(v, eps, MPK_MAX_ENDPOINTS, &bad, &w);
	size_t len;

	if (n >= 0)
		return 0;
	if (n == -E2BIG) {
		snprintf(msg, sizeof(msg), "more than %d endpoints", MPK_MAX_ENDPOINTS);
	} else {
		len = strcspn(bad, ",");
		if (len)
			snprintf(msg, sizeof(msg), "entry \"%.*s%s\": %s", (int)(len > 60 ? 60 : len),
				 bad, len > 60 ? "..." : "", w);
		else
			snprintf(msg, sizeof(msg), "%s", w);
	}
	*why = msg;
	return -EINVAL;
}

static int check_fallback(const char *v, const char **why)
{
	*why = "must be tcp or deny";
	return *v && mpk_fallback_parse(v) >= 0 ? 0 : -EINVAL;
}

static int check_guard(const char *v, const char **why)
{
	*why = "must be auto, mpk or off";
	return *v && mpk_guard_parse(v) >= 0 ? 0 : -EINVAL;
}

static int check_log(const char *v, const char **why)
{
	*why = "must be error, warn, info or debug";
	return *v && mpk_log_level_parse(v) >= 0 ? 0 : -EINVAL;
}

static int check_ring(const char *v, const char **why)
{
	size_t n;

	*why = "must be a power of two from 4096 (4K) to 1073741824 (1G): digits, then "
	       "K, M or G if you like (e.g. 65536, 1M)";
	return mpk_ring_bytes_parse(v, &n);
}

static int check_us(const char *v, const char **why)
{
	*why = "must be a number of microseconds from 0 to 1000000";
	return mpk_us_parse(v) >= 0 ? 0 : -EINVAL;
}

static int check_integrity(const char *v, const char **why)
{
	*why = "must be off or mac";
	return *v && mpk_integrity_parse(v) >= 0 ? 0 : -EINVAL;
}

static int check_any(const char *v, const char **why)
{
	(void)v;
	(void)why;
	return 0;
}

static const struct {
	const char *name;
	int (*check)(const char *v, const char **why);
} keys[] = {
	{"MPKLINK_ENDPOINTS", check_endpoints},
	{"MPKLINK_RUNDIR", check_any},
	{"MPKLINK_FALLBACK", check_fallback},
	{"MPKLINK_RING_BYTES", check_ring},
	{"MPKLINK_GUARD", check_guard},
	{"MPKLINK_LOG", check_log},
	{"MPKLINK_STATS", check_any},
	{"MPKLINK_SPIN_US", check_us},
	{"MPKLINK_SPIN_MAX_US", check_us},
	{"MPKLINK_IDENTITY", check_any},
	{"MPKLINK_TRUST", check_any},
	{"MPKLINK_ALLOW", check_any},
	{"MPKLINK_INTEGRITY", check_integrity},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* What mpklink-run sets for its program (ctl_server.h, preload/). */
static const char *const internal[] = {"MPKLINK_CTL", "MPKLINK_CTL_PID", "MPKLINK_GUARD_SAID",
				       "MPKLINK_EXECED", NULL};

static int name_is(const char *name, size_t len, const char *key)
{
	return strlen(key) == len && !memcmp(name, key, len);
}

enum mpk_config_key_kind mpk_config_key(const char *name, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (name_is(name, len, keys[i].name))
			return MPK_KEY_SETTING;
	for (size_t i = 0; internal[i]; i++)
		if (name_is(name, len, internal[i]))
			return MPK_KEY_INTERNAL;
	return MPK_KEY_NONE;
}

static int upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* Levenshtein distance without case, or 3 when it is more than 2. */
static unsigned distance(const char *a, size_t n, const char *b)
{
	unsigned row[64], prev_diag, tmp;
	size_t m = strlen(b);

	if (n >= sizeof(row) / sizeof(row[0]) || m >= sizeof(row) / sizeof(row[0]) ||
	    (n > m ? n - m : m - n) > 2)
		return 3;
	for (size_t j = 0; j <= m; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= n; i++) {
		unsigned best;

		prev_diag = row[0];
		row[0] = (unsigned)i;
		best = row[0];
		for (size_t j = 1; j <= m; j++) {
			unsigned del = row[j] + 1, ins = row[j - 1] + 1,
				 sub = prev_diag + (upper(a[i - 1]) != upper(b[j - 1]));

			tmp = row[j];
			row[j] = del < ins ? (del < sub ? del : sub) : (ins < sub ? ins : sub);
			prev_diag = tmp;
			if (row[j] < best)
				best = row[j];
		}
		if (best > 2)
			return 3;
	}
	return row[m] > 2 ? 3 : row[m];
}

const char *mpk_config_near_miss(const char *name, size_t len)
{
	if (mpk_config_key(name, len) != MPK_KEY_NONE)
		return NULL;
	for (size_t i = 0; i < NKEYS; i++)
		if (distance(name, len, keys[i].name) <= 2)
			return keys[i].name;
	return NULL;
}

int mpk_config_check(const char *key, const char *value, const char **why)
{
	*why = NULL;
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, key))
			return keys[i].check(value, why) < 0 ? -EINVAL : 0;
	return -ENOENT;
}

/* An MPKLINK_ key's value, as both parsers hold it: 0, or -EINVAL with
 * what (a reason without the key or value, which the caller quotes). */
static int check_setting(const char *key, const char *value,
			 const struct mpk_config_hooks *hooks, char *what, size_t whatlen)
{
	const char *why = NULL, *near;
	size_t len = strlen(key);

	switch (mpk_config_key(key, len)) {
	case MPK_KEY_INTERNAL:
		snprintf(what, whatlen, "%s is set by mpklink-run for its program, not a setting",
			 key);
		return -EINVAL;
	case MPK_KEY_NONE:
		near = mpk_config_near_miss(key, len);
		snprintf(what, whatlen, "unknown key %s%s%s%s (see mpklink-run --help)", key,
			 near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
		return -EINVAL;
	case MPK_KEY_SETTING:
		break;
	}
	if (mpk_config_check(key, value, &why) < 0) {
		snprintf(what, whatlen, "%s", why ? why : "bad value");
		return -EINVAL;
	}
	if (hooks && hooks->check)
		return hooks->check(hooks->ctx, key, value, what, whatlen) < 0 ? -EINVAL : 0;
	return 0;
}

/* A value quoted in a message: at most 80 bytes of it. */
#define QUOTE(v) (int)(strlen(v) > 80 ? 80 : strlen(v)), (v), strlen(v) > 80 ? "..." : ""

static void warn_near(const struct mpk_config_hooks *hooks, const char *where, unsigned line,
		      const char *name, size_t len)
{
	char msg[320];
	const char *near;

	if (!hooks || !hooks->warn || !(near = mpk_config_near_miss(name, len)))
		return;
	if (line)
		snprintf(msg, sizeof(msg), "%s:%u: %.*s is not an mpklink setting, but looks like "
					   "%s; passed to the program as it is", where, line,
			 (int)len, name, near);
	else
		snprintf(msg, sizeof(msg), "%s: %.*s is not an mpklink setting, but looks like %s; "
					   "passed to the program as it is", where, (int)len, name,
			 near);
	hooks->warn(hooks->ctx, msg);
}

static int c_ident(const char *s, size_t n)
{
	if (!n || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

int mpk_config_parse_file(const char *file, const char *text, size_t len,
			  int (*put)(void *ctx, const char *key, const char *value, unsigned line),
			  const struct mpk_config_hooks *hooks, char *err, size_t errlen)
{
	char what[512], *buf = NULL;
	size_t off = 0, cap = 0;
	unsigned lineno = 0;
	int r = 0;

	err[0] = 0;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = (nl ? (size_t)(nl - text) : len) - off, k, vl;
		char *s, *eq, *val;

		lineno++;
		if (memchr(text + off, 0, n)) {
			snprintf(err, errlen, "%s:%u: a NUL byte in the line (not a text file?)",
				 file, lineno);
			r = -EINVAL;
			break;
		}
		if (n + 1 > cap) {
			char *nb = realloc(buf, n + 1);

			if (!nb) {
				r = -ENOMEM;
				snprintf(err, errlen, "%s:%u: out of memory", file, lineno);
				break;
			}
			buf = nb;
			cap = n + 1;
		}
		memcpy(buf, text + off, n);
		buf[n] = 0;
		off += n + (nl ? 1 : 0);
		if (n && buf[n - 1] == '\r')
			buf[--n] = 0;
		s = buf;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq || !c_ident(s, (size_t)(eq - s))) {
			snprintf(err, errlen, "%s:%u: expected KEY=VALUE, got \"%.60s\"", file, lineno,
				 s);
			r = -EINVAL;
			break;
		}
		*eq = 0;
		k = (size_t)(eq - s);
		val = eq + 1;
		vl = strlen(val);
		/* systemd's EnvironmentFile strips one pair of quotes. */
		if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
			val[vl - 1] = 0;
			val++;
		}
		if (!strncmp(s, "MPKLINK_", 8)) {
			if (check_setting(s, val, hooks, what, sizeof(what)) < 0) {
				snprintf(err, errlen, "%s:%u: %s=%.*s%s: %s", file, lineno, s,
					 QUOTE(val), what);
				r = -EINVAL;
				break;
			}
		} else {
			warn_near(hooks, file, lineno, s, k);
		}
		if (put && (r = put(hooks ? hooks->ctx : NULL, s, val, lineno)) < 0) {
			snprintf(err, errlen, "%s:%u: %s: %s", file, lineno, s, strerror(-r));
			break;
		}
	}
	free(buf);
	return r;
}

int mpk_config_check_environ(char *const *envp, const struct mpk_config_hooks *hooks, char *err,
			     size_t errlen)
{
	char key[128], what[512];

	err[0] = 0;
	for (char *const *e = envp; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t k = eq ? (size_t)(eq - *e) : strlen(*e);

		if (strncmp(*e, "MPKLINK_", 8)) {
			warn_near(hooks, "environment", 0, *e, k);
			continue;
		}
		if (!eq || k >= sizeof(key)) {
			snprintf(err, errlen, "environment: %.*s%s: not a setting", QUOTE(*e));
			return -EINVAL;
		}
		memcpy(key, *e, k);
		key[k] = 0;
		/* mpklink-run's own: a launcher started under another one. */
		if (mpk_config_key(key, k) == MPK_KEY_INTERNAL)
			continue;
		if (check_setting(key, eq + 1, hooks, what, sizeof(what)) < 0) {
			snprintf(err, errlen, "environment: %s=%.*s%s: %s", key, QUOTE(eq + 1), what);
			return -EINVAL;
		}
	}
	return 0;
}

static int set(const char *v)
{
	return v && *v;
}

int mpk_config_check_together(const char *(*get)(const char *key), const char **key,
			      const char **why)
{
	int id = set(get("MPKLINK_IDENTITY"));
	const char *integ = get("MPKLINK_INTEGRITY");

	*key = NULL;
	*why = NULL;
	if (id && !set(get("MPKLINK_TRUST"))) {
		*key = "MPKLINK_IDENTITY";
		*why = "needs MPKLINK_TRUST (the CA's ca.pub, to check peers against)";
	} else if (!id && integ && !strcmp(integ, "mac")) {
		*key = "MPKLINK_INTEGRITY";
		*why = "mac needs MPKLINK_IDENTITY (the MAC key comes from the authenticated "
		       "handshake)";
	} else if (!id && set(get("MPKLINK_ALLOW"))) {
		*key = "MPKLINK_ALLOW";
		*why = "needs MPKLINK_IDENTITY: without one no client proves who it is, so the "
		       "list could not be enforced";
	} else if (!id && mpk_endpoints_named(get("MPKLINK_ENDPOINTS"))) {
		*key = "MPKLINK_ENDPOINTS";
		*why = "names a server identity (=NAME), which needs MPKLINK_IDENTITY: without "
		       "one no server proves who it is, so the name could not be checked";
	} else if (!id && set(get("MPKLINK_TRUST"))) {
		*key = "MPKLINK_TRUST";
		*why = "needs MPKLINK_IDENTITY: without one no peer is checked against the CA";
	}
	return *key ? -EINVAL : 0;
}
