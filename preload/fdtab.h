/* SPDX-License-Identifier: MIT */
/*
 * fd numbers -> the preload's objects (a listener, a connection, an epoll
 * set), with the kernel's lifetime rules for files:
 *
 *  - an object lives while an fd number names it (a name) or a call uses
 *    it (a reference): close() drops a name, and the object is destroyed
 *    only when the last call using it has returned, as the kernel keeps a
 *    file open under a read that another thread's close raced;
 *  - every fd number is bounds-checked: the table has pages for numbers
 *    below FDTAB_MAX, allocated as they are first used; a number beyond it
 *    is never ours (its connections stay plain);
 *  - objects are never returned to malloc: a freed one waits on its kind's
 *    free list, so that a lookup racing a close can take a reference on
 *    it, see it is no longer what the number names, and let go (the same
 *    type-stable memory the kernel's files use).
 *
 * Lookups (fdtab_peek, fdtab_get) take no lock: one atomic load each for
 * the page and the slot. Changes take the table lock.
 *
 * May call: real.h, log.h, process.h (the vfork check). Every other file
 * reaches fd numbers through here.
 */
#ifndef MPK_FDTAB_H
#define MPK_FDTAB_H

#include <stddef.h>
#include <stdint.h>

#include "preload.h"

#define FDTAB_PAGE_SHIFT 12
#define FDTAB_PAGES      (1u << 18)
#define FDTAB_MAX        (FDTAB_PAGES << FDTAB_PAGE_SHIFT) /* 2^30 fd numbers */

enum fdo_kind {
	FDO_INTERNAL = 1, /* one of our own fds (doorbells, control sockets) */
	FDO_LISTEN,
	FDO_CONN,
	FDO_EPOLL,
	FDO_NKINDS
};

struct fdobj {
	unsigned refs;  /* atomic: names + calls in flight; 0 while free */
	unsigned names; /* fd numbers naming it, in this process; table lock */
	uint8_t kind;
	struct fdobj *live_next, *live_prev; /* every live object; table lock */
	struct fdobj *free_next;             /* its kind's free list; table lock */
};

struct fdobj_ops {
	size_t size; /* of the object, struct fdobj first */
	/* Construct: o is zeroed past its header. */
	void (*init)(struct fdobj *o);
	/* The last reference went: release everything o holds. quiet: in a
	 * fork child, for an object only the parent's threads used: tell
	 * nobody outside this process. */
	void (*destroy)(struct fdobj *o, int quiet);
	/* Its number fd was reused behind our back (fdtab_fresh). */
	void (*stale)(struct fdobj *o, int fd);
	/* In a fork child: the parent's threads are gone; reset what they may
	 * have held (locks). */
	void (*fork_child)(struct fdobj *o);
	/* One of our internal fds, fd, was closed behind our back and its
	 * number reused: stop using it if it is o's. */
	void (*internal_lost)(struct fdobj *o, int fd);
};

/* Each kind's module registers its ops once, before any object exists. */
HIDDEN void fdtab_register(enum fdo_kind kind, const struct fdobj_ops *ops);

/* A new object of kind, with one reference (the caller's), no name.
 * NULL when out of memory. */
HIDDEN struct fdobj *fdobj_new(enum fdo_kind kind);

/* Another reference, for a caller that holds one already. */
static inline void fdobj_ref(struct fdobj *o)
{
	__atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
}

/* Another reference unless o's last went already (it is being
 * destroyed): 1 taken, 0 not. */
static inline int fdobj_tryref(struct fdobj *o)
{
	unsigned r = __atomic_load_n(&o->refs, __ATOMIC_RELAXED);

	do {
		if (r == 0)
			return 0;
	} while (!__atomic_compare_exchange_n(&o->refs, &r, r + 1, 1, __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	return 1;
}

HIDDEN void fdobj_release(struct fdobj *o);

/* Drops a reference; the last one destroys o. */
static inline void fdobj_put(struct fdobj *o)
{
	if (__atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0)
		fdobj_release(o);
}

/* The internal marker's object: what fdtab_peek returns for our own fds. */
HIDDEN extern struct fdobj fdtab_internal_obj;

struct fdpage {
	struct fdobj *slot[1u << FDTAB_PAGE_SHIFT];
};
HIDDEN extern struct fdpage *fdtab_pages[FDTAB_PAGES];

/* The slot of fd, or NULL when its page was never needed. */
static inline struct fdobj **fdtab_slot(int fd)
{
	struct fdpage *p;

	if ((unsigned)fd >= FDTAB_MAX)
		return NULL;
	/* Pairs with the release store that published the page. */
	p = __atomic_load_n(&fdtab_pages[(unsigned)fd >> FDTAB_PAGE_SHIFT], __ATOMIC_ACQUIRE);
	return p ? &p->slot[(unsigned)fd & ((1u << FDTAB_PAGE_SHIFT) - 1)] : NULL;
}

/* What fd names now (NULL: nothing of ours), without a reference: only
 * for a look at its kind, or while the caller holds a reference. */
static inline struct fdobj *fdtab_peek(int fd)
{
	struct fdobj **s = fdtab_slot(fd);

	/* Pairs with the release stores in fdtab_hook: o's fields are set. */
	return s ? __atomic_load_n(s, __ATOMIC_ACQUIRE) : NULL;
}

#define FDO_BIT(k) (1u << (k))

/* The slow path of fdtab_get: o was freed or moved on under us. */
HIDDEN struct fdobj *fdtab_get_retry(int fd, unsigned kinds);

/*
 * What fd names now, of the kinds in kinds (a bit per enum fdo_kind), with
 * a reference for the caller (fdobj_put it); NULL if nothing of those.
 * One locked add: a reference taken on an object that turned out free (0
 * before our add) or no longer named by fd is given back and the lookup
 * retried.
 */
static inline struct fdobj *fdtab_get(int fd, unsigned kinds)
{
	struct fdobj **s = fdtab_slot(fd), *o;

	if (!s)
		return NULL;
	o = __atomic_load_n(s, __ATOMIC_ACQUIRE);
	if (!o || !(kinds & FDO_BIT(o->kind)))
		return NULL;
	/* Acquire: pairs with the release in fdobj_put, so what the last
	 * holder did is seen. */
	if (__builtin_expect(__atomic_fetch_add(&o->refs, 1, __ATOMIC_ACQUIRE) != 0, 1) &&
	    __builtin_expect(__atomic_load_n(s, __ATOMIC_ACQUIRE) == o, 1))
		return o;
	return fdtab_get_retry(fd, kinds);
}

/*
 * Gives o the name fd (and the reference a name holds). The slot must be
 * empty: the caller made fd with the real call and ran fdtab_fresh first.
 * Returns 0, -EMFILE (fd >= FDTAB_MAX), -EBUSY (fd names something
 * already: nothing is changed) or -ENOMEM.
 */
HIDDEN int fdtab_hook(int fd, struct fdobj *o);

/*
 * fd names nothing from now on. Returns what it named (the name's
 * reference passes to the caller, who puts it) and in *last whether that
 * was the object's last name; NULL when fd named nothing of ours.
 */
HIDDEN struct fdobj *fdtab_unhook(int fd, int *last);

/* The kernel just handed fd out: whatever we knew under that number was
 * closed behind our back and is stale. Cheap when fd is not ours. */
HIDDEN void fdtab_fresh(int fd);

/* Our own fds among the program's: moved up out of the way of the numbers
 * it expects in order (half the soft RLIMIT_NOFILE, at most 32768),
 * marked so that its close says EBADF and its dup2 onto one EBUSY.
 * fdtab_internal_take returns the fd's new number (fd is consumed).
 * fdtab_internal_dup makes such an fd a duplicate of fd (one system call
 * where a dup and a take are three), or -1 with errno. */
HIDDEN int fdtab_internal_take(int fd);
HIDDEN int fdtab_internal_dup(int fd);
HIDDEN void fdtab_internal_close(int fd);
static inline int fdtab_is_internal(int fd)
{
	return fdtab_peek(fd) == &fdtab_internal_obj;
}

/* Sets where internal fds go; from preload_start. */
HIDDEN void fdtab_init(void);

/* One past the highest fd number ever hooked or internal (for scans of
 * the table: no number at or above it is ours). */
HIDDEN int fdtab_high(void);

/* Calls fn for every live object of kind (table lock held: fn must not
 * hook, unhook or put). */
HIDDEN void fdtab_each(enum fdo_kind kind, void (*fn)(struct fdobj *o, void *arg), void *arg);

/* Fork: hold the table across it; in the child, every object's references
 * are its names again, and objects only the parent's threads held go. */
HIDDEN void fdtab_fork_prepare(void);
HIDDEN void fdtab_fork_parent(void);
HIDDEN void fdtab_fork_child(void);

#endif
