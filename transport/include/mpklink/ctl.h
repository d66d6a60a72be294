/* SPDX-License-Identifier: MIT */
/*
 * mpklink control plane: the launcher's threads, the shim's requests to
 * them, and the rendezvous between launchers.
 *
 *   shim  --(SOCK_SEQPACKET, $MPKLINK_CTL)-->  its launcher
 *   client launcher --($RUNDIR/tcp-<port>.sock)--> server launcher
 *
 * Every message is one fixed-size datagram; a link's fds (its memfd and
 * two eventfd doorbells) travel with its
 * reply as SCM_RIGHTS. Peers on both sockets must have our uid
 * (SO_PEERCRED); anything else is refused. Replies carry -errno.
 *
 * Return values: -errno, as in ring.h.
 */
#ifndef MPKLINK_CTL_H
#define MPKLINK_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "mpklink/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MPK_CTL_MAGIC   0x434b504du /* "MPKC" */
#define MPK_RDV_MAGIC   0x484b504du /* "MPKH" */
#define MPK_CTL_VERSION 3u /* 2: links travel with eventfd bells; 3: MAC keys */
#define MPK_TOKEN_BYTES 16
/* What the client puts first on the TCP stream: "\0MPKLNK" "\1" + token.
 * The 0x00 first byte starts no HTTP/2, HTTP/1 or RESP stream. */
#define MPK_PREAMBLE_MAGIC "\0MPKLNK\1"
#define MPK_PREAMBLE_BYTES (8 + MPK_TOKEN_BYTES)

enum mpk_ctl_type {
	MPK_CTL_LISTEN = 1,   /* port: the program listens there */
	MPK_CTL_UNLISTEN = 2, /* port: it stopped */
	MPK_CTL_CONNECT = 3,  /* port, peer_port (ours): open a link */
	MPK_CTL_ACCEPT = 4,   /* port, peer_port (theirs): the pending link */
	MPK_CTL_LOOKUP = 5,   /* port (server's), peer_port (client's): a live
			       * link of ours, for a program image after exec */
	MPK_CTL_CLOSE = 6,    /* port, peer_port: the program closed it */
};

struct mpk_ctl_req {
	uint32_t magic;
	uint32_t version;
	uint32_t type;
	uint32_t port;
	uint32_t peer_port;
	uint32_t pid;
};

struct mpk_ctl_rep {
	uint32_t magic;
	int32_t status; /* 0: the link's fds are attached (CONNECT, ACCEPT, LOOKUP); -errno */
	uint8_t token[MPK_TOKEN_BYTES];
	uint64_t ring_bytes;
	uint32_t side; /* LOOKUP: the side this program holds */
	uint32_t flags; /* MPK_REP_MAC: mac_key is the link's (MPKLINK_INTEGRITY=mac) */
	uint8_t mac_key[32];
};
#define MPK_REP_MAC 0x1u

/* Launcher to launcher. */
struct mpk_rdv_hello {
	uint32_t magic;
	uint32_t version;
	uint32_t server_port;
	uint32_t client_port;
	uint64_t ring_bytes; /* what the client asks for; the server decides */
};

struct mpk_rdv_reply {
	uint32_t magic;
	int32_t status;
	uint8_t token[MPK_TOKEN_BYTES];
	uint64_t ring_bytes;
};

/* ------------------------------------------------ the launcher's side */

/*
 * Authenticated link setup (identities, keys/): the HELLO and REPLY between
 * launchers become whatever these build and check. The control plane stays
 * free of cryptography and only moves the bytes, one datagram each way (at
 * most MPK_RDV_MAX bytes); no link memory leaves the server's launcher
 * unless check_hello accepted the HELLO. Without it (NULL), launchers trust
 * peers of the same uid (SO_PEERCRED), which is checked either way.
 *
 * Called from the control thread (check_hello, reply) and from concurrent
 * connect workers (hello, check_reply): implementations must be thread-safe.
 * A `why` buffer gets one line saying who and what failed. Each state a
 * call returns through *state is given back to done() exactly once.
 */
#define MPK_RDV_MAX 4096

struct mpk_rdv_want {
	unsigned server_port, client_port;
	uint64_t ring_bytes;
};

struct mpk_ctl_auth {
	void *ctx;
	/* Client: the HELLO asking for w, into buf. Returns its length or -errno. */
	ssize_t (*hello)(void *ctx, const struct mpk_rdv_want *w, void **state, uint8_t *buf,
			 size_t cap, char *why, size_t whylen);
	/* Server: checks a HELLO that came to port's rendezvous. Returns 0 and
	 * what it asks for in *w, or -errno (why says it). */
	int (*check_hello)(void *ctx, unsigned port, const uint8_t *msg, size_t len,
			   struct mpk_rdv_want *w, void **state, char *why, size_t whylen);
	/* Server: the REPLY: status 0 with token and ring_bytes, or a refusal
	 * (-errno; state may then be NULL). With status 0, session gets the
	 * 32-byte key both sides derive. Returns its length or -errno. */
	ssize_t (*reply)(void *ctx, void *state, int status, const uint8_t *token,
			 uint64_t ring_bytes, uint8_t *buf, size_t cap, uint8_t *session);
	/* Client: checks the REPLY to its HELLO. Returns 0 and the server's
	 * *status (with token, *ring_bytes and the 32-byte session key when 0),
	 * or -errno (why says it). */
	int (*check_reply)(void *ctx, void *state, const uint8_t *msg, size_t len, int *status,
			   uint8_t *token, uint64_t *ring_bytes, uint8_t *session, char *why,
			   size_t whylen);
	void (*done)(void *ctx, void *state);
};

struct mpk_ctl_config {
	const struct mpk_ctl_auth *auth; /* NULL: same-uid trust only */
	unsigned link_flags; /* MPK_LINK_MAC: links we create carry tagged frames
			      * (needs auth: the key is the handshake's) */
	const char *rundir;   /* checked by mpk_rundir_check */
	size_t ring_bytes;    /* 0: default */
	int log_level;        /* 0 error, 1 warn, 2 info, 3 debug */
	FILE *log;            /* NULL: stderr */
	const char *log_name; /* prefix, e.g. "mpklink-run[1234]" */
};

struct mpk_ctl;

/*
 * Creates the run directory if needed (0700), checks it, binds the shim
 * socket $rundir/ctl-<pid>.sock and starts the control thread.
 * Returns 0 and *out, or -errno (-EPERM: insecure run directory).
 */
int mpk_ctl_start(const struct mpk_ctl_config *cfg, struct mpk_ctl **out);

/* The shim socket's path, for $MPKLINK_CTL. */
const char *mpk_ctl_path(const struct mpk_ctl *c);

/* Stops the thread, removes every socket this launcher created, closes
 * pending links. Safe on NULL. */
void mpk_ctl_stop(struct mpk_ctl *c);

/*
 * Run directory policy: exists (or is created, mode 0700), is a directory
 * (not a symlink), owned by us, and grants nothing to group or others.
 * Returns 0, or -errno with a reason in *why (static string).
 */
int mpk_rundir_check(const char *dir, int create, const char **why);

/* The default run directory: $XDG_RUNTIME_DIR/mpklink, else /tmp/mpklink-$UID. */
int mpk_rundir_default(char *buf, size_t len);

/* ------------------------------------------------ configuration */

#define MPK_MAX_ENDPOINTS 64

/*
 * Parses MPKLINK_ENDPOINTS: comma-separated HOST:PORT, HOST one of
 * localhost, an IPv4 loopback (127.0.0.0/8), 0.0.0.0, ::1, ::, ::ffff:127.x
 * (IPv6 may be bracketed). Every form matches by port. An optional
 * "=NAME" suffix (the expected server identity) is accepted and ignored
 * here. Returns the number of ports written to ports[] (at most max), or
 * -EINVAL with *bad pointing at the offending entry's start.
 */
int mpk_endpoints_parse(const char *s, uint16_t *ports, size_t max, const char **bad);

/*
 * MPKLINK_SPIN_US: how long a waiting call watches the rings of upgraded
 * fds before it sleeps on their doorbells (0: never). The default is the
 * measured knee on a 2-core machine (docs/PERFORMANCE.md).
 */
#define MPK_SPIN_US_DEFAULT 50u
#define MPK_SPIN_US_MAX     1000000u

/*
 * MPKLINK_SPIN_MAX_US: how far a thread's spin may grow when its waits end
 * just after its spins run out (the wake-up would cost more than spinning
 * on); below MPKLINK_SPIN_US it is MPKLINK_SPIN_US, and growth is off.
 */
#define MPK_SPIN_MAX_US_DEFAULT 400u

/*
 * MPKLINK_LOG: "error" 0, "warn" 1 (also NULL or ""), "info" 2, "debug" 3.
 * Returns the level, or -EINVAL for anything else.
 */
int mpk_log_level_parse(const char *s);

/* ------------------------------------------------ the shim's side */

/*
 * One request and its reply on a connected control socket. fds_out gets
 * the link's fds (memfd, bells[0], bells[1]; see ring.h), all -1 unless a
 * CONNECT, ACCEPT or LOOKUP reply carried them.
 * Returns 0 (then rep->status says the launcher's verdict) or -errno for a
 * transport failure.
 */
int mpk_ctl_call(int sock, const struct mpk_ctl_req *req, struct mpk_ctl_rep *rep,
		 int fds_out[MPK_LINK_NFDS]);

/* Connects to a SOCK_SEQPACKET unix socket at path; close-on-exec.
 * Returns the fd or -errno. */
int mpk_ctl_connect(const char *path);

#ifdef __cplusplus
}
#endif
#endif
