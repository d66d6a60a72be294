/* SPDX-License-Identifier: MIT */
/* The notice ring between a program and its launcher (ctl.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomics.h"
#include "mpklink/ctl.h"
#include "sys.h"

/* The layout is an ABI between the preload and the launcher. */
_Static_assert(offsetof(struct mpk_notes, head) == 16, "notes: head");
_Static_assert(offsetof(struct mpk_notes, tail) == 64, "notes: tail on its own line");
_Static_assert(offsetof(struct mpk_notes, note) == 128, "notes: slots");
_Static_assert(sizeof(struct mpk_ctl_req) == 52, "notes: a notice is a request");
_Static_assert((MPK_NOTES_SLOTS & (MPK_NOTES_SLOTS - 1)) == 0, "notes: slots a power of two");

#define NOTES_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static size_t notes_bytes(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (sizeof(struct mpk_notes) + page - 1) / page * page;
}

int mpk_notes_create(struct mpk_notes **out)
{
	size_t len = notes_bytes();
	struct mpk_notes *n;
	int fd, e;

	fd = mpk__sys()->memfd_create("mpklink-notes", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0 || mpk__sys()->fcntl(fd, F_ADD_SEALS, NOTES_SEALS) < 0)
		goto fail;
	n = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (n == MAP_FAILED)
		goto fail;
	n->magic = MPK_NOTES_MAGIC;
	n->version = MPK_NOTES_VERSION;
	n->slots = MPK_NOTES_SLOTS;
	*out = n;
	return fd;
fail:
	e = errno;
	mpk__sys()->close(fd);
	return -e;
}

int mpk_notes_attach(int fd, struct mpk_notes **out)
{
	size_t len = notes_bytes();
	struct mpk_notes *n;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size != len ||
	    (mpk__sys()->fcntl(fd, F_GET_SEALS) & NOTES_SEALS) != NOTES_SEALS)
		return -EPROTO;
	n = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (n == MAP_FAILED)
		return -errno;
	if (n->magic != MPK_NOTES_MAGIC || n->version != MPK_NOTES_VERSION ||
	    n->slots != MPK_NOTES_SLOTS) {
		munmap(n, len);
		return -EPROTO;
	}
	*out = n;
	return 0;
}

void mpk_notes_detach(struct mpk_notes *n)
{
	if (n)
		munmap(n, notes_bytes());
}

int mpk_notes_push(struct mpk_notes *n, const struct mpk_ctl_req *req)
{
	uint64_t head = mpk_load_relaxed(&n->head); /* ours: only we write it */
	/* Pairs with the store-release of tail in mpk_notes_take: the slots
	 * it freed were read before we write them again. */
	uint64_t tail = mpk_load_acquire(&n->tail);

	if (head - tail >= MPK_NOTES_SLOTS)
		return -EAGAIN;
	memcpy(&n->note[head % MPK_NOTES_SLOTS], req, sizeof(*req));
	/* Pairs with the load-acquire of head in mpk_notes_take: the notice
	 * is whole before the reader sees it. */
	mpk_store_release(&n->head, head + 1);
	return 0;
}

int mpk_notes_take(struct mpk_notes *n, uint64_t *tail, struct mpk_ctl_req *out, size_t max)
{
	/* Pairs with the store-release of head in mpk_notes_push. */
	uint64_t head = mpk_load_acquire(&n->head), t = *tail;
	size_t k = 0;

	if (head - t > MPK_NOTES_SLOTS)
		return -EPROTO;
	for (; t != head && k < max; t++, k++)
		memcpy(&out[k], &n->note[t % MPK_NOTES_SLOTS], sizeof(out[k]));
	*tail = t;
	/* Pairs with the load-acquire of tail in mpk_notes_push: these
	 * slots are read, and may be written again. */
	mpk_store_release(&n->tail, t);
	return (int)k;
}
