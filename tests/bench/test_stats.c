/* SPDX-License-Identifier: MIT */
/* bench/stats.c and bench/svg.c: percentiles, histogram, CSV rows, SVG. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "svg.h"
#include "util.h"

Test(stats, percentiles_1_to_100_nearest_rank)
{
	uint64_t v[100];
	struct lat_summary s;

	/* Shuffled microseconds 1..100, in nanoseconds. */
	for (unsigned i = 0; i < 100; i++)
		v[i] = (uint64_t)((i * 37u) % 100u + 1u) * 1000u;
	stats_summarize(v, 100, &s);
	cr_expect_eq(s.n, 100);
	cr_expect_float_eq(s.min, 1.0, 1e-9);
	cr_expect_float_eq(s.p50, 50.0, 1e-9);
	cr_expect_float_eq(s.p90, 90.0, 1e-9);
	cr_expect_float_eq(s.p99, 99.0, 1e-9);
	cr_expect_float_eq(s.p999, 100.0, 1e-9);
	cr_expect_float_eq(s.max, 100.0, 1e-9);
	cr_expect_float_eq(s.mean, 50.5, 1e-9);
	for (unsigned i = 1; i < 100; i++)
		cr_assert(v[i - 1] <= v[i], "sorted in place");
}

Test(stats, percentiles_small_and_empty)
{
	uint64_t one[1] = {7000}, ten[10];
	struct lat_summary s;

	stats_summarize(one, 1, &s);
	cr_expect_float_eq(s.p50, 7.0, 1e-9);
	cr_expect_float_eq(s.p999, 7.0, 1e-9);
	for (unsigned i = 0; i < 10; i++)
		ten[i] = (10 - i) * 1000;
	stats_summarize(ten, 10, &s);
	/* ceil(0.5*10) = 5th; ceil(0.9*10) = 9th; ceil(0.99*10) = 10th. */
	cr_expect_float_eq(s.p50, 5.0, 1e-9);
	cr_expect_float_eq(s.p90, 9.0, 1e-9);
	cr_expect_float_eq(s.p99, 10.0, 1e-9);
	stats_summarize(ten, 0, &s);
	cr_expect_eq(s.n, 0);
	cr_expect_float_eq(s.p50, 0.0, 1e-12);
}

Test(stats, log2_histogram)
{
	uint64_t v[] = {0, 1, 2, 3, 4, 7, 8, 1000, UINT64_MAX};
	uint64_t h[64], h4[4];

	stats_log2_hist(v, sizeof(v) / sizeof(v[0]), h, 64);
	cr_expect_eq(h[0], 2); /* 0 and 1 */
	cr_expect_eq(h[1], 2); /* 2, 3 */
	cr_expect_eq(h[2], 2); /* 4, 7 */
	cr_expect_eq(h[3], 1); /* 8 */
	cr_expect_eq(h[9], 1); /* 1000: 512..1023 */
	cr_expect_eq(h[63], 1);
	stats_log2_hist(v, sizeof(v) / sizeof(v[0]), h4, 4);
	cr_expect_eq(h4[3], 3, "8, 1000 and UINT64_MAX clamp into the last bucket");
}

Test(stats, csv_rows)
{
	char buf[256], b[32], t[32];
	uint64_t size;
	double p50, p99, m;

	cr_expect_eq(stats_csv_row(buf, sizeof(buf), "echo", "mpklink", 65536, 12.3456, 99.5, 1.25),
		     (int)strlen("echo,mpklink,65536,12.346,99.500,1.250\n"));
	cr_expect_str_eq(buf, "echo,mpklink,65536,12.346,99.500,1.250\n");
	stats_csv_row(buf, sizeof(buf), "wordcount", "tcp", 8493, 1, 2, -1);
	cr_expect_str_eq(buf, "wordcount,tcp,8493,1.000,2.000,\n");
	cr_expect_eq(stats_csv_row(buf, sizeof(buf), "a,b", "tcp", 1, 1, 1, 1), -1);
	cr_expect_eq(stats_csv_row(buf, sizeof(buf), "echo", "x\"y", 1, 1, 1, 1), -1);
	cr_expect_str_eq(STATS_CSV_HEADER, "bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s\n");

	cr_assert_eq(stats_csv_parse("echo,mpklink,65536,12.346,99.500,1.250\n", b, sizeof(b), t,
				     sizeof(t), &size, &p50, &p99, &m), 0);
	cr_expect_str_eq(b, "echo");
	cr_expect_str_eq(t, "mpklink");
	cr_expect_eq(size, 65536);
	cr_expect_float_eq(p50, 12.346, 1e-9);
	cr_expect_float_eq(p99, 99.5, 1e-9);
	cr_expect_float_eq(m, 1.25, 1e-9);
	cr_assert_eq(stats_csv_parse("wordcount,tcp,8493,1.000,2.000,", b, sizeof(b), t, sizeof(t),
				     &size, &p50, &p99, &m), 0);
	cr_expect_float_eq(m, -1.0, 1e-12, "empty throughput");
	cr_expect_eq(stats_csv_parse("echo,tcp,64,1.0,2.0", b, sizeof(b), t, sizeof(t), &size,
				     &p50, &p99, &m), -1, "five fields");
	cr_expect_eq(stats_csv_parse("echo,tcp,64,x,2.0,", b, sizeof(b), t, sizeof(t), &size,
				     &p50, &p99, &m), -1, "non-numeric p50");
	cr_expect_eq(stats_csv_parse("echo,tcp,-4,1,2,", b, sizeof(b), t, sizeof(t), &size, &p50,
				     &p99, &m), -1, "negative size");
	cr_expect_eq(stats_csv_parse("echo,tcp,4,1,2,3,4", b, sizeof(b), t, sizeof(t), &size, &p50,
				     &p99, &m), -1, "seven fields");
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

Test(svg, loglog_document)
{
	double x1[] = {64, 1024, 65536}, y1[] = {40, 50, 200};
	double x2[] = {64, 1024, 65536}, y2[] = {30, 0, 100}; /* 0 is skipped */
	struct svg_series s[] = {
		{"tcp", "#111", 3, x1, y1},
		{"a<b&c", "#222", 3, x2, y2},
	};
	struct svg_panel p[] = {
		{"Echo", "size (bytes)", "p50 (us)", s, 2},
		{"Count", "text (bytes)", "p50 (us)", s, 1},
	};
	size_t len = 0;
	char *doc = svg_loglog("title & more", p, 2, &len);

	cr_assert_not_null(doc);
	cr_expect_eq(len, strlen(doc));
	cr_expect_eq(strncmp(doc, "<svg ", 5), 0);
	cr_expect_neq(strstr(doc, "</svg>\n"), NULL);
	cr_expect_eq(count(doc, "<polyline"), 3);
	cr_expect_neq(strstr(doc, "a&lt;b&amp;c"), NULL, "text escaped");
	cr_expect_eq(strstr(doc, "a<b"), NULL);
	cr_expect_neq(strstr(doc, "title &amp; more"), NULL);
	cr_expect_neq(strstr(doc, ">size (bytes)<"), NULL, "x label");
	cr_expect_neq(strstr(doc, ">p50 (us)<"), NULL, "y label");
	cr_expect_neq(strstr(doc, ">10<"), NULL, "decade ticks 10..100k");
	cr_expect_neq(strstr(doc, ">100k<"), NULL);
	cr_expect_eq(count(doc, "<circle"), 3 + 2 + 3, "a marker per valid point");
	free(doc);
}
