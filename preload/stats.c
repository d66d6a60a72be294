/* SPDX-License-Identifier: MIT */
/* The process's link counters and their report at exit (stats.h). */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "real.h"
#include "settings.h"
#include "stats.h"

struct stats_totals totals;

/* glibc's struct tcp_info ends at tcpi_total_retrans; the kernel's goes
 * on (the ABI only grows at the end). */
struct tcp_info_bytes {
	struct tcp_info base;
	uint64_t pacing_rate, max_pacing_rate;
	uint64_t bytes_acked, bytes_received;
};
_Static_assert(sizeof(struct tcp_info) == 104, "glibc tcp_info layout");

void stats_add(struct mpk_link *l, int sock)
{
	struct mpk_link_stats st;
	struct tcp_info_bytes ti;
	socklen_t len = sizeof(ti);

	mpk_link_get_stats(l, &st);
	__atomic_fetch_add(&totals.tx_bytes, st.tx_bytes, __ATOMIC_RELAXED);
	__atomic_fetch_add(&totals.rx_bytes, st.rx_bytes, __ATOMIC_RELAXED);
	__atomic_fetch_add(&totals.tx_calls, st.tx_calls, __ATOMIC_RELAXED);
	__atomic_fetch_add(&totals.rx_calls, st.rx_calls, __ATOMIC_RELAXED);
	__atomic_fetch_add(&totals.bells_sent, st.bells_sent, __ATOMIC_RELAXED);
	/* The preamble, if everything went through the link. Only when a
	 * report will show it: a system call at every close otherwise. */
	if (cfg.stats[0] && sock >= 0 && real.getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    len >= sizeof(ti))
		__atomic_fetch_add(&totals.tcp_bytes, ti.bytes_acked + ti.bytes_received,
				   __ATOMIC_RELAXED);
}

/* Links still open at exit; a dup'ed one is counted once (conn_claim). */
static void add_open(struct fdobj *o, void *arg)
{
	struct ufd *u = ufd_of(o);

	(void)arg;
	if (u->link && conn_claim_report(u))
		stats_add(u->link, u->sock);
}

static void stats_report(void)
{
	char buf[512];
	FILE *f = NULL;
	int n;

	/* Only processes that had something to do with links report. */
	if (!totals.links && !totals.fallbacks)
		return;
	fdtab_each(FDO_CONN, add_open, NULL);
	n = snprintf(buf, sizeof(buf),
		     "mpklink stats: pid=%d links=%llu fallbacks=%llu tx_bytes=%llu rx_bytes=%llu "
		     "tx_msgs=%llu rx_msgs=%llu doorbells=%llu tcp_bytes=%llu mac_links=%llu "
		     "made_over=%llu\n",
		     (int)getpid(), (unsigned long long)totals.links,
		     (unsigned long long)totals.fallbacks, (unsigned long long)totals.tx_bytes,
		     (unsigned long long)totals.rx_bytes, (unsigned long long)totals.tx_calls,
		     (unsigned long long)totals.rx_calls, (unsigned long long)totals.bells_sent,
		     (unsigned long long)totals.tcp_bytes, (unsigned long long)totals.mac_links,
		     (unsigned long long)totals.made_over);
	if (strcmp(cfg.stats, "1") && strcmp(cfg.stats, "stderr"))
		f = real.fopen(cfg.stats, "a");
	if (f) {
		fputs(buf, f);
		real.fclose(f);
	} else if (n > 0) {
		real.write(2, buf, (size_t)n);
	}
}

void stats_start(void)
{
	if (cfg.stats[0])
		atexit(stats_report);
}
