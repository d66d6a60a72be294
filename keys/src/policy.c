/* SPDX-License-Identifier: MIT */
/* MPKLINK_ALLOW, and the "=NAME" of MPKLINK_ENDPOINTS entries. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keys_internal.h"

struct allow_entry {
	uint16_t port;
	int any;
	size_t n;
	char (*names)[MPK_KEYS_NAME_MAX + 1];
};

struct mpk_keys_allow {
	size_t n;
	struct allow_entry *e;
};

/* An entry is quoted in errors, cut so a long one cannot hide the reason. */
#define QUOTE_MAX 80

/* "1".."65535", digits only. Returns the port or 0. */
static uint16_t parse_port(const char *s, size_t n)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? (uint16_t)v : 0;
}

/* Copies s[0..n) into name if it is a valid identity name. */
static int take_name(const char *s, size_t n, char name[MPK_KEYS_NAME_MAX + 1])
{
	if (n == 0 || n > MPK_KEYS_NAME_MAX)
		return -EINVAL;
	memcpy(name, s, n);
	name[n] = 0;
	return mpk_keys_name_check(name);
}

static int bad_entry(const char *var, const char *start, size_t len, const char *reason,
		     char *why, size_t why_len)
{
	mpk__why(why, why_len, "%s entry '%.*s%s': %s", var, (int)(len > QUOTE_MAX ? QUOTE_MAX : len),
		 start, len > QUOTE_MAX ? "..." : "", reason);
	return -EINVAL;
}

void mpk_keys_allow_free(struct mpk_keys_allow *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->e[i].names);
	free(a->e);
	free(a);
}

/* Parses the names of one entry, s[0..len) after the colon, into e. */
static int allow_names(const char *s, size_t len, struct allow_entry *e, const char **reason)
{
	size_t count = 1;

	for (size_t i = 0; i < len; i++)
		count += s[i] == '|';
	if (len == 1 && s[0] == '*') {
		e->any = 1;
		return 0;
	}
	e->names = calloc(count, sizeof(*e->names));
	if (!e->names)
		return -ENOMEM;
	for (size_t i = 0, start = 0; i <= len; i++) {
		if (i < len && s[i] != '|')
			continue;
		if (i - start == 1 && s[start] == '*') {
			*reason = "'*' stands alone: it already allows every identity";
			return -EINVAL;
		}
		if (take_name(s + start, i - start, e->names[e->n]) < 0) {
			*reason = i == start ? "empty name"
					     : "bad name (1 to 63 of A-Z a-z 0-9 . _ -)";
			return -EINVAL;
		}
		e->n++;
		start = i + 1;
	}
	return 0;
}

int mpk_keys_allow_parse(const char *s, struct mpk_keys_allow **out, char *why, size_t why_len)
{
	struct mpk_keys_allow *a = calloc(1, sizeof(*a));
	size_t count = 1;
	int r = 0;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	if (!s || !*s)
		goto done;
	for (const char *p = s; *p; p++)
		count += *p == ',';
	a->e = calloc(count, sizeof(*a->e));
	if (!a->e) {
		r = -ENOMEM;
		goto fail;
	}
	for (const char *p = s;;) {
		const char *end = strchr(p, ','), *colon, *reason = NULL;
		struct allow_entry *e = &a->e[a->n];
		size_t len;

		if (!end)
			end = p + strlen(p);
		len = (size_t)(end - p);
		colon = memchr(p, ':', len);
		if (!len) {
			r = bad_entry("MPKLINK_ALLOW", p, len, "empty entry", why, why_len);
			goto fail;
		}
		if (!colon) {
			r = bad_entry("MPKLINK_ALLOW", p, len, "want PORT:NAME[|NAME...] or PORT:*",
				      why, why_len);
			goto fail;
		}
		e->port = parse_port(p, (size_t)(colon - p));
		if (!e->port) {
			r = bad_entry("MPKLINK_ALLOW", p, len, "bad port (1 to 65535)", why, why_len);
			goto fail;
		}
		for (size_t i = 0; i < a->n; i++)
			if (a->e[i].port == e->port) {
				r = bad_entry("MPKLINK_ALLOW", p, len,
					      "a second entry for this port (join them with '|')", why,
					      why_len);
				goto fail;
			}
		a->n++; /* owned from here: freed on failure */
		r = allow_names(colon + 1, (size_t)(end - colon - 1), e, &reason);
		if (r == -EINVAL)
			r = bad_entry("MPKLINK_ALLOW", p, len, reason, why, why_len);
		if (r < 0)
			goto fail;
		if (!*end)
			break;
		p = end + 1;
	}
done:
	*out = a;
	return 0;
fail:
	mpk_keys_allow_free(a);
	return r;
}

int mpk_keys_allow_check(const struct mpk_keys_allow *a, uint16_t port, const char *name,
			 const char **why)
{
	const char *w = "no MPKLINK_ALLOW entry for this port";

	for (size_t i = 0; a && i < a->n; i++) {
		const struct allow_entry *e = &a->e[i];

		if (e->port != port)
			continue;
		if (e->any)
			goto ok;
		for (size_t j = 0; name && j < e->n; j++)
			if (!strcmp(e->names[j], name))
				goto ok;
		w = "identity not in MPKLINK_ALLOW for this port";
		break;
	}
	if (why)
		*why = w;
	return -EACCES;
ok:
	if (why)
		*why = NULL;
	return 0;
}

int mpk_keys_endpoint_name(const char *endpoints, uint16_t port,
			   char name[MPK_KEYS_NAME_MAX + 1], char *why, size_t why_len)
{
	char cand[MPK_KEYS_NAME_MAX + 1];
	int found = 0;

	name[0] = 0;
	for (const char *p = endpoints; p && *p;) {
		const char *end = strchr(p, ','), *eq, *colon = NULL;
		size_t len;
		uint16_t pt;

		if (!end)
			end = p + strlen(p);
		len = (size_t)(end - p);
		eq = memchr(p, '=', len);
		if (!eq)
			eq = end;
		/* The last colon before '=' ends the host (IPv6 has more). */
		for (const char *q = p; q < eq; q++)
			if (*q == ':')
				colon = q;
		pt = colon ? parse_port(colon + 1, (size_t)(eq - colon - 1)) : 0;
		if (!pt) {
			name[0] = 0;
			return bad_entry("MPKLINK_ENDPOINTS", p, len, "want HOST:PORT[=NAME]", why,
					 why_len);
		}
		if (eq != end) {
			if (take_name(eq + 1, (size_t)(end - eq - 1), cand) < 0) {
				name[0] = 0;
				return bad_entry("MPKLINK_ENDPOINTS", p, len,
						 "bad server name (1 to 63 of A-Z a-z 0-9 . _ -)",
						 why, why_len);
			}
			if (pt == port) {
				if (found && strcmp(name, cand)) {
					name[0] = 0;
					return bad_entry("MPKLINK_ENDPOINTS", p, len,
							 "another name for a port already named",
							 why, why_len);
				}
				memcpy(name, cand, sizeof(cand));
				found = 1;
			}
		}
		p = *end ? end + 1 : end;
	}
	return found;
}
