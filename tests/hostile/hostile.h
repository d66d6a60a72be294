/* SPDX-License-Identifier: MIT */
/*
 * Tools for tests where the peer is hostile, shared by tests/hostile and
 * tests/fuzz (no Criterion in here, so the fuzz target can use it):
 *
 *  - memfds built by hand from link_abi.h, malformed on purpose;
 *  - a raw view of a link's memory, mapped the way a peer maps it (the fd
 *    itself, no transport code, no protection key);
 *  - attaches fenced by PROT_NONE pages, so a stray access just outside the
 *    mapping faults instead of silently reading a neighbour;
 *  - a model of the ring.h contract for one side of a link. Given the
 *    values the peer left in the header right before a call, it predicts
 *    the call's exact return value ("strict"); when those values are not
 *    known (a peer racing the call) it checks only what ring.h promises
 *    whatever the peer does ("loose"): ranges, -ECONNRESET sticky, end of
 *    stream sticky, -EPIPE after our own shutdown.
 */
#ifndef MPK_HOSTILE_H
#define MPK_HOSTILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "link_abi.h"
#include "mpklink/ring.h"

#define HS_PAGE 4096u
#define HS_SEALS_OK (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
/* The memfd name every hand-built link carries; leak checks grep for it. */
#define HS_MEMFD_NAME "mpk-hostile"

/* ------------------------------------------------------ memfds by hand */

/* The geometry mpk_link_create gives each ring of ring_bytes. */
static inline uint64_t hs_geom0(uint64_t ring_bytes)
{
	return MPK_GEOM(0, __builtin_ctzll(ring_bytes < MPK_LINK_RING_START ? ring_bytes
									  : MPK_LINK_RING_START));
}

/* A header exactly as mpk_link_create writes it for ring_bytes. */
void hs_hdr_init(struct mpk_link_hdr *h, uint64_t ring_bytes);

/*
 * A memfd named HS_MEMFD_NAME, file_size bytes long, the first hdr_len
 * bytes of hdr written at offset 0 with pwrite (no mapping, so even
 * F_SEAL_WRITE can be added), then the seals added. mfd_flags adds to
 * MFD_CLOEXEC (pass MFD_ALLOW_SEALING unless testing its absence).
 * Returns the fd or -errno.
 */
int hs_memfd(const void *hdr, size_t hdr_len, uint64_t file_size, unsigned seals,
	     unsigned mfd_flags);

/* A valid sealed link of ring_bytes, as mpk_link_create makes it. */
int hs_memfd_valid(uint64_t ring_bytes);

/* Lines of /proc/self/maps that map an HS_MEMFD_NAME memfd, or -1. */
int hs_count_maps(void);

/* ------------------------------------------------------------ raw view */

struct hs_raw {
	uint8_t *base;
	size_t len;
	uint64_t cap; /* from the file size, not from the (hostile) header */
	struct mpk_link_hdr *h;
};

/* Maps all of fd read-write, shared. 0 or -errno. */
int hs_raw_map(struct hs_raw *r, int fd);
void hs_raw_unmap(struct hs_raw *r);
static inline uint8_t *hs_raw_data(const struct hs_raw *r, int ring)
{
	return r->base + MPK_LINK_HDR_BYTES + (uint64_t)ring * r->cap;
}

/* The header fields a peer can write, for mutation loops. */
enum hs_role {
	HS_ROLE_HDR,   /* magic, version, sizes: read once, at attach */
	HS_ROLE_TAIL,
	HS_ROLE_PFLAGS,
	HS_ROLE_HEAD,
	HS_ROLE_CFLAGS,
	HS_ROLE_WAIT,  /* data_waiting, space_waiting */
	HS_ROLE_GEOM,  /* a ring's geometry (base, capacity) */
};
struct hs_field {
	const char *name;
	size_t off;
	int width; /* 4 or 8 bytes */
	int ring;  /* -1 for the link header */
	enum hs_role role;
};
extern const struct hs_field hs_fields[];
extern const size_t hs_nfields;

uint64_t hs_get(const struct hs_raw *r, const struct hs_field *f);
void hs_set(const struct hs_raw *r, const struct hs_field *f, uint64_t v);

/* ------------------------------------------------------ guarded attach */

struct hs_guard {
	void *lo, *hi; /* PROT_NONE pages around the mapping, or NULL */
};

/*
 * mpk_link_attach, arranged so that the kernel's top-down placement puts
 * the link mapping into a hole between two PROT_NONE pages. Placement is
 * the kernel's choice: g->lo is NULL when it went elsewhere (the attach
 * result is the same either way).
 */
int hs_attach_guarded(int fd, int side, struct mpk_link **out, struct hs_guard *g);
/* Detaches l (may be NULL) and unmaps the guard pages. */
void hs_detach_guarded(struct mpk_link *l, struct hs_guard *g);

/* ---------------------------------------------------- doorbell/control */

/* One SOCK_SEQPACKET message with up to 4 fds attached. Bytes or -errno. */
ssize_t hs_send(int sock, const void *msg, size_t len, const int *fds, int nfds);
/* Receives one message; *nfds set to the fds received. Bytes or -errno. */
ssize_t hs_recv(int sock, void *msg, size_t len, int *fds, int maxfds, int *nfds);

/* --------------------------------------------------------------- model */

/* What the victim's calls read from the peer's side of the header. */
struct hs_view {
	uint64_t rx_tail; /* ring[!side].tail */
	uint32_t rx_pf;   /* ring[!side].prod_flags */
	uint64_t tx_head; /* ring[side].head */
	uint32_t tx_cf;   /* ring[side].cons_flags */
	uint64_t rx_geom; /* ring[!side].geom */
};
void hs_view_load(struct hs_view *v, const struct hs_raw *r, int side);

struct hs_model {
	uint64_t cap;
	/* This side's own counters: exact in both modes, since they move
	 * only by what our calls returned. */
	uint64_t rx_head, tx_tail;
	/* Strict mode only. */
	uint64_t rx_seen, tx_head_seen, rx_eof_tail;
	int rx_eof;
	/* Both modes. */
	int broken;   /* some call returned -ECONNRESET */
	int tx_shut;  /* we shut down writing (or closed) */
	int eof_seen; /* a read of > 0 bytes returned 0 */
	int loose;    /* the peer's values at call time are unknown */
	char msg[512];
};

/* Strict, starting from the indices a fresh attach loads. */
void hs_model_init(struct hs_model *m, uint64_t cap, uint64_t rx_head, uint64_t tx_tail,
		   uint64_t tx_head);
/* Strict, from what is in the raw header for side right now. */
void hs_model_init_raw(struct hs_model *m, const struct hs_raw *r, int side);

/*
 * The checks. v is the peer's values right before the call (NULL: not
 * known, check loosely for this call; m->loose makes every call loose).
 * Each returns NULL when got is allowed, else a description in m->msg,
 * and updates the model with what the call did.
 */
const char *hs_check_read(struct hs_model *m, const struct hs_view *v, size_t len,
			  int peek, ssize_t got);
const char *hs_check_write(struct hs_model *m, const struct hs_view *v, size_t len,
			   ssize_t got);
const char *hs_check_shutdown(struct hs_model *m, int got);
const char *hs_check_close(struct hs_model *m, int got);
const char *hs_check_readable(struct hs_model *m, const struct hs_view *v, ssize_t got);
const char *hs_check_writable(struct hs_model *m, const struct hs_view *v, ssize_t got);
/* For mpk_link_poll and for mpk_link_arm (same readiness). */
const char *hs_check_poll(struct hs_model *m, const struct hs_view *v, unsigned got);
/* A call with bad arguments (flags, iovcnt): -EINVAL, broken or not. */
const char *hs_check_einval(struct hs_model *m, ssize_t got);

/* Sum of iov lengths (the tests never overflow it). */
size_t hs_iov_len(const struct iovec *iov, int iovcnt);
/*
 * Compares the n bytes an iovec holds with ring data at index pos (data
 * is cap bytes, wrapping). Returns the first differing offset, or -1.
 */
ssize_t hs_ring_cmp(const uint8_t *data, uint64_t cap, uint64_t pos,
		    const struct iovec *iov, int iovcnt, size_t n);

#endif
