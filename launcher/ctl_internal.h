/* SPDX-License-Identifier: MIT */
/*
 * The control plane's insides, shared by its files (ctl_server.c: the
 * thread, the requests, the rendezvous; links.c: the pending and live
 * links): the server's state, and what each file offers the others.
 * Private to the launcher.
 */
#ifndef MPK_LAUNCHER_CTL_INTERNAL_H
#define MPK_LAUNCHER_CTL_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctl_server.h"

#define MAX_FDS 1024
/* A link of a batch waits this long to be claimed by a connection (the
 * client's preload uses a link only for the first POOL_USE_MS of it,
 * preload/pool.h: the server's accept has the rest). */
#define PENDING_MS 10000
/* A rendezvous peer has this long to send its HELLO, and a LINKS this
 * long for the server's launcher to answer. */
#define RDV_TIMEOUT_MS 2000
/* Rendezvous connections waiting for their HELLO at once; past it the
 * oldest is cut off (a peer that opens many and sends nothing takes no
 * more than this from the others). */
#define RDV_MAX_WAITING 64
/* LINKS requests in flight at once (running or queued); past it one is
 * answered -EBUSY at once and its connection stays TCP: when setup falls
 * behind, new connections do not queue behind it. */
#define CONNECTS_MAX 16
/* The programs' notice rings (MPK_CTL_NOTES) are read before every
 * request and decision, and on a timer between NOTES_MIN_MS and
 * NOTES_MAX_MS apart (notes_drain sets it by how many a read found). A
 * read takes at most a ring's worth (MPK_NOTES_SLOTS) from each, so a
 * flood holds up nobody; a full ring makes its program send a notice as a
 * request, which wakes us. */
#define NOTES_MIN_MS 10
#define NOTES_MAX_MS 1000
/* An idle LINKS worker exits after this long without a job. */
#define WORKER_IDLE_MS 10000

/* S_NOTES: a shim's connection that brought its notice ring (MPK_CTL_NOTES),
 * not polled: the ring is read by notes_drain, which the connection's end
 * tells when the program went. */
enum slot_kind { S_WAKE, S_CTL_LISTEN, S_SHIM, S_RDV_LISTEN, S_RDV, S_NOTES };

struct slot {
	enum slot_kind kind;
	int fd;
	unsigned port; /* S_RDV_LISTEN, S_RDV: the port */
	int64_t deadline_ms; /* S_RDV: when its HELLO is overdue */
	/* S_SHIM: ports this program listens on, released when it goes */
	unsigned *ports;
	size_t nports;
	/* S_NOTES: the peer went (or spoke out of turn); dropped by the poll
	 * loop, where no caller walks the slots. */
	int gone;
	/* S_NOTES: the program's notice ring (ctl.h), and how far we read it */
	struct mpk_notes *notes;
	uint64_t notes_tail;
};

/* A link of a batch not yet claimed by a connection: made by us for a
 * client launcher (side 0: handed to our program by OFFERS, or not yet),
 * or received from a server's launcher and handed to our program (side 1). */
struct pending {
	unsigned server_port, side;
	uint32_t seq; /* side 0: its number, for OFFERS (from 1, in order) */
	int fds[MPK_LINK_NFDS];
	uint8_t token[MPK_TOKEN_BYTES];
	uint64_t ring_bytes;
	int64_t expiry_ms;
	int has_key;
	uint8_t key[32]; /* the handshake's session key, for MAC links */
	uint8_t peer[32]; /* side 0: the client it was made for (spares) */
};

/* A link handed to our program, kept so a program image that replaces it
 * (exec) can find the link behind an inherited socket. */
struct live {
	unsigned server_port, client_port, side;
	int fds[MPK_LINK_NFDS];
	int has_key;
	uint8_t key[32];
	int64_t born_ms;
	int closing; /* the program closed it: gone once no process holds it */
	uint8_t peer[32]; /* side 0: the client it was made for (spares) */
};

/* A link we made (side 0) whose connection closed, or that was never
 * claimed: made over (mpk_link_recycle) once both programs released it,
 * and handed out again in a batch for the same client (its identity's
 * digest, zeros without identities), never another. The control thread's. */
struct spare {
	int fds[MPK_LINK_NFDS];
	uint8_t peer[32];
	int ready;        /* made over, in stock */
	int64_t until_ms; /* not ready: given up then; ready: closed then, unused */
};
#define SPARES_MAX 1024
/* How often spares not ready are looked at again, besides at each batch. */
#define SPARES_EVERY_MS 1000
/* A link younger than this is kept whatever the socket table says: its
 * client's connect may not have happened yet. */
#define LIVE_YOUNG_MS 10000
/* How soon after a CLOSE, and how often in any case, the table is read. */
#define SWEEP_SOON_MS 200
#define SWEEP_EVERY_MS 10000
#define MAX_LIVE 4096

struct mpk_ctl {
	struct mpk_ctl_config cfg;
	char rundir[108]; /* for the program and messages */
	int dirfd;        /* the run directory as checked: every socket is
			   * bound, reached and removed through it */
	char path[108];
	int wake_fd;
	pthread_t thread;
	int running;

	struct slot slots[MAX_FDS];
	size_t nslots;
	/* Ports another launcher's program listens on too (SO_REUSEPORT):
	 * no links, as the kernel may hand a client to either program.
	 * The control thread's. */
	unsigned shared[64];
	size_t nshared;

	pthread_mutex_t lock; /* pending, listen refcounts, workers, jobs */
	struct pending *pending; /* side 0's in the order of their seq */
	size_t npending, pending_cap;
	uint32_t seq; /* the last side-0 link's number */
	struct live *live;
	size_t nlive;
	int64_t sweep_at_ms; /* when live_sweep runs next; 0: nothing to do */
	/* When the notice connections are read next, and the interval
	 * (notes_drain). The control thread's. */
	int64_t notes_at_ms;
	int notes_ms;
	struct spare *spares; /* the control thread's */
	size_t nspares;
	int64_t spares_at_ms;
	int workers; /* LINKS threads alive, idle ones included */
	pthread_cond_t workers_done;
	/* LINKS jobs not yet taken, oldest first. A job is queued only when an
	 * idle worker is counted for it (idle >= njobs) or a new worker is
	 * started for it, so none waits behind a slow rendezvous. */
	struct connect_job *jobs, **jobs_tail;
	int njobs, idle, stopping;
	pthread_cond_t jobs_cv;
};

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);

/* One line on the configured log, at level (0 error .. 3 debug). */
__attribute__((format(printf, 3, 4))) void ctl_log(struct mpk_ctl *c, int level, const char *fmt,
						   ...);

/* Close-on-exec duplicates of a link's fds, or -errno (nothing open). */
int fds_dup(const int *src, int *dst);

/* The pending links (of a batch, not claimed yet) and the live ones
 * (claimed by a connection of our program, kept for an image after exec):
 * links.c. Each takes c->lock itself but live_find, which wants it held. */
void pending_purge(struct mpk_ctl *c, int64_t now);
/* Takes ownership of p->fds (closed on failure). */
int pending_add(struct mpk_ctl *c, struct pending *p);
/* Side 0's links for port numbered after since, at most max, in order,
 * copied into out with the entries' own fds: to send, not to close. Only
 * the control thread closes a side-0 entry's fds, and it calls this. Returns
 * how many. */
size_t pending_offers(struct mpk_ctl *c, unsigned port, uint32_t since, struct pending *out,
		      size_t max);
/* The link with token (side's, port's) carries connection (port, cport):
 * it moves to the live table. 0 or -ENOENT. */
int pending_claim(struct mpk_ctl *c, unsigned side, const uint8_t *token, unsigned port,
		  unsigned cport);
void live_add(struct mpk_ctl *c, unsigned sport, unsigned cport, unsigned side, int *fds,
	      const uint8_t *key, const uint8_t *peer);
ssize_t live_find(struct mpk_ctl *c, unsigned sport, unsigned cport, unsigned side);
/* The program closed side's end of (sport, cport); alone: no other
 * process can hold the socket, and the link goes now. */
void live_closing(struct mpk_ctl *c, unsigned sport, unsigned cport, unsigned side, int alone);
void live_sweep(struct mpk_ctl *c);

/* Spares (struct spare), the control thread's. spare_add takes ownership
 * of fds. spares_ripen: makes over those of the client peer that both
 * programs released (a pread each: once a batch). spare_take: a made-over
 * link for peer into fds (0), or -ENOENT. spares_tend: as spares_ripen for
 * all, every SPARES_EVERY_MS, and closes those past their time.
 * spares_free: closes them all. */
void spare_add(struct mpk_ctl *c, int *fds, const uint8_t *peer);
void spares_ripen(struct mpk_ctl *c, const uint8_t *peer);
int spare_take(struct mpk_ctl *c, const uint8_t *peer, int *fds);
void spares_tend(struct mpk_ctl *c, int64_t now);
void spares_free(struct mpk_ctl *c);

#endif
