/* SPDX-License-Identifier: MIT */
/* The run directory's place and policy (ctl_server.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_server.h"

int mpk_rundir_default(char *buf, size_t len)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	int n;

	if (x && *x)
		n = snprintf(buf, len, "%s/mpklink", x);
	else
		n = snprintf(buf, len, "/tmp/mpklink-%u", (unsigned)getuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int mpk_rundir_check(const char *dir, int create, const char **why)
{
	struct stat st;

	*why = NULL;
	if (strlen(dir) > 80) {
		*why = "path too long for unix sockets (at most 80 characters)";
		return -ENAMETOOLONG;
	}
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*why = "cannot create it";
		return -errno;
	}
	if (lstat(dir, &st) < 0) {
		*why = "does not exist";
		return -errno;
	}
	if (S_ISLNK(st.st_mode)) {
		*why = "is a symbolic link";
		return -EPERM;
	}
	if (!S_ISDIR(st.st_mode)) {
		*why = "is not a directory";
		return -ENOTDIR;
	}
	if (st.st_uid != getuid()) {
		*why = "is owned by another user";
		return -EPERM;
	}
	if (st.st_mode & 077) {
		*why = "is accessible to group or others (chmod 700 it)";
		return -EPERM;
	}
	return 0;
}
