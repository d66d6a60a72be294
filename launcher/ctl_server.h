/* SPDX-License-Identifier: MIT */
/*
 * The launcher's control plane: the server that answers its program's
 * preload (mpklink/ctl.h) and, on the rendezvous sockets of the ports its
 * program listens on, other launchers.
 *
 *   client launcher --($RUNDIR/tcp-<port>.sock)--> server launcher
 *
 * Every message is one datagram (mpk_ctl_send/mpk_ctl_recv); peers on both
 * kinds of socket must have our uid (SO_PEERCRED). Linked into mpklink-run
 * alone: no service process carries it.
 *
 * Return values: 0 or -errno.
 */
#ifndef MPK_LAUNCHER_CTL_SERVER_H
#define MPK_LAUNCHER_CTL_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "mpklink/config.h"
#include "mpklink/ctl.h"

/* Launcher to launcher (the version is MPK_CTL_VERSION). */
#define MPK_RDV_MAGIC 0x484b504du /* "MPKH" */
/* A struct mpk_rdv_hello with this magic, from a launcher that found the
 * port's rendezvous taken: its program listens on the port too, so the
 * owner makes no more links for it (the kernel may hand any client to
 * either program). No reply. */
#define MPK_RDV_SHARED 0x534b504du /* "MPKS" */

/* A client launcher asks for a batch of links to server_port, made ahead of
 * its program's connects (mpklink/ctl.h's LINKS). */
struct mpk_rdv_hello {
	uint32_t magic;
	uint32_t version;
	uint32_t server_port;
	uint32_t count;      /* links wanted, 1..MPK_CTL_BATCH_MAX */
	uint64_t ring_bytes; /* what the client asks for; the server decides */
};

/* The answer: n links' fds beside it (1 <= n <= count), whose tokens and
 * MAC keys both launchers derive from token, the batch's seed, and the
 * handshake's session key (mpk_link_derive). */
struct mpk_rdv_reply {
	uint32_t magic;
	int32_t status;
	uint8_t token[MPK_TOKEN_BYTES];
	uint64_t ring_bytes;
};

/* The i-th link of a batch: its token from the batch's seed, and, given
 * the handshake's session key (else NULL), its own MAC key (no two links
 * share one: their frame numbers, the nonces, start alike). */
void mpk_link_derive(const uint8_t seed[MPK_TOKEN_BYTES], unsigned i, const uint8_t *session,
		     uint8_t token[MPK_TOKEN_BYTES], uint8_t key[32]);

/* ------------------------------------------------ the server */

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
	unsigned server_port;
	unsigned count; /* links in the batch asked for */
	uint64_t ring_bytes;
	/* Server: who asks, a digest of the client's identity: links made
	 * over go back to the client they went to (launcher/links.c). */
	uint8_t peer[32];
	/* Set by hello (client) and check_hello (server): the batch is asked
	 * for on a session an earlier handshake opened, not a new one. */
	int resumed;
};

struct mpk_ctl_auth {
	void *ctx;
	/* Client: the HELLO asking for w, into buf. Returns its length or -errno. */
	ssize_t (*hello)(void *ctx, struct mpk_rdv_want *w, void **state, uint8_t *buf,
			 size_t cap, char *why, size_t whylen);
	/* Server: checks a HELLO that came to port's rendezvous. Returns 0 and
	 * what it asks for in *w, or -errno (why says it; -ENOKEY,
	 * -EKEYEXPIRED: a session it does not know or that ended, refused so
	 * that the client makes a handshake). A state it leaves on failure
	 * goes to reply, which then refuses in the form the client expects. */
	int (*check_hello)(void *ctx, unsigned port, const uint8_t *msg, size_t len,
			   struct mpk_rdv_want *w, void **state, char *why, size_t whylen);
	/* Server: the REPLY: status 0 with token (the batch's seed) and ring_bytes, or a refusal
	 * (-errno; state may then be NULL). With status 0, session gets the
	 * 32-byte key both sides derive. Returns its length or -errno. */
	ssize_t (*reply)(void *ctx, void *state, int status, const uint8_t *token,
			 uint64_t ring_bytes, uint8_t *buf, size_t cap, uint8_t *session);
	/* Client: checks the REPLY to its HELLO. Returns 0 and the server's
	 * *status (with token, *ring_bytes and the 32-byte session key when 0),
	 * or -errno (why says it; -ENOKEY: the server no longer knows the
	 * session the HELLO resumed, and a new HELLO will make a handshake). */
	int (*check_reply)(void *ctx, void *state, const uint8_t *msg, size_t len, int *status,
			   uint8_t *token, uint64_t *ring_bytes, uint8_t *session, char *why,
			   size_t whylen);
	void (*done)(void *ctx, void *state);
};

struct mpk_ctl_config {
	const struct mpk_ctl_auth *auth; /* NULL: same-uid trust only */
	unsigned link_flags; /* MPK_LINK_MAC: links we create carry tagged frames
			      * (needs auth: the key is the handshake's) */
	const char *rundir;   /* its path, for the program and messages */
	int rundir_fd;        /* mpk_rundir_open's: every socket is made and
			       * reached through it. mpk_ctl_start takes it
			       * (closed by mpk_ctl_stop, or on failure). */
	size_t ring_bytes;    /* 0: default */
	int log_level;        /* 0 error, 1 warn, 2 info, 3 debug */
	FILE *log;            /* NULL: stderr */
	const char *log_name; /* prefix, e.g. "mpklink-run[1234]" */
	/* MPKLINK_ENDPOINTS, parsed: which rendezvous name a port has
	 * (mpk_endpoint_rdv_name), and for a remote entry the address our
	 * program must own before its port gets a rendezvous. Copied. */
	struct mpk_endpoint eps[MPK_MAX_ENDPOINTS];
	size_t neps;
};

struct mpk_ctl;

/*
 * Binds the shim socket ctl-<pid>.sock in the run directory, after removing
 * the ctl-<pid>.sock files of launchers that died (killed with -9: they
 * could not; only ours, and only when their pid is gone and nothing
 * answers on them), and starts the control thread.
 * Returns 0 and *out, or -errno.
 */
int mpk_ctl_start(const struct mpk_ctl_config *cfg, struct mpk_ctl **out);

/* The shim socket's path, for $MPKLINK_CTL. */
const char *mpk_ctl_path(const struct mpk_ctl *c);

/* Stops the thread, removes every socket this launcher created, closes
 * pending links. Safe on NULL. */
void mpk_ctl_stop(struct mpk_ctl *c);

/*
 * The run directory, checked as ssh checks the paths to its keys: walked
 * from / one directory at a time, each directory on the way owned by root
 * or by us and writable by nobody else unless it has the sticky bit (else
 * another user could rename what is below it and put their own in its
 * place), a symbolic link on the way followed only when root or we own it;
 * the run directory itself exists (or is created, mode 0700), is a
 * directory (not a symbolic link), owned by us, and grants nothing to
 * group or others. A relative dir is taken from the current directory.
 * Returns an O_PATH descriptor of the directory checked (close-on-exec),
 * with its absolute path, links resolved, in real (when not NULL); or
 * -errno with one line in why naming the directory at fault (-ENOENT: the
 * run directory alone does not exist, and create was 0; a directory above
 * it missing is -ENOTDIR).
 */
int mpk_rundir_open(const char *dir, int create, char *real, size_t realsz, char *why,
		    size_t whylen);

/*
 * A path to name in the directory dirfd holds (an mpk_rundir_open
 * descriptor), for the calls that take no directory descriptor (bind,
 * connect of unix sockets): /proc/self/fd/DIRFD/NAME, which the kernel
 * resolves through the descriptor, whatever was renamed since the check.
 * Returns 0 or -ENAMETOOLONG.
 */
int mpk_rundir_path(char *buf, size_t len, int dirfd, const char *name);

/* The default run directory: $XDG_RUNTIME_DIR/mpklink, else /tmp/mpklink-$UID. */
int mpk_rundir_default(char *buf, size_t len);

#endif
