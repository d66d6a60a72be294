/* SPDX-License-Identifier: MIT */
/* The integration programs' failure report: "NAME: FAIL: why" on stderr,
 * exit status 1. Define IT_NAME before including. */
#ifndef MPK_IT_FAIL_H
#define MPK_IT_FAIL_H
#include <stdio.h>
#include <stdlib.h>

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, IT_NAME ": FAIL: " __VA_ARGS__);                       \
		fputc('\n', stderr);                                                   \
		exit(1);                                                               \
	} while (0)
#endif
