/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kt.h"

void kt_tmpdir(char *out, size_t len)
{
	const char *t = getenv("TMPDIR");

	snprintf(out, len, "%s/mpk-keys-test.XXXXXX", t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(out), "mkdtemp: %s", strerror(errno));
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

void kt_rmrf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void kt_ca(const char *dir)
{
	char why[MPK_KEYS_WHY_MAX];
	int r = mpk_keys_ca_create(dir, 0, why, sizeof(why));

	cr_assert_eq(r, 0, "mpk_keys_ca_create(%s) = %d: %s", dir, r, why);
}

struct mpk_keys_identity *kt_identity(const char *dir, const char *name, int64_t nb_off,
				      int64_t na_off)
{
	char why[MPK_KEYS_WHY_MAX], base[512];
	struct mpk_keys_identity *id = NULL;
	int64_t now = (int64_t)time(NULL);
	int r = mpk_keys_issue(dir, name, "/bin/true", now + nb_off, now + na_off, 0, why,
			       sizeof(why));

	cr_assert_eq(r, 0, "mpk_keys_issue(%s) = %d: %s", name, r, why);
	r = mpk_keys_identity_load(kt_join(base, sizeof(base), dir, name), &id, why, sizeof(why));
	cr_assert_eq(r, 0, "mpk_keys_identity_load(%s) = %d: %s", base, r, why);
	return id;
}

void kt_ca_pk(const char *dir, uint8_t pk[MPK_KEYS_PK_BYTES])
{
	char why[MPK_KEYS_WHY_MAX], p[512];
	int r = mpk_keys_ca_load(kt_join(p, sizeof(p), dir, "ca.pub"), pk, why, sizeof(why));

	cr_assert_eq(r, 0, "mpk_keys_ca_load = %d: %s", r, why);
}

int kt_read(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap);
	close(fd);
	if (n < 0)
		return -errno;
	*len = (size_t)n;
	return 0;
}

int kt_write(const char *path, const void *buf, size_t len, unsigned mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0)
		return -errno;
	fchmod(fd, mode);
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

const char *kt_join(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

/* Reads both pipes to EOF, so a chatty child cannot block on a full one. */
static void drain(int fds[2], char *bufs[2], size_t cap)
{
	size_t n[2] = {0, 0};
	int open_n = 2;

	while (open_n) {
		struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};

		if (poll(p, 2, 30000) <= 0)
			break;
		for (int i = 0; i < 2; i++) {
			char tmp[4096];
			ssize_t k;

			if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			k = read(fds[i], tmp, sizeof(tmp));
			if (k <= 0) {
				close(fds[i]);
				fds[i] = -1;
				p[i].fd = -1;
				open_n--;
				continue;
			}
			for (ssize_t j = 0; j < k && n[i] + 1 < cap; j++)
				bufs[i][n[i]++] = tmp[j];
		}
	}
	for (int i = 0; i < 2; i++) {
		bufs[i][n[i]] = 0;
		if (fds[i] >= 0)
			close(fds[i]);
	}
}

int kt_run(char *out, char *err, size_t cap, const char *const *argv)
{
	int po[2], pe[2], fds[2], st;
	char *bufs[2] = {out, err};
	const char *args[32];
	pid_t pid;
	size_t n = 0;

	args[n++] = MPK_KEYS_BIN;
	for (; argv[n - 1] && n < 31; n++)
		args[n] = argv[n - 1];
	args[n] = NULL;
	cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(MPK_KEYS_BIN, (char *const *)args);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	fds[0] = po[0];
	fds[1] = pe[0];
	drain(fds, bufs, cap);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
