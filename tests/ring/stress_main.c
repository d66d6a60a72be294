/* SPDX-License-Identifier: MIT */
/*
 * ring_stress [CASE...]: the stress cases without Criterion, which cannot
 * start under ThreadSanitizer. Runs the named cases (all by default) and
 * ends with the plain "N passed, N failed" line.
 */
#include <stdio.h>
#include <string.h>

#include "stress.h"

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (const struct stress_case *c = stress_cases; c->name; c++) {
		int selected = argc < 2;
		for (int i = 1; i < argc; i++)
			selected |= !strcmp(argv[i], c->name);
		if (!selected)
			continue;
		const char *err = stress_run(c);
		printf("%s %s%s%s\n", err ? "FAIL" : "PASS", c->name, err ? ": " : "",
		       err ? err : "");
		fflush(stdout);
		if (err)
			failed++;
		else
			passed++;
	}
	if (!passed && !failed) {
		fprintf(stderr, "ring_stress: no such case\n");
		return 2;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
