/* SPDX-License-Identifier: MIT */
/* A library that breaks the preload's rule (hygiene.sh): it exports close()
 * and calls close() itself, which binds to its own export. */
#include <unistd.h>

__attribute__((visibility("default"))) int close(int fd)
{
	(void)fd;
	return 0;
}

int hygiene_bad_use(int fd);

__attribute__((visibility("default"))) int hygiene_bad_use(int fd)
{
	return close(fd);
}
