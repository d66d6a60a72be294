/* SPDX-License-Identifier: MIT */
/*
 * The seals are what lets the victim trust its mapping's size: a peer
 * holding the same fd cannot shrink the file (the victim would SIGBUS on
 * the missing pages), grow it, nor add F_SEAL_WRITE (which would make the
 * victim's own stores fail). Checked from a second process, the peer.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile.h"
#include "testutil.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define CAP 8192u

enum {
	GROW, SHRINK, TO_ZERO, FALLOC_GROW, ADD_WRITE, ADD_FUTURE_WRITE, ADD_NOTHING,
	REOPEN_GROW, REOPEN_SHRINK, REOPEN_ADD_WRITE, MAP_WRITE, NATTEMPTS,
};

static const char *const names[NATTEMPTS] = {
	"ftruncate bigger", "ftruncate smaller", "ftruncate to 0", "fallocate past the end",
	"add F_SEAL_WRITE", "add F_SEAL_FUTURE_WRITE", "add no seal (F_SEAL_SEAL set)",
	"reopened, ftruncate bigger", "reopened, ftruncate smaller",
	"reopened, add F_SEAL_WRITE", "map shared writable",
};

static int err_of(int r)
{
	return r < 0 ? errno : 0;
}

/* The peer's attempts; each result is 0 or the errno. */
static void attempts(int fd, off_t size, int *res)
{
	char name[64];
	int fd2;
	void *p;

	res[GROW] = err_of(ftruncate(fd, size + 4096));
	res[SHRINK] = err_of(ftruncate(fd, size - 4096));
	res[TO_ZERO] = err_of(ftruncate(fd, 0));
	res[FALLOC_GROW] = err_of(fallocate(fd, 0, size, 4096));
	res[ADD_WRITE] = err_of(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
	res[ADD_FUTURE_WRITE] = err_of(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
	res[ADD_NOTHING] = err_of(fcntl(fd, F_ADD_SEALS, 0));
	/* Another open file description of the same inode. */
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	fd2 = open(name, O_RDWR);
	if (fd2 < 0) {
		res[REOPEN_GROW] = res[REOPEN_SHRINK] = res[REOPEN_ADD_WRITE] = -1;
	} else {
		res[REOPEN_GROW] = err_of(ftruncate(fd2, 2 * size));
		res[REOPEN_SHRINK] = err_of(ftruncate(fd2, 4096));
		res[REOPEN_ADD_WRITE] = err_of(fcntl(fd2, F_ADD_SEALS, F_SEAL_WRITE));
		close(fd2);
	}
	/* Writing is the peer's right; that is why everything is validated. */
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	res[MAP_WRITE] = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED) {
		memset(p, 0, 64); /* even the magic */
		munmap(p, (size_t)size);
	}
}

/* Streams enough bytes each way to touch every page of both rings. */
static void link_works(struct mpk_link *a, struct mpk_link *b)
{
	static uint8_t in[CAP], out[CAP];
	uint64_t off = 0;

	for (int i = 0; i < 5; i++) {
		size_t n = CAP - 100 * (size_t)i;

		tu_fill(in, n, off, 3);
		cr_assert_eq(mpk_link_write(a, in, n), (ssize_t)n);
		cr_assert_eq(mpk_link_read(b, out, sizeof(out)), (ssize_t)n);
		cr_assert_eq(tu_check(out, n, off, 3), -1);
		cr_assert_eq(mpk_link_write(b, in, n), (ssize_t)n);
		cr_assert_eq(mpk_link_read(a, out, sizeof(out)), (ssize_t)n);
		cr_assert_eq(tu_check(out, n, off, 3), -1);
		off += n;
	}
}

Test(seals, peer_cannot_resize_or_write_seal, .timeout = 60)
{
	int fd = mpk_link_create(CAP), p[2], res[NATTEMPTS], st;
	struct mpk_link *a, *b;
	struct stat s0, s1;
	pid_t pid;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &s0), 0);
	cr_assert_eq(mpk_link_attach(fd, 0, &a), 0);
	cr_assert_eq(mpk_link_attach(fd, 1, &b), 0);
	link_works(a, b);
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		attempts(fd, s0.st_size, res);
		_exit(write(p[1], res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 1);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], res, sizeof(res)), (ssize_t)sizeof(res));
	close(p[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	for (int i = GROW; i <= REOPEN_ADD_WRITE; i++)
		cr_expect_eq(res[i], EPERM, "peer: %s: %s, expected EPERM", names[i],
			     res[i] ? strerror(res[i]) : "succeeded");
	cr_expect_eq(res[MAP_WRITE], 0, "peer: %s: %s", names[MAP_WRITE], strerror(res[MAP_WRITE]));

	/* Nothing changed for the victim. */
	cr_assert_eq(fstat(fd, &s1), 0);
	cr_expect_eq(s1.st_size, s0.st_size);
	cr_expect_eq(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	/* The peer zeroed the magic: read at attach only, so the link works on. */
	link_works(a, b);
	mpk_link_detach(a);
	mpk_link_detach(b);
	close(fd);
}
