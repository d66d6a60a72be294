/* SPDX-License-Identifier: MIT */
/*
 * Latency statistics and CSV rows for mpklink-bench grpc and compare.
 *
 * Percentiles are nearest-rank (bench_percentile in util.h): the p-th
 * percentile of n samples is the smallest sample with at least p% of all
 * samples at or below it, i.e. sorted[ceil(p/100 * n) - 1]. No
 * interpolation: every value reported was measured. For 1..100 that gives
 * p50 = 50, p90 = 90, p99 = 99, p99.9 = 100.
 */
#ifndef MPK_BENCH_STATS_H
#define MPK_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_CSV_HEADER "bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s\n"

struct lat_summary {
	uint64_t n;                    /* samples */
	double min, p50, p90, p99, p999, max, mean; /* microseconds */
};

/* Sorts ns[0..n) in place and summarises it (nanoseconds in, microseconds
 * out). n == 0 gives all zeros. */
void stats_summarize(uint64_t *ns, size_t n, struct lat_summary *s);

/* Log2 histogram of samples (any unit): counts[b] is how many samples v
 * have floor(log2(v)) == b (v == 0 counts in bucket 0); nbuckets at most
 * 64; samples beyond the last bucket count in it. */
void stats_log2_hist(const uint64_t *v, size_t n, uint64_t *counts, unsigned nbuckets);

/*
 * One CSV row (with its newline) into buf: bench,transport,size_bytes,
 * p50_us,p99_us,mbytes_per_s, latencies with 3 decimals, throughput with 3
 * or empty when mbps < 0. Returns the length snprintf would, like it.
 * bench and transport must not contain commas, quotes or newlines
 * (-1 if they do).
 */
int stats_csv_row(char *buf, size_t len, const char *bench, const char *transport,
		  uint64_t size_bytes, double p50_us, double p99_us, double mbps);

/*
 * Parses one such row (no header). Fields are written only on success;
 * bench and transport are copied into buffers of blen and tlen bytes;
 * *mbps is -1 when the field is empty. 0, or -1 when malformed.
 */
int stats_csv_parse(const char *line, char *bench, size_t blen, char *transport, size_t tlen,
		    uint64_t *size_bytes, double *p50_us, double *p99_us, double *mbps);

#endif
