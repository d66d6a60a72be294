/* SPDX-License-Identifier: MIT */
/*
 * mpklink transport: shared-memory links between two processes.
 *
 * A link is one sealed memfd: a header page, then two single-producer
 * single-consumer byte rings, one per direction. Side 0 (the creator's
 * peer that accepted, by convention the server) transmits on ring 0 and
 * receives on ring 1; side 1 the other way round.
 *
 * Return values: every function returning int or ssize_t returns a
 * non-negative value on success and -errno on failure; errno is never
 * read nor set. Functions returning void cannot fail.
 *
 * Threads: a link may be used by one reading thread and one writing thread
 * at the same time (like a socket used from two threads); two concurrent
 * readers or two concurrent writers must be serialised by the caller.
 * mpk_link_poll, mpk_link_readable and mpk_link_writable may be called from
 * any thread at any time. mpk_link_detach must not race any other call.
 *
 * The peer is untrusted. Every index, flag and size it can write is read
 * once into a local and validated; a violation marks the link broken, after
 * which every call returns -ECONNRESET. No value read from the shared
 * mapping is used to index memory before it is checked.
 *
 * Doorbells wake a peer that said it sleeps. In mpklink they are two
 * eventfds per link (mpk_link_set_bells: each side waits on one and rings
 * the other), and the original TCP connection only reports the peer's
 * hang-up (mpk_link_set_doorbell); without eventfds, a byte over that
 * stream is the doorbell (the tests' socketpairs). Writers and readers
 * ring it themselves when they publish data or free space; a thread about
 * to block calls mpk_link_arm first, with everything it will wait for,
 * and blocks only if that returned 0 (see mpk_link_arm for why arming is
 * not done inside read).
 */
#ifndef MPKLINK_RING_H
#define MPKLINK_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- guard */

enum mpk_guard_mode {
	MPK_GUARD_AUTO = 0, /* use MPK when the CPU and kernel have it */
	MPK_GUARD_MPK = 1,  /* MPK or refuse (-ENOTSUP) */
	MPK_GUARD_OFF = 2,  /* never */
};

struct mpk_guard_status {
	enum mpk_guard_mode mode; /* what was asked for */
	int active;               /* 1: ring mappings carry pkey, PKRU denies it */
	int pkey;                 /* the transport's key, -1 when inactive */
	int cpu_pku;              /* CPUID.(7,0):ECX.PKU */
	int os_pke;               /* CPUID.(7,0):ECX.OSPKE: the kernel set CR4.PKE */
	const char *reason;       /* one line on why the guard is in this state */
};

/*
 * Parses "auto", "mpk" or "off" (NULL or "" mean auto).
 * Returns the mode, or -EINVAL for anything else.
 */
int mpk_guard_parse(const char *s);

/*
 * Decides the process-wide guard once. Later calls return the first
 * call's result and ignore their argument. In auto mode without PKU one
 * line says so on stderr, once per process.
 * Returns 0, -ENOTSUP for MPK_GUARD_MPK without usable PKU, -EINVAL for a
 * bad mode, or -errno from pkey_alloc.
 * Thread-safe.
 */
int mpk_guard_init(enum mpk_guard_mode mode);

/*
 * mpk_guard_init with the mode named by $MPKLINK_GUARD.
 * Returns as mpk_guard_init; -EINVAL for an unknown value.
 */
int mpk_guard_init_env(void);

/* Fills *st. Initialises from the environment first if nothing has. */
void mpk_guard_status(struct mpk_guard_status *st);

/* ----------------------------------------------------------------- links */

/* 4 MiB, about what loopback TCP's autotuned socket buffers hold: with
 * smaller rings gRPC's 1 MiB messages meet a full ring (EAGAIN) where TCP
 * takes them, which costs time per call and can hold a gRPC server's
 * shutdown on its backup poller (docs/PERFORMANCE.md, issue 19). */
#define MPK_LINK_RING_DEFAULT (1u << 22)
#define MPK_LINK_RING_MIN     4096u
#define MPK_LINK_RING_MAX     (1u << 30)
/* A ring's first capacity, or its size if smaller. A writer that reaches
 * its end with bytes unread (a reader behind) grows it to the full size
 * there: only links whose readers fall behind use the memory of 4 MiB
 * rings, a link whose reader keeps up holds 2 x 256 KiB, and no writer
 * meets EAGAIN before the full size is unread (docs/ARCHITECTURE.md). */
#define MPK_LINK_RING_START   (1u << 18)

struct mpk_link;

/*
 * Creates link memory: a memfd sized for two rings of ring_bytes each
 * (0 = MPK_LINK_RING_DEFAULT; otherwise a power of two within
 * [MPK_LINK_RING_MIN, MPK_LINK_RING_MAX]), each starting at a capacity of
 * MPK_LINK_RING_START or ring_bytes if less, its header initialised, sealed
 * with F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL. The fd is close-on-exec.
 * Returns the fd, -EINVAL for a bad size, or -errno.
 */
int mpk_link_create(size_t ring_bytes);

/*
 * Maps link memory received from anyone, as side 0 or 1. The fd is not
 * consumed; the caller may close it once this returns. Checks that fd is
 * a memfd of the size its header claims, with the three seals, the right
 * magic and version; anything else is an error, never a crash.
 * Tags the mapping with the transport's pkey when the guard is active
 * (initialising the guard from the environment if nothing has).
 * Returns 0 and sets *out, or: -EBADF (not an open fd), -EINVAL (bad side,
 * not a memfd, wrong size, seals missing), -EPROTO (bad magic, version or
 * layout), -ENOTSUP (guard required but unavailable), -ENOMEM, -errno.
 */
int mpk_link_attach(int fd, int side, struct mpk_link **out);

/*
 * Unmaps the link and frees the handle. Does not tell the peer anything:
 * call mpk_link_close first for an orderly close.
 */
void mpk_link_detach(struct mpk_link *l);

/*
 * Takes the link over from another process that used this side before
 * (after fork: the daemonize pattern, a forked per-connection handler):
 * reloads this side's indices from what was last published. Two processes
 * using one side at the same time is not supported; one after the other
 * is, with a resync by the one that starts.
 * Returns 0 or -ECONNRESET (the published indices are inconsistent).
 */
int mpk_link_resync(struct mpk_link *l);

/*
 * The same, for one direction, when another process moved it since this
 * one did: the reading thread calls mpk_link_sync_rx before a read, the
 * writing thread mpk_link_sync_tx before a write. A process and its fork
 * may then take turns on one connection, as they may on a TCP socket (at
 * the same time, their bytes would interleave on TCP too). Costs one load
 * of a line this side owns. An inconsistent index, or a MAC link moved
 * by another process, breaks the link.
 */
void mpk_link_sync_rx(struct mpk_link *l);
void mpk_link_sync_tx(struct mpk_link *l);

/*
 * Integrity (MPKLINK_INTEGRITY=mac): a link created with MPK_LINK_MAC
 * carries frames, each with a 16-byte Poly1305 tag over its bytes, keyed
 * per frame from ChaCha20 under a key both sides got from the launchers'
 * handshake, with the writer's side and the frame's number as the nonce. The reader moves a whole frame into private
 * memory and checks it there before a single byte of it is delivered; a
 * bad tag, a bad frame or a stream that ends inside one breaks the link
 * (-ECONNRESET). Until mpk_link_set_mac, reads and writes of such a link
 * return -EPROTO. Frames cost 24 bytes each and hold at most 16 KiB.
 */
#define MPK_LINK_MAC 0x1u
#define MPK_LINK_MAC_KEY_BYTES 32

/* mpk_link_create with flags (0 or MPK_LINK_MAC). Returns as it. */
int mpk_link_create_flags(size_t ring_bytes, unsigned flags);

/* Whether the link was created with MPK_LINK_MAC (fixed by its creator). */
int mpk_link_mac_required(const struct mpk_link *l);

/* Sets the key of a MAC link, once, before any read or write.
 * Returns 0, -EINVAL (not a MAC link, or already set), -ENOMEM. */
int mpk_link_set_mac(struct mpk_link *l, const uint8_t key[MPK_LINK_MAC_KEY_BYTES]);

/*
 * The claim: side 1 names, before its connect, the TCP socket that will
 * carry the link's preamble (its SO_COOKIE, nonzero), so that side 0 can
 * tell at accept that a preamble will come and which link it is for.
 * mpk_link_claim returns 0, or -EINVAL (side 0, or cookie 0).
 * mpk_link_claimed returns the cookie, or 0 while unclaimed; the peer
 * writes it, so it is a hint to compare, never trusted: the preamble's
 * token decides.
 */
int mpk_link_claim(struct mpk_link *l, uint64_t cookie);
uint64_t mpk_link_claimed(const struct mpk_link *l);

/*
 * Claims across network namespaces (docs/ARCHITECTURE.md, "Endpoints in
 * other network namespaces"). A server cannot look up a client socket of
 * another namespace, and the client's port is known only once its connect
 * started, when the server may already accept. So side 1 claims
 * MPK_CLAIM_PENDING before its connect and, after it, swaps that for
 * mpk_claim_of_addr(its address, its port); side 0, accepting a
 * connection from an address it cannot look up, looks for that claim and
 * waits (bounded) while a PENDING one may become it. When it stops
 * waiting, it swaps each PENDING it saw for MPK_CLAIM_REFUSED: whichever
 * swap comes first decides, so a client whose swap failed knows, before
 * it sent a byte, that nobody will accept its link (its connection stays
 * plain), and a server never accepts a link after it refused it.
 * Cookies never have bit 63 set (the kernel counts them from 1).
 *
 * mpk_claim_of_addr: addr is 16 bytes (IPv4 as ::ffff:a.b.c.d), port
 * 1..65535; the address enters as a 32-bit hash (a hint: the token
 * decides).
 * mpk_link_claim_swap: either side; 0 when the claim was expect (it is
 * value now), -EALREADY when it was not, -EINVAL for a value of 0 from
 * side 0.
 */
#define MPK_CLAIM_ADDR    (UINT64_C(1) << 63)
#define MPK_CLAIM_PENDING MPK_CLAIM_ADDR
#define MPK_CLAIM_REFUSED (UINT64_C(3) << 62)
uint64_t mpk_claim_of_addr(const uint8_t addr[16], unsigned port);
int mpk_link_claim_swap(struct mpk_link *l, uint64_t expect, uint64_t value);

/* Side 0: takes the claimed link for this process (of several holding it,
 * one takes it): 0, or -EALREADY when another did. mpk_link_taken says
 * whether one did. */
int mpk_link_take(struct mpk_link *l);
int mpk_link_taken(const struct mpk_link *l);

/*
 * Links made over (docs/ARCHITECTURE.md, "Links made over"). A link costs
 * its creator a memfd, both programs a mapping, page faults and an unmap,
 * and its last close the freeing of its pages: ~40 us of CPU, as much as
 * a loopback connection. Its creator may instead make it over for another
 * connection once both sides are done with it:
 *
 * mpk_link_release: this side's program is done with the link; none of
 *   its processes will touch it again. Call it before mpk_link_detach,
 *   and only where no other process can hold the link (never forked,
 *   passed or inherited). The detach then keeps the mapping (up to 64 a
 *   process), for an attach of the same memfd to take back.
 * mpk_link_recycle (the creator, with the link's memfd, the ring_bytes and
 *   flags it was made with; it never maps it): 0 when the link is as
 *   mpk_link_create made it, one generation on, ready to hand out again;
 *   -EAGAIN while a side may still use it; -ESTALE when it cannot be made
 *   over (it grew or wrapped, or its header is not one the creator made):
 *   close it. The creator must hand the link again only to the programs
 *   (identities) it went to before: a released side could still write.
 * mpk_link_stale: the link was made over since this handle was attached:
 *   a record of it from before (an offer not taken) is to be dropped.
 */
void mpk_link_release(struct mpk_link *l);
int mpk_link_recycle(int fd, size_t ring_bytes, unsigned flags);
int mpk_link_stale(const struct mpk_link *l);
/* How often the link was made over before this attach (0: a new one). */
uint32_t mpk_link_gen(const struct mpk_link *l);

/* The bytes of link memory this process has mapped now (attached, or
 * kept after detach), so a look at its address space can tell ours from
 * its own. */
uint64_t mpk_link_mapped_bytes(void);

/* The capacity of each ring, in bytes. */
size_t mpk_link_ring_bytes(const struct mpk_link *l);

/*
 * The doorbell: fd is a stream socket shared with the peer. send and recv
 * default to libc's; the preload passes the real, un-interposed calls.
 * Until a doorbell is set, nothing is rung (useful only for spinning).
 * Not thread-safe against other calls on the same link: set it first.
 */
typedef ssize_t (*mpk_send_fn)(int fd, const void *buf, size_t n, int flags);
typedef ssize_t (*mpk_recv_fn)(int fd, void *buf, size_t n, int flags);
void mpk_link_set_doorbell(struct mpk_link *l, int fd, mpk_send_fn send_fn,
			   mpk_recv_fn recv_fn);

/*
 * Eventfd bells, cheaper than a byte over a socket (an eventfd write is a
 * counter add and a wake-up, no protocol stack): the peer rings ring_fd
 * when this side sleeps, this side rings wait_fd's twin. Set, the socket
 * of mpk_link_set_doorbell only reports the peer's hang-up (its close or
 * death), and bells never touch it. Set both before any other call.
 *
 * A link's bells are one pair for both sides, bells[side] is where side
 * waits:  mpk_link_set_bells(l, bells[side], bells[!side]).
 */
void mpk_link_set_bells(struct mpk_link *l, int wait_fd, int ring_fd);

/* Two nonblocking, close-on-exec eventfds for a link.
 * Returns 0, or -errno (both entries then undefined; nothing is left open). */
int mpk_link_bells_create(int bells[2]);

/*
 * Whether fd, received from a peer, can serve as a bell: an eventfd (a
 * blocking pipe or socket there would let the peer stall our writes). Makes
 * it nonblocking. Returns 0, -EPROTO (not an eventfd), or -errno.
 */
int mpk_link_bell_check(int fd);

/* The fds one link travels as, between launchers and to the preload. */
#define MPK_LINK_NFDS 3 /* memfd, bells[0], bells[1] */

/*
 * Copies into the TX ring, as a nonblocking socket would: as many bytes as
 * fit, counting space the peer frees during the call, at most the ring's
 * capacity. Publishes them (release) 64 KiB at a time, so the peer may copy
 * out while this call copies in, and rings the peer if it said it sleeps.
 * Returns the bytes copied (> 0), 0 when asked to copy 0 bytes, or
 * -EAGAIN (ring full), -EPIPE (this side shut down writing, or the peer
 * closed), -ECONNRESET (link broken), -EINVAL (iovcnt < 0 or the total
 * length overflows ssize_t).
 * The peer's side is looked at only when the space seen free last time
 * is too small: its close (-EPIPE) or a lie in its indices (-ECONNRESET)
 * shows once that space is used up, at most the ring's capacity later
 * (TCP, too, takes writes after the peer closed). A hang-up seen on the
 * doorbell is -EPIPE at once.
 */
ssize_t mpk_link_write(struct mpk_link *l, const void *buf, size_t len);
ssize_t mpk_link_writev(struct mpk_link *l, const struct iovec *iov, int iovcnt);

#define MPK_READ_PEEK 1u /* copy out but leave the bytes in the ring */

/*
 * Copies out of the RX ring: as many bytes as are there, up to len and the
 * ring's capacity, counting bytes the peer adds during the call. Frees the
 * space (release) 64 KiB at a time and rings the peer if it said it waits
 * for space.
 * Returns the bytes copied (> 0); 0 at end of stream, only once every byte
 * the peer wrote before its shutdown or close has been read, and also when
 * asked for 0 bytes; -EAGAIN (ring empty, stream open), -ECONNRESET (link
 * broken), -EINVAL (bad flags or iovcnt).
 */
ssize_t mpk_link_read(struct mpk_link *l, void *buf, size_t len);
ssize_t mpk_link_readv(struct mpk_link *l, const struct iovec *iov, int iovcnt,
		       unsigned flags);

/*
 * Half-close: after every byte written so far, the peer reads end of
 * stream. Later writes return -EPIPE; reading keeps working. Rings the
 * peer if it sleeps. Returns 0, or -ECONNRESET.
 */
int mpk_link_shutdown_write(struct mpk_link *l);

/*
 * Full close: shuts writing down as above and tells the peer this side
 * reads no more (its writes then return -EPIPE). Rings the peer if it
 * sleeps on either ring. The handle stays valid for mpk_link_detach.
 * Returns 0, or -ECONNRESET (the flags are still set where possible).
 */
int mpk_link_close(struct mpk_link *l);

/* Readiness, as poll(2) would report it for a socket. */
#define MPK_LINK_IN    0x1u  /* read would not return -EAGAIN */
#define MPK_LINK_OUT   0x2u  /* write would not return -EAGAIN */
#define MPK_LINK_RDHUP 0x4u  /* the peer shut down writing (or closed) */
#define MPK_LINK_HUP   0x8u  /* the peer closed the link or is gone */
#define MPK_LINK_ERR   0x10u /* the link is broken */

/* Current readiness, with no side effect on the peer. */
unsigned mpk_link_poll(struct mpk_link *l);

/*
 * As mpk_link_poll, and also the peer's indices as last published: *rx_gen
 * (its TX tail: changes whenever data arrives) and *tx_gen (its RX head:
 * changes whenever space is freed). Edge-triggered readiness is "ready and
 * the generation moved since I last reported". Either pointer may be NULL.
 */
unsigned mpk_link_poll_gen(struct mpk_link *l, uint64_t *rx_gen, uint64_t *tx_gen);

/*
 * The reading side of mpk_link_poll_gen: IN, RDHUP, HUP and ERR exactly as
 * it reports them, never OUT. For a reader waiting for data: it does not
 * look at the TX ring, whose consumer line the peer writes on every read,
 * so the peer's next read does not have to take that line back from us
 * first (a cache-line transfer per message, in a round trip of a few).
 * rx_gen may be NULL.
 */
unsigned mpk_link_poll_rx(struct mpk_link *l, uint64_t *rx_gen);

/* Bytes readable now (>= 0) or -ECONNRESET. */
ssize_t mpk_link_readable(struct mpk_link *l);
/* Bytes writable now (>= 0), -EPIPE, or -ECONNRESET. */
ssize_t mpk_link_writable(struct mpk_link *l);

/*
 * Call before blocking on the doorbell fd, with want = the readiness the
 * caller will wait for (MPK_LINK_IN, MPK_LINK_OUT or both). In order:
 * drains pending doorbell bytes (nonblocking; a hang-up on the doorbell
 * marks the peer gone), announces "I sleep" on the RX ring (IN) and the TX
 * ring (OUT), issues a full fence, and re-checks both rings.
 * Returns the readiness now (as mpk_link_poll); if it intersects want (or
 * carries HUP or ERR) the caller must not block. If it returns none of
 * those, every event the caller asked for will make a doorbell byte
 * readable on the fd.
 *
 * Why it is not done inside read/write: one doorbell fd carries bytes for
 * both directions. A drain done on a write's -EAGAIN can eat the byte that
 * announced data for the reader, and nobody would ring again. Drain only
 * right before sleeping, for everything one will sleep on.
 * Two threads must not block on the same link's doorbell at once: a drain
 * by one cannot wake the other. (The preload serialises this.)
 *
 * The flags stay set whatever this returns: readiness is not the decision
 * to sleep. An edge-triggered waiter sleeps on a ring that still holds data
 * it already announced, and the next arrival must ring.
 */
unsigned mpk_link_arm(struct mpk_link *l, unsigned want);

/*
 * With want | MPK_ARM_NODRAIN, arm skips the drain. Draining first only
 * spares a spurious wake-up on a byte rung before; it is never needed to
 * avoid a lost one (the re-check after the fence is). A caller that drains
 * itself whenever the kernel says the doorbell is readable (mpk_link_drain)
 * saves a system call per sleep.
 */
#define MPK_ARM_NODRAIN 0x100u

/*
 * Consumes pending rings without blocking (the eventfd's count, or the
 * socket's bytes when there are no eventfd bells; then a hang-up on the
 * socket marks the peer gone as in mpk_link_hangup_check).
 */
void mpk_link_drain(struct mpk_link *l);

/*
 * Reads whatever is pending on the doorbell socket. Call it when the
 * kernel reports the socket readable or hung up. Returns:
 *   0           nothing new (or doorbell bytes, without eventfd bells);
 *   -EPIPE      end of stream or an error: the peer is gone (reads end
 *               after the ring's data, writes get -EPIPE);
 *   -ECONNRESET the peer reset the connection: it is gone as for -EPIPE,
 *               and the caller reports the reset;
 *   -EPROTO     with eventfd bells, bytes arrived on the stream, where
 *               nothing may: someone wrote past the link. It is broken
 *               (every call -ECONNRESET); the caller says so and resets
 *               the connection.
 */
int mpk_link_hangup_check(struct mpk_link *l);

/* Bytes this side wrote that the peer has not read (yet: or ever, once it
 * is gone). The writing thread's, or any thread while none writes. */
uint64_t mpk_link_tx_unread(struct mpk_link *l);

/* Breaks the link on this side, as a peer's violation would: every later
 * call returns -ECONNRESET. For a caller whose own checks found it
 * unusable. Any thread. */
void mpk_link_break(struct mpk_link *l);

/*
 * Withdraws what mpk_link_arm announced, for a caller that decided not to
 * sleep after all: the peer's next publish then rings for nothing less.
 * Optional; never needed for correctness.
 */
void mpk_link_disarm(struct mpk_link *l, unsigned want);

/* Counters kept by this side, for MPKLINK_STATS. Never shared. */
struct mpk_link_stats {
	uint64_t tx_bytes, rx_bytes;   /* payload copied in, copied out */
	uint64_t tx_calls, rx_calls;   /* successful writes, reads */
	uint64_t bells_sent;           /* doorbell bytes sent */
	uint64_t bells_drained;        /* doorbell bytes consumed by arm */
};
void mpk_link_get_stats(const struct mpk_link *l, struct mpk_link_stats *st);

#ifdef __cplusplus
}
#endif
#endif
