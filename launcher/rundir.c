/* SPDX-License-Identifier: MIT */
/*
 * The run directory's place and policy (ctl_server.h): the path walked one
 * directory at a time from /, each checked as ssh checks the paths to its
 * keys, and the run directory held open from the check on, so that what
 * the launcher binds and connects to later is in the directory it checked
 * whatever is renamed meanwhile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_server.h"

/* Unix socket paths are at most 107 bytes; "/ctl-<pid>-<pidns>.sock" (at
 * most 26 bytes: a 7-digit pid, 8 hex digits) must fit after the
 * directory. (The rendezvous sockets are reached through the directory's
 * descriptor, /proc/self/fd/N/tcp-..., whatever the directory's length.) */
#define RUNDIR_MAX 80
#define MAX_LINKS 40

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

/* A directory on the way: only root or we may own it, and nobody else may
 * write to it unless the sticky bit keeps them to their own entries (as
 * /tmp): else they could rename what is below and put their own there. */
static int safe_above(const struct stat *st, const char *shown, char *why, size_t whylen)
{
	if (st->st_uid != 0 && st->st_uid != getuid()) {
		snprintf(why, whylen, "%s (on its path) is owned by uid %u, neither root nor us",
			 shown, (unsigned)st->st_uid);
		return -EPERM;
	}
	if ((st->st_mode & 022) && !(st->st_mode & S_ISVTX)) {
		snprintf(why, whylen,
			 "%s (on its path) is writable by %s without the sticky bit: anyone "
			 "could rename what is below it (chmod %s it)",
			 shown, (st->st_mode & 002) ? "others" : "its group",
			 (st->st_mode & 002) ? "o-w or +t" : "g-w or +t");
		return -EPERM;
	}
	return 0;
}

static int safe_self(const struct stat *st, const char *shown, char *why, size_t whylen)
{
	if (!S_ISDIR(st->st_mode)) {
		snprintf(why, whylen, "%s is not a directory", shown);
		return -ENOTDIR;
	}
	if (st->st_uid != getuid()) {
		snprintf(why, whylen, "%s is owned by another user (uid %u)", shown,
			 (unsigned)st->st_uid);
		return -EPERM;
	}
	if (st->st_mode & 077) {
		snprintf(why, whylen, "%s is accessible to group or others (chmod 700 it)", shown);
		return -EPERM;
	}
	return 0;
}

/* Appends "/name" to the path shown in messages (cut, never overflowing). */
static void shown_push(char *shown, size_t cap, const char *name)
{
	size_t n = strlen(shown);

	if (n == 1 && shown[0] == '/')
		n = 0;
	snprintf(shown + n, cap - n, "/%s", name);
}

static void shown_pop(char *shown)
{
	char *s = strrchr(shown, '/');

	if (s == shown)
		s[1] = 0;
	else if (s)
		*s = 0;
}

int mpk_rundir_open(const char *dir, int create, char *real, size_t realsz, char *why,
		    size_t whylen)
{
	/* rest: the components still to walk, '/'-separated. */
	char rest[2 * PATH_MAX], shown[PATH_MAX] = "/", link[PATH_MAX];
	struct stat st;
	int cur, links = 0, r;

	why[0] = 0;
	if (!dir || !*dir) {
		snprintf(why, whylen, "(empty) is no directory");
		return -EINVAL;
	}
	if (dir[0] == '/') {
		snprintf(rest, sizeof(rest), "%s", dir);
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd))) {
			r = -errno;
			snprintf(why, whylen, "%s: the current directory: %s", dir, strerror(-r));
			return r;
		}
		if ((size_t)snprintf(rest, sizeof(rest), "%s/%s", cwd, dir) >= sizeof(rest)) {
			snprintf(why, whylen, "%s: path too long", dir);
			return -ENAMETOOLONG;
		}
	}
	cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0 || fstat(cur, &st) < 0) {
		r = -errno;
		snprintf(why, whylen, "/: %s", strerror(-r));
		goto fail;
	}
	r = safe_above(&st, "/", why, whylen);
	if (r < 0)
		goto fail;
	for (;;) {
		char *p = rest, name[NAME_MAX + 1];
		size_t n;
		int last, next;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0) {
			/* "/" itself, or a path ending in slashes and nothing left. */
			snprintf(why, whylen, "%s: not a run directory", dir);
			r = -EINVAL;
			goto fail;
		}
		if (n > NAME_MAX) {
			snprintf(why, whylen, "%s: a name longer than %d bytes", dir, NAME_MAX);
			r = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(name, p, n);
		name[n] = 0;
		memmove(rest, p + n, strlen(p + n) + 1);
		last = rest[strspn(rest, "/")] == 0;
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			if (last) {
				snprintf(why, whylen, "%s: ends in \"..\"", dir);
				r = -EINVAL;
				goto fail;
			}
			next = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (next < 0) {
				r = -errno;
				snprintf(why, whylen, "%s/..: %s", shown, strerror(-r));
				goto fail;
			}
			close(cur);
			cur = next;
			shown_pop(shown);
			continue;
		}
		shown_push(shown, sizeof(shown), name);
		if (last && create && mkdirat(cur, name, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			snprintf(why, whylen, "%s: cannot create it: %s", shown, strerror(-r));
			goto fail;
		}
		if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			snprintf(why, whylen, "%s %s", shown,
				 r == -ENOENT ? "does not exist" : strerror(-r));
			/* -ENOENT says the run directory alone is missing. */
			if (r == -ENOENT && !last)
				r = -ENOTDIR;
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			ssize_t k;

			if (last) {
				snprintf(why, whylen, "%s is a symbolic link", shown);
				r = -EPERM;
				goto fail;
			}
			/* A link on the way is as safe as its owner: in a sticky
			 * directory, another user's link is theirs to change. */
			if (st.st_uid != 0 && st.st_uid != getuid()) {
				snprintf(why, whylen, "%s (on its path) is a symbolic link owned by "
						      "uid %u, neither root nor us",
					 shown, (unsigned)st.st_uid);
				r = -EPERM;
				goto fail;
			}
			k = readlinkat(cur, name, link, sizeof(link) - 1);
			if (k <= 0 || ++links > MAX_LINKS ||
			    (size_t)k + 1 + strlen(rest) + 1 > sizeof(rest)) {
				r = k < 0 ? -errno : -ELOOP;
				snprintf(why, whylen, "%s: %s", shown, strerror(-r));
				goto fail;
			}
			link[k] = 0;
			memmove(rest + k + 1, rest, strlen(rest) + 1);
			memcpy(rest, link, (size_t)k);
			rest[k] = '/';
			shown_pop(shown);
			if (link[0] == '/') {
				next = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
				if (next < 0) {
					r = -errno;
					goto fail;
				}
				close(cur);
				cur = next;
				snprintf(shown, sizeof(shown), "/");
			}
			continue;
		}
		next = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = -errno;
			snprintf(why, whylen, "%s %s", shown,
				 r == -ENOTDIR ? "is not a directory" : strerror(-r));
			goto fail;
		}
		close(cur);
		cur = next;
		/* What is checked is what we hold, not a name that may change. */
		if (fstat(cur, &st) < 0) {
			r = -errno;
			snprintf(why, whylen, "%s: %s", shown, strerror(-r));
			goto fail;
		}
		r = last ? safe_self(&st, shown, why, whylen) : safe_above(&st, shown, why, whylen);
		if (r < 0)
			goto fail;
		if (last)
			break;
	}
	if (strlen(shown) > RUNDIR_MAX) {
		snprintf(why, whylen, "%s: path too long for unix sockets (at most %d characters)",
			 shown, RUNDIR_MAX);
		r = -ENAMETOOLONG;
		goto fail;
	}
	if (real && (size_t)snprintf(real, realsz, "%s", shown) >= realsz) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	return cur;
fail:
	if (cur >= 0)
		close(cur);
	if (!why[0])
		snprintf(why, whylen, "%s: %s", dir, strerror(-r));
	return r;
}

int mpk_rundir_path(char *buf, size_t len, int dirfd, const char *name)
{
	int n = snprintf(buf, len, "/proc/self/fd/%d/%s", dirfd, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
