/* SPDX-License-Identifier: MIT */
/*
 * mpklink control protocol: the preload's requests to its launcher, and the
 * wire format both ends of every control socket speak.
 *
 *   preload --(SOCK_SEQPACKET, $MPKLINK_CTL)--> its launcher
 *
 * Every message is one datagram; a link's fds (its memfd and two eventfd
 * doorbells, ring.h's MPK_LINK_NFDS) travel beside its reply as
 * SCM_RIGHTS. The launcher's side (its server, the rendezvous between
 * launchers) is launcher/ctl_server.h, linked into mpklink-run alone.
 *
 * Return values: 0 or a count, else -errno, as in ring.h. Thread-safety:
 * the functions keep no state; one socket must carry one call at a time.
 */
#ifndef MPKLINK_CTL_H
#define MPKLINK_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mpklink/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MPK_CTL_MAGIC   0x434b504du /* "MPKC" */
#define MPK_CTL_VERSION 7u /* 2: links travel with eventfd bells; 3: MAC keys; 4: sides;
			     * 5: CLOSE has no reply; 6: links in batches, claimed;
			     * 7: notices in a ring, answered when sent */
#define MPK_TOKEN_BYTES 16
/* What the client puts first on the TCP stream: "\0MPKLNK" "\1" + token.
 * The 0x00 first byte starts no HTTP/2, HTTP/1 or RESP stream. */
#define MPK_PREAMBLE_MAGIC "\0MPKLNK\1"
#define MPK_PREAMBLE_BYTES (8 + MPK_TOKEN_BYTES)
/* Links in one LINKS or OFFERS reply (3 fds each: within SCM_MAX_FD). */
#define MPK_CTL_BATCH_MAX 32

/*
 * Links are made ahead of need (docs/ARCHITECTURE.md, "Connection
 * setup"): a client's preload asks its launcher for a batch of links to a
 * port (LINKS), takes one per connect, claims it in the link's memory with
 * its socket's cookie (mpk_link_claim) before the connect, and tells its
 * launcher which connection it carries (CLAIMED). The server's preload
 * finds, at accept, the link whose claim is the peer socket's cookie among
 * those its launcher made for the port (OFFERS), and says CLAIMED too.
 */
/* CLOSE's count: the program's was the socket's only holder. */
#define MPK_CTL_CLOSE_ALONE 1

enum mpk_ctl_type {
	MPK_CTL_LISTEN = 1,   /* port: the program listens there */
	MPK_CTL_UNLISTEN = 2, /* port: it stopped */
	MPK_CTL_LINKS = 3,    /* port, count: a batch of links for connects to
			       * port (struct mpk_ctl_batch) */
	MPK_CTL_OFFERS = 4,   /* port, since: the links made for clients of
			       * port after the one numbered since
			       * (mpk_ctl_batch; its last says up to which).
			       * Every process accepting on the port gets
			       * each: the kernel picks who accepts */
	MPK_CTL_LOOKUP = 5,   /* port (server's), peer_port (client's), side: a
			       * live link of ours, for a program image after
			       * exec */
	MPK_CTL_CLOSE = 6,    /* port, peer_port, side, count: the program
			       * closed it; count MPK_CTL_CLOSE_ALONE: no
			       * other process can hold the socket (never
			       * forked, passed or inherited since it was
			       * made), and the link goes at once; 0: it
			       * goes once no process holds the socket (the
			       * launcher's sweep looks). A notice: written
			       * to the notice ring, and sent as a request
			       * (answered, status 0) only when the ring is
			       * full. A close does not wait for its
			       * launcher otherwise; the sweep catches a
			       * CLOSE that never came */
	MPK_CTL_CLAIMED = 7,  /* port, peer_port, side, token: the link of a
			       * batch with that token carries this
			       * connection now. A notice, as CLOSE */
	MPK_CTL_NOTES = 8,    /* port 0: the reply (status 0) brings the
			       * program's notice ring (below); the
			       * connection then carries nothing, and its
			       * end tells the launcher the program went.
			       * The launcher does not wait on the ring: it
			       * reads it before each request it answers,
			       * before each decision of its own, and on a
			       * timer (10 ms to 1 s apart, set so that a
			       * read finds at least 16 while they come). So
			       * a connect or close wakes no launcher, and
			       * costs no system call */
};

struct mpk_ctl_req {
	uint32_t magic;
	uint32_t version;
	uint32_t type;
	uint32_t port;
	uint32_t peer_port;
	uint32_t pid;
	/* LOOKUP, CLOSE, CLAIMED: which end (0 the server's, 1 the
	 * client's). A program may hold both ends of one connection. */
	uint32_t side;
	uint32_t count; /* LINKS: how many, 1..MPK_CTL_BATCH_MAX; CLOSE: 0
			 * or MPK_CTL_CLOSE_ALONE */
	uint32_t since; /* OFFERS: the last link's number the program has */
	uint8_t token[MPK_TOKEN_BYTES]; /* CLAIMED */
};

struct mpk_ctl_rep {
	uint32_t magic;
	int32_t status; /* 0: the link's fds are attached (LOOKUP); -errno */
	uint8_t token[MPK_TOKEN_BYTES];
	uint64_t ring_bytes;
	uint32_t side; /* LOOKUP: the side this program holds */
	uint32_t flags; /* MPK_REP_MAC: mac_key is the link's (MPKLINK_INTEGRITY=mac) */
	uint8_t mac_key[32];
};
#define MPK_REP_MAC 0x1u

/* The reply to LINKS and OFFERS: n links, their fds (memfd, bells[0],
 * bells[1] each, in order) beside it. */
struct mpk_ctl_batch {
	uint32_t magic;
	int32_t status; /* 0 (then n >= 1) or -errno */
	uint32_t n;
	uint32_t flags; /* MPK_REP_MAC: each mac_key is its link's */
	uint32_t last;  /* OFFERS: the number of the last link in it */
	uint64_t ring_bytes;
	struct {
		uint8_t token[MPK_TOKEN_BYTES];
		uint8_t mac_key[32];
	} link[MPK_CTL_BATCH_MAX];
};

/*
 * One request and its reply on a connected control socket. fds_out gets
 * the link's fds (memfd, bells[0], bells[1]; see ring.h), all -1 unless a
 * LOOKUP reply carried them.
 * Returns 0 (then rep->status says the launcher's verdict) or -errno for a
 * transport failure.
 */
int mpk_ctl_call(int sock, const struct mpk_ctl_req *req, struct mpk_ctl_rep *rep,
		 int fds_out[MPK_LINK_NFDS]);

/*
 * The reply to a LINKS or OFFERS sent earlier (mpk_ctl_send): fds_out
 * (3 * MPK_CTL_BATCH_MAX entries) gets rep->n links' fds, exactly, when
 * rep->status is 0; a reply whose fds do not match its n (or n out of
 * range) is -EPROTO, its fds closed. nonblock: -EAGAIN while it has not
 * come.
 */
int mpk_ctl_batch_recv(int sock, struct mpk_ctl_batch *rep, int *fds_out, int nonblock);

/* Connects to a SOCK_SEQPACKET unix socket at path; close-on-exec.
 * Returns the fd or -errno. */
int mpk_ctl_connect(const char *path);

/* ------------------------------------------------- the notice ring */

/*
 * CLAIMED and CLOSE without a system call. The launcher answers a NOTES
 * request with a ring it made (a sealed memfd, beside the reply as all
 * three of a link's fds: the wire carries fds three at a time); the
 * program writes its notices there and the launcher reads them when it
 * next looks (see MPK_CTL_NOTES). Sent on a socket, each notice cost both
 * sides a message: ~2 us of the program's and ~2 of the launcher's, four
 * times per connection.
 *
 * One writer (the program, under its lock) and one reader (the launcher's
 * control thread). The program is not trusted: the reader bounds what it
 * reads by its own tail and copies each notice out before it looks at it.
 */
#define MPK_NOTES_MAGIC   0x5345544eu /* "NTES" */
#define MPK_NOTES_VERSION 1u
#define MPK_NOTES_SLOTS   512u

struct mpk_notes {
	uint32_t magic;
	uint32_t version;
	uint32_t slots; /* MPK_NOTES_SLOTS */
	uint32_t pad0;
	uint64_t head; /* the writer's: notices written */
	uint8_t pad1[40];
	uint64_t tail; /* the reader's: notices taken, their slots free */
	uint8_t pad2[56];
	struct mpk_ctl_req note[MPK_NOTES_SLOTS];
};

/* Launcher: a ring, mapped at *out. Returns its memfd (sealed: it cannot
 * shrink under the reader) or -errno. */
int mpk_notes_create(struct mpk_notes **out);

/* Program: maps the ring of memfd fd (the launcher's, whose size, magic,
 * version and slots are checked). Returns 0 or -errno (-EPROTO). */
int mpk_notes_attach(int fd, struct mpk_notes **out);

/* Either side: unmaps it. */
void mpk_notes_detach(struct mpk_notes *n);

/* Program, one thread at a time: writes one notice. Returns 0, or -EAGAIN
 * when the ring is full (the launcher has not read it yet). */
int mpk_notes_push(struct mpk_notes *n, const struct mpk_ctl_req *req);

/* Launcher: copies up to max notices after *tail into out and frees their
 * slots. Returns how many, or -EPROTO when the writer's head is not one
 * the ring can hold (behind *tail, or more than a ring ahead). */
int mpk_notes_take(struct mpk_notes *n, uint64_t *tail, struct mpk_ctl_req *out, size_t max);

/* ---------------------------------------------------- the wire format */

/* One datagram of len bytes, with a link's fds when fds is not NULL.
 * Returns 0, -EPROTO (sent short), or -errno. EINTR is retried. */
int mpk_ctl_send(int sock, const void *buf, size_t len, const int *fds);

/* The same with nlinks links' fds (3 each, at most MPK_CTL_BATCH_MAX links). */
int mpk_ctl_send_links(int sock, const void *buf, size_t len, const int *fds, size_t nlinks);

/*
 * One datagram of at most cap bytes (*len gets its size). fds (when not
 * NULL) gets a link's fds, all -1 when the message carried none; any other
 * count of fds, fds where none were expected, or other control data is
 * closed and makes it -EPROTO, as is a truncated datagram.
 * Returns 0, -ECONNRESET at end of stream, -EPROTO, or -errno.
 */
int mpk_ctl_recv(int sock, void *buf, size_t cap, size_t *len, int *fds);

/* As mpk_ctl_recv, taking up to maxlinks links' fds (3 each) into fds;
 * *nlinks gets how many came. A count of fds not a multiple of 3, or more
 * than 3 * maxlinks, is -EPROTO (all of them closed). */
int mpk_ctl_recv_links(int sock, void *buf, size_t cap, size_t *len, int *fds, size_t maxlinks,
		       size_t *nlinks);

/* As mpk_ctl_recv, for exactly len bytes (else -EPROTO, fds closed). */
int mpk_ctl_recv_exact(int sock, void *buf, size_t len, int *fds);

/* Closes every fd >= 0 of a link's three and sets it to -1. */
void mpk_ctl_fds_close(int fds[MPK_LINK_NFDS]);
/* The same for nlinks links' fds (MPK_LINK_NFDS each), as a batch has them. */
void mpk_ctl_links_close(int *fds, size_t nlinks);

#ifdef __cplusplus
}
#endif
#endif
