/* SPDX-License-Identifier: MIT */
/* The stress cases of stress.c, as Criterion tests. */
#include <criterion/criterion.h>
#include <string.h>

#include "stress.h"

static void run(const char *name)
{
	for (const struct stress_case *c = stress_cases; c->name; c++) {
		if (strcmp(c->name, name))
			continue;
		const char *err = stress_run(c);
		cr_assert_null(err, "%s", err);
		return;
	}
	cr_assert_fail("no stress case %s", name);
}

TestSuite(stream, .timeout = 300);
TestSuite(wakeup, .timeout = 600);

Test(stream, processes_128MiB_each_way_shutdown) { run("processes_128MiB_each_way_shutdown"); }
Test(stream, processes_128MiB_then_close) { run("processes_128MiB_then_close"); }
Test(stream, threads_small_ring) { run("threads_small_ring"); }
Test(wakeup, threads_1M_messages) { run("threads_1M_messages"); }
Test(wakeup, processes_1M_messages) { run("processes_1M_messages"); }
Test(wakeup, threads_1M_messages_eventfd) { run("threads_1M_messages_eventfd"); }
Test(wakeup, processes_1M_messages_eventfd) { run("processes_1M_messages_eventfd"); }
Test(stream, processes_128MiB_eventfd) { run("processes_128MiB_eventfd"); }
