/* SPDX-License-Identifier: MIT */
/* Latency statistics and CSV rows: see stats.h. */
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void stats_summarize(uint64_t *ns, size_t n, struct lat_summary *s)
{
	long double sum = 0;

	memset(s, 0, sizeof(*s));
	if (!n)
		return;
	bench_sort_u64(ns, n);
	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	s->n = n;
	s->min = (double)ns[0] / 1e3;
	s->max = (double)ns[n - 1] / 1e3;
	s->p50 = (double)bench_percentile(ns, n, 0.50) / 1e3;
	s->p90 = (double)bench_percentile(ns, n, 0.90) / 1e3;
	s->p99 = (double)bench_percentile(ns, n, 0.99) / 1e3;
	s->p999 = (double)bench_percentile(ns, n, 0.999) / 1e3;
	s->mean = (double)(sum / n) / 1e3;
}

void stats_log2_hist(const uint64_t *v, size_t n, uint64_t *counts, unsigned nbuckets)
{
	if (nbuckets == 0)
		return;
	if (nbuckets > 64)
		nbuckets = 64;
	memset(counts, 0, nbuckets * sizeof(*counts));
	for (size_t i = 0; i < n; i++) {
		unsigned b = v[i] ? 63u - (unsigned)__builtin_clzll(v[i]) : 0u;

		counts[b < nbuckets ? b : nbuckets - 1]++;
	}
}

static int csv_plain(const char *s)
{
	return !strpbrk(s, ",\"\n\r");
}

int stats_csv_row(char *buf, size_t len, const char *bench, const char *transport,
		  uint64_t size_bytes, double p50_us, double p99_us, double mbps)
{
	if (!csv_plain(bench) || !csv_plain(transport))
		return -1;
	if (mbps < 0 || !isfinite(mbps))
		return snprintf(buf, len, "%s,%s,%llu,%.3f,%.3f,\n", bench, transport,
				(unsigned long long)size_bytes, p50_us, p99_us);
	return snprintf(buf, len, "%s,%s,%llu,%.3f,%.3f,%.3f\n", bench, transport,
			(unsigned long long)size_bytes, p50_us, p99_us, mbps);
}

/* Copies field [s, e) into out (len bytes); -1 when it does not fit. */
static int field(const char *s, const char *e, char *out, size_t len)
{
	size_t n = (size_t)(e - s);

	if (n + 1 > len)
		return -1;
	memcpy(out, s, n);
	out[n] = 0;
	return 0;
}

static int num(const char *s, const char *e, double *out)
{
	char tmp[64], *end;

	if (field(s, e, tmp, sizeof(tmp)) < 0 || !tmp[0])
		return -1;
	errno = 0;
	*out = strtod(tmp, &end);
	return (errno || *end || !isfinite(*out)) ? -1 : 0;
}

int stats_csv_parse(const char *line, char *bench, size_t blen, char *transport, size_t tlen,
		    uint64_t *size_bytes, double *p50_us, double *p99_us, double *mbps)
{
	const char *f[7];
	char b[64], t[64], sz[32], *end;
	double p50, p99, m = -1;
	unsigned long long size;
	size_t nf = 1, ll = strcspn(line, "\r\n");

	f[0] = line;
	for (size_t i = 0; i < ll && nf < 7; i++)
		if (line[i] == ',')
			f[nf++] = line + i + 1;
	if (nf != 6)
		return -1;
	f[6] = line + ll + 1; /* one past the terminator of the last field */
	if (field(f[0], f[1] - 1, b, sizeof(b)) < 0 || !b[0] ||
	    field(f[1], f[2] - 1, t, sizeof(t)) < 0 || !t[0] ||
	    field(f[2], f[3] - 1, sz, sizeof(sz)) < 0 || !sz[0] || sz[0] == '-')
		return -1;
	errno = 0;
	size = strtoull(sz, &end, 10);
	if (errno || *end)
		return -1;
	if (num(f[3], f[4] - 1, &p50) < 0 || num(f[4], f[5] - 1, &p99) < 0)
		return -1;
	if (f[6] - 1 > f[5] && num(f[5], f[6] - 1, &m) < 0)
		return -1;
	if (strlen(b) + 1 > blen || strlen(t) + 1 > tlen)
		return -1;
	memcpy(bench, b, strlen(b) + 1);
	memcpy(transport, t, strlen(t) + 1);
	*size_bytes = size;
	*p50_us = p50;
	*p99_us = p99;
	*mbps = m;
	return 0;
}
