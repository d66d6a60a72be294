/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory layout of a link: an ABI between two processes that
 * may run different builds. Change it only with MPK_LINK_VERSION.
 *
 *   offset 0            header page (struct mpk_link_hdr)
 *   offset 4096         ring 0 data, ring_bytes  (side 0 -> side 1)
 *   4096 + ring_bytes   ring 1 data, ring_bytes  (side 1 -> side 0)
 *
 * Indices are free-running u64 byte counts; position = (index - base) &
 * (cap - 1), base and cap being the ring's geometry now (struct
 * mpk_ring_ctl.geom): cap a power of two from MPK_LINK_RING_MIN to
 * ring_bytes. A ring starts small and grows, so that a link's memory is
 * only as large as its traffic made it (pages of the memfd no index has
 * reached are never allocated).
 * Each field is written by exactly one side, named in its comment;
 * "waiting" flags are set by one side and cleared by the other.
 */
#ifndef MPK_LINK_ABI_H
#define MPK_LINK_ABI_H

#include <stddef.h>
#include <stdint.h>

#define MPK_LINK_MAGIC   UINT64_C(0x4b4e494c4b504d00) /* "\0MPKLINK" */
#define MPK_LINK_VERSION 6u /* 2: mpk_ring_ctl.cap, rings that grow; 3: claim;
				* 4: released, gen (links made over);
				* 5: an empty ring's base moves;
				* 6: claims by address, refused by side 0 */
#define MPK_LINK_HDR_BYTES 4096u
#define MPK_CACHELINE 64

/* prod_flags */
#define MPK_PROD_SHUT   0x1u /* no byte after tail will ever come */
#define MPK_PROD_CLOSED 0x2u /* the producer's side closed the link */
#define MPK_PROD_VALID  (MPK_PROD_SHUT | MPK_PROD_CLOSED)
/* hdr flags (set by the creator; unknown bits are refused) */
#define MPK_HDR_MAC     0x1u /* frames carry MACs (MPKLINK_INTEGRITY=mac) */
#define MPK_HDR_VALID   MPK_HDR_MAC

/* With MPK_HDR_MAC the byte stream in each ring is frames:
 *   u32 len (1..MPK_FRAME_MAX), u32 zero, len payload bytes, 16-byte tag
 * tag = Poly1305 over the 8 header bytes and the payload, its one-time key
 *   the first 32 bytes of ChaCha20-IETF under the session key with the
 *   nonce {u8 writer's side, 3 zero bytes, u64 frame number in that
 *   direction (little endian)}, as ChaCha20-Poly1305 makes it (RFC 8439).
 * A frame is published whole (one tail store). */
#define MPK_FRAME_HDR   8u
#define MPK_FRAME_TAG   16u
#define MPK_FRAME_MAX   16384u

/* geom: a base (a multiple of 4096, as every capacity is) and the log2 of
 * the capacity in the low bits; the bits between are zero. */
#define MPK_GEOM(base, shift) ((uint64_t)(base) | (uint64_t)(shift))
#define MPK_GEOM_LOW          UINT64_C(0xfff)
#define MPK_GEOM_SHIFT_MASK   UINT64_C(0x3f)
#define MPK_GEOM_BASE(g)      ((g) & ~MPK_GEOM_LOW)
#define MPK_GEOM_SHIFT(g)     ((unsigned)((g) & MPK_GEOM_SHIFT_MASK))

/* cons_flags */
#define MPK_CONS_CLOSED 0x1u /* the consumer reads no more */
#define MPK_CONS_VALID  MPK_CONS_CLOSED

struct mpk_ring_ctl {
	/* written by the producer */
	_Alignas(MPK_CACHELINE) uint64_t tail;
	uint32_t prod_flags;
	/* written by the producer (the creator sets the first): the ring's
	 * geometry, MPK_GEOM(base, log2 cap). It changes in two ways only.
	 * To a larger capacity, with a base that puts every byte not yet
	 * read where it already is: a multiple of the old capacity past the
	 * old base, at or before head, with all unread bytes less than the
	 * old capacity past it (the producer never lets them straddle the
	 * ring's end). Or, in a ring not yet grown with every byte read
	 * (head == tail), to another base at the same capacity. So the consumer may take a new geometry
	 * whenever it sees it; it loads it after tail, and bytes placed by
	 * it are published by a later tail store. */
	uint64_t geom;
	/* written by the consumer */
	_Alignas(MPK_CACHELINE) uint64_t head;
	uint32_t cons_flags;
	/* set by the consumer before it sleeps on an empty ring, cleared by
	 * the producer, which then rings */
	_Alignas(MPK_CACHELINE) uint32_t data_waiting;
	/* set by the producer before it sleeps on a full ring, cleared by
	 * the consumer, which then rings */
	_Alignas(MPK_CACHELINE) uint32_t space_waiting;
};

struct mpk_link_hdr {
	/* written once by the creator, before the fd is handed out */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_bytes;
	uint64_t ring_bytes;
	uint64_t total_bytes;
	uint32_t flags; /* MPK_HDR_*; zero in links made before it existed */
	_Alignas(MPK_CACHELINE) struct mpk_ring_ctl ring[2];
	/* written by side 1 (the client), once, before its connect: the
	 * SO_COOKIE of the TCP socket that will carry the link's preamble.
	 * Links are handed out ahead of need, in batches; the server's
	 * accept finds the link of a connection by its peer socket's cookie
	 * (docs/ARCHITECTURE.md, "Connection setup"). 0: not claimed.
	 * A server in another network namespace cannot see that socket: for
	 * it side 1 writes MPK_CLAIM_PENDING before its connect and swaps it
	 * for its address and port after (mpk_claim_of_addr); side 0 may
	 * swap a PENDING for MPK_CLAIM_REFUSED instead, and then side 1
	 * sends nothing on the link (ring.h). Side 0 only compares claims:
	 * the token in the preamble is what it trusts. */
	_Alignas(MPK_CACHELINE) uint64_t claim;
	/* set (0 -> 1) by the side-0 process that accepted the claiming
	 * connection: the link is its; other processes that hold the link
	 * (forked workers accepting on one socket) drop it. */
	uint32_t taken;
	/* set (0 -> 1) by a side's program, by the index of its side, when
	 * none of its processes will touch the link again (mpk_link_release:
	 * its connection closed with no other process holding the socket,
	 * or a client's link went unused). Read by the creator only, which
	 * then may make the link over for another connection
	 * (mpk_link_recycle). Not trusted to be true: a side that releases
	 * and goes on writing harms the connections of its own program and
	 * identity, to which alone the creator hands the link again. */
	uint32_t released[2];
	/* written by the creator only, while neither side uses the link:
	 * how often it was made over. A process's record of the link from
	 * before (an offer a forked worker did not take) is stale once it
	 * changed (mpk_link_stale). */
	uint32_t gen;
};

_Static_assert(offsetof(struct mpk_link_hdr, magic) == 0, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, version) == 8, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, hdr_bytes) == 12, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, ring_bytes) == 16, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, total_bytes) == 24, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, flags) == 32, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, ring) == 64, "abi");
_Static_assert(offsetof(struct mpk_ring_ctl, tail) == 0, "abi");
_Static_assert(offsetof(struct mpk_ring_ctl, prod_flags) == 8, "abi");
_Static_assert(offsetof(struct mpk_ring_ctl, geom) == 16, "abi");
_Static_assert(offsetof(struct mpk_ring_ctl, head) == 64, "abi");
_Static_assert(offsetof(struct mpk_ring_ctl, cons_flags) == 72, "abi");
_Static_assert(offsetof(struct mpk_ring_ctl, data_waiting) == 128, "abi");
_Static_assert(offsetof(struct mpk_ring_ctl, space_waiting) == 192, "abi");
_Static_assert(sizeof(struct mpk_ring_ctl) == 256, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, claim) == 64 + 2 * 256, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, taken) == 64 + 2 * 256 + 8, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, released) == 64 + 2 * 256 + 12, "abi");
_Static_assert(offsetof(struct mpk_link_hdr, gen) == 64 + 2 * 256 + 20, "abi");
_Static_assert(sizeof(struct mpk_link_hdr) == 64 + 2 * 256 + 64, "abi");
_Static_assert(sizeof(struct mpk_link_hdr) <= MPK_LINK_HDR_BYTES, "abi");

#endif
