/* SPDX-License-Identifier: MIT */
/* The MPKLINK_* settings' parsers and checks (mpklink/config.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpklink/config.h"
#include "mpklink/ring.h"

static int loopback_host(const char *h, size_t n)
{
	char buf[64];
	struct in_addr a4;
	struct in6_addr a6;

	if (n && h[0] == '[') {
		if (n < 2 || h[n - 1] != ']')
			return 0;
		h++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, h, n);
	buf[n] = 0;
	if (!strcmp(buf, "localhost"))
		return 1;
	if (inet_pton(AF_INET, buf, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127 || a4.s_addr == htonl(INADDR_ANY);
	if (inet_pton(AF_INET6, buf, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

int mpk_endpoints_parse(const char *s, uint16_t *ports, size_t max, const char **bad)
{
	size_t n = 0;

	*bad = NULL;
	while (s && *s) {
		const char *start = s, *end = strchr(s, ','), *colon, *eq;
		char *num_end;
		unsigned long port;

		if (!end)
			end = s + strlen(s);
		eq = memchr(start, '=', (size_t)(end - start));
		if (!eq)
			eq = end;
		/* The last colon splits host and port (IPv6 hosts have more). */
		colon = NULL;
		for (const char *p = start; p < eq; p++)
			if (*p == ':')
				colon = p;
		if (!colon || !loopback_host(start, (size_t)(colon - start)))
			goto bad;
		errno = 0;
		port = strtoul(colon + 1, &num_end, 10);
		if (num_end != eq || colon + 1 == eq || errno || port == 0 || port > 65535)
			goto bad;
		if (n == max) {
			*bad = start;
			return -E2BIG;
		}
		ports[n++] = (uint16_t)port;
		s = *end ? end + 1 : end;
		continue;
bad:
		*bad = start;
		return -EINVAL;
	}
	return (int)n;
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
	char *end;
	unsigned long long n;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		n <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		n <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		n <<= 30, end++;
	if (*end || n < MPK_LINK_RING_MIN || n > MPK_LINK_RING_MAX || (n & (n - 1)))
		return -EINVAL;
	*out = (size_t)n;
	return 0;
}

static int check_endpoints(const char *v, const char **why)
{
	static __thread char msg[160];
	uint16_t ports[MPK_MAX_ENDPOINTS];
	const char *bad;
	int n = mpk_endpoints_parse(v, ports, MPK_MAX_ENDPOINTS, &bad);

	if (n >= 0)
		return 0;
	if (n == -E2BIG)
		snprintf(msg, sizeof(msg), "more than %d endpoints", MPK_MAX_ENDPOINTS);
	else
		snprintf(msg, sizeof(msg),
			 "not a loopback host:port at \"%.60s\" (hosts: localhost, 127.x.x.x, "
			 "0.0.0.0, ::1, ::, ::ffff:127.x.x.x)", bad ? bad : "");
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

	*why = "must be a power of two from 4096 to 1G (e.g. 65536, 1M)";
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
	return mpk_integrity_parse(v) >= 0 ? 0 : -EINVAL;
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

int mpk_config_check(const char *key, const char *value, const char **why)
{
	*why = NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].name, key))
			return keys[i].check(value, why) < 0 ? -EINVAL : 0;
	return -ENOENT;
}
