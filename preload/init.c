/* SPDX-License-Identifier: MIT */
/*
 * The preload's start, once per process image: the real calls, the
 * settings, each module's registrations; then, from the constructor, the
 * links of sockets inherited across exec.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "conn.h"
#include "epoll.h"
#include "fdtab.h"
#include "preload.h"
#include "process.h"
#include "real.h"
#include "settings.h"
#include "stats.h"
#include "upgrade.h"

pthread_once_t preload_once = PTHREAD_ONCE_INIT;

/* No malloc in here, nor in what it calls: the first interposed call may
 * come from inside the program's allocator's own start (jemalloc opens
 * files through syscall() while it holds its init lock). */
void preload_start(void)
{
	real_resolve();
	settings_load();
	fdtab_init();
	conn_register();
	epoll_register();
	process_start();
	exec_start();
	if (cfg.enabled)
		stats_start();
}

__attribute__((constructor)) static void preload_ctor(void)
{
	init();
	/* After the start: adoption uses every module. */
	upgrade_adopt_inherited();
	/* Every image after this one was exec'd by a process of ours. */
	if (cfg.enabled)
		setenv("MPKLINK_EXECED", "1", 1);
}
