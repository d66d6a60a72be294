/* SPDX-License-Identifier: MIT */
#ifndef MPK_TEST_STRESS_H
#define MPK_TEST_STRESS_H

#include <stddef.h>

struct stress_case {
	const char *name;
	int kind;
	size_t ring;
	int threads; /* 1: two threads; 0: two processes */
	int eventfd; /* 1: eventfd bells (the preload's); 0: a socket */
};

/* Terminated by a case with a NULL name. */
extern const struct stress_case stress_cases[];

/* Runs one case to the end. Returns NULL, or what went wrong. */
const char *stress_run(const struct stress_case *c);

#endif
