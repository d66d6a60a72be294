/* SPDX-License-Identifier: MIT */
/* fd numbers -> objects, with the kernel's file lifetimes (fdtab.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fdtab.h"
#include "real.h"

/* Untouched entries cost no memory: the array is in .bss. */
struct fdpage *fdtab_pages[FDTAB_PAGES];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct fdobj_ops *ops[FDO_NKINDS];
static struct fdobj *free_list[FDO_NKINDS];
static struct fdobj live = {.live_next = &live, .live_prev = &live};
static int high;          /* one past the highest number ever ours */
static int internal_base; /* where our own fds go */

struct fdobj fdtab_internal_obj = {.kind = FDO_INTERNAL};

void fdtab_register(enum fdo_kind kind, const struct fdobj_ops *o)
{
	ops[kind] = o;
}

void fdtab_init(void)
{
	struct rlimit rl;

	/* Half-way up the soft limit: above what most programs reach,
	 * leaving them the whole low range in order. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= 128)
		internal_base = rl.rlim_cur / 2 > 32768 ? 32768 : (int)(rl.rlim_cur / 2);
}

#define slot_of fdtab_slot

/* The slot of fd, its page allocated if need be. Under table_lock. */
static struct fdobj **page_for(int fd)
{
	unsigned pi = (unsigned)fd >> FDTAB_PAGE_SHIFT;
	struct fdpage *p;

	if ((unsigned)fd >= FDTAB_MAX)
		return NULL;
	p = fdtab_pages[pi];
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		/* Pairs with the acquire load in fdtab_slot. */
		__atomic_store_n(&fdtab_pages[pi], p, __ATOMIC_RELEASE);
	}
	return &p->slot[(unsigned)fd & ((1u << FDTAB_PAGE_SHIFT) - 1)];
}

struct fdobj *fdtab_get_retry(int fd, unsigned kinds)
{
	struct fdobj **s = slot_of(fd), *o;

	/* fdtab_get took a reference on what it found: give it back. A free
	 * object's count went 0 -> 1 -> 0 without being destroyed (a new
	 * owner adds its own reference rather than storing one, so that
	 * ours is never lost nor doubled). */
	o = __atomic_load_n(s, __ATOMIC_ACQUIRE);
	for (;;) {
		struct fdobj *again;

		if (!o || !(kinds & FDO_BIT(o->kind)))
			return NULL;
		if (__atomic_fetch_add(&o->refs, 1, __ATOMIC_ACQUIRE) == 0) {
			__atomic_fetch_sub(&o->refs, 1, __ATOMIC_RELAXED);
		} else if ((again = __atomic_load_n(s, __ATOMIC_ACQUIRE)) == o) {
			return o;
		} else {
			fdobj_put(o);
		}
		o = __atomic_load_n(s, __ATOMIC_ACQUIRE);
	}
}

/* Under table_lock. */
static void live_insert(struct fdobj *o)
{
	o->live_next = live.live_next;
	o->live_prev = &live;
	live.live_next->live_prev = o;
	live.live_next = o;
}

static void live_remove(struct fdobj *o)
{
	o->live_prev->live_next = o->live_next;
	o->live_next->live_prev = o->live_prev;
}

struct fdobj *fdobj_new(enum fdo_kind kind)
{
	struct fdobj *o;

	pthread_mutex_lock(&table_lock);
	o = free_list[kind];
	if (o)
		free_list[kind] = o->free_next;
	pthread_mutex_unlock(&table_lock);
	if (!o) {
		o = calloc(1, ops[kind]->size);
		if (!o)
			return NULL;
		o->kind = (uint8_t)kind; /* for good: free lists are per kind */
	} else {
		/* Past the header: a stale lookup may still add to refs, and
		 * reads kind (which stays what it was). */
		memset((char *)o + sizeof(*o), 0, ops[kind]->size - sizeof(*o));
	}
	o->names = 0;
	o->free_next = NULL;
	if (ops[kind]->init)
		ops[kind]->init(o);
	pthread_mutex_lock(&table_lock);
	live_insert(o);
	pthread_mutex_unlock(&table_lock);
	/* Last, and an add: a stale lookup may have added and be about to
	 * take its add back (fdtab_get_retry). */
	__atomic_fetch_add(&o->refs, 1, __ATOMIC_RELEASE);
	return o;
}

/* o left the live list (taken off by the caller when off_live). */
static void obj_release(struct fdobj *o, int quiet, int off_live)
{
	ops[o->kind]->destroy(o, quiet);
	pthread_mutex_lock(&table_lock);
	if (!off_live)
		live_remove(o);
	o->free_next = free_list[o->kind];
	free_list[o->kind] = o;
	pthread_mutex_unlock(&table_lock);
}

void fdobj_release(struct fdobj *o)
{
	obj_release(o, 0, 0);
}

int fdtab_hook(int fd, struct fdobj *o)
{
	struct fdobj **s;

	if ((unsigned)fd >= FDTAB_MAX)
		return -EMFILE;
	pthread_mutex_lock(&table_lock);
	s = page_for(fd);
	if (!s || *s) {
		pthread_mutex_unlock(&table_lock);
		return s ? -EBUSY : -ENOMEM;
	}
	o->names++;
	fdobj_ref(o);
	if (fd >= high)
		__atomic_store_n(&high, fd + 1, __ATOMIC_RELAXED);
	__atomic_store_n(s, o, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&table_lock);
	return 0;
}

struct fdobj *fdtab_unhook(int fd, int *last)
{
	struct fdobj **s, *o;

	*last = 0;
	if (!slot_of(fd))
		return NULL;
	pthread_mutex_lock(&table_lock);
	s = slot_of(fd);
	o = *s;
	if (o == &fdtab_internal_obj)
		o = NULL;
	if (o) {
		__atomic_store_n(s, NULL, __ATOMIC_RELEASE);
		*last = --o->names == 0;
	}
	pthread_mutex_unlock(&table_lock);
	return o;
}

void fdtab_fresh(int fd)
{
	struct fdobj *o = fdtab_peek(fd), *l;
	int last;

	if (!o)
		return;
	if (o == &fdtab_internal_obj) {
		/* One of ours closed behind our back (a raw close_range), its
		 * number now the program's: whoever used it must stop. */
		pthread_mutex_lock(&table_lock);
		__atomic_store_n(slot_of(fd), NULL, __ATOMIC_RELEASE);
		for (l = live.live_next; l != &live; l = l->live_next)
			if (ops[l->kind]->internal_lost)
				ops[l->kind]->internal_lost(l, fd);
		pthread_mutex_unlock(&table_lock);
		return;
	}
	o = fdtab_unhook(fd, &last);
	if (!o)
		return;
	if (ops[o->kind]->stale)
		ops[o->kind]->stale(o, fd);
	fdobj_put(o);
}

static int mark_internal(int fd);

int fdtab_internal_take(int fd)
{
	int hi = internal_base ? real.fcntl(fd, F_DUPFD_CLOEXEC, internal_base) : -1;

	if (hi >= 0) {
		real.close(fd);
		fd = hi;
	}
	return mark_internal(fd);
}

int fdtab_internal_dup(int fd)
{
	int d = real.fcntl(fd, F_DUPFD_CLOEXEC, internal_base);

	/* No room up there (a lowered limit): where take would leave it. */
	if (d < 0 && internal_base)
		d = real.fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return d < 0 ? -1 : mark_internal(d);
}

static int mark_internal(int fd)
{
	struct fdobj **s;

	pthread_mutex_lock(&table_lock);
	s = page_for(fd);
	if (s) {
		__atomic_store_n(s, &fdtab_internal_obj, __ATOMIC_RELEASE);
		if (fd >= high)
			__atomic_store_n(&high, fd + 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&table_lock);
	return fd;
}

void fdtab_internal_close(int fd)
{
	struct fdobj **s;

	if (fd < 0)
		return;
	pthread_mutex_lock(&table_lock);
	s = slot_of(fd);
	if (s && *s == &fdtab_internal_obj)
		__atomic_store_n(s, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&table_lock);
	real.close(fd);
}

int fdtab_high(void)
{
	return __atomic_load_n(&high, __ATOMIC_RELAXED);
}

void fdtab_each(enum fdo_kind kind, void (*fn)(struct fdobj *o, void *arg), void *arg)
{
	pthread_mutex_lock(&table_lock);
	for (struct fdobj *o = live.live_next; o != &live; o = o->live_next)
		if (o->kind == kind)
			fn(o, arg);
	pthread_mutex_unlock(&table_lock);
}

void fdtab_fork_prepare(void)
{
	pthread_mutex_lock(&table_lock);
}

void fdtab_fork_parent(void)
{
	pthread_mutex_unlock(&table_lock);
}

void fdtab_fork_child(void)
{
	struct fdobj *o, *next, *gone = NULL;

	/* Held by this thread across fork (fdtab_fork_prepare). */
	pthread_mutex_unlock(&table_lock);
	pthread_mutex_lock(&table_lock);
	for (o = live.live_next; o != &live; o = next) {
		next = o->live_next;
		/* The parent's other threads' calls are not in this process. */
		__atomic_store_n(&o->refs, o->names, __ATOMIC_RELAXED);
		if (ops[o->kind]->fork_child)
			ops[o->kind]->fork_child(o);
		if (!o->names) {
			/* Only a call of another thread kept it: gone here. */
			live_remove(o);
			o->free_next = gone;
			gone = o;
		}
	}
	pthread_mutex_unlock(&table_lock);
	for (o = gone; o; o = next) {
		next = o->free_next;
		obj_release(o, 1, 1);
	}
}
