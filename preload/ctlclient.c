/* SPDX-License-Identifier: MIT */
/* Requests to our launcher (ctlclient.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctlclient.h"
#include "fdtab.h"
#include "log.h"
#include "real.h"
#include "settings.h"

#define CTL_CONNS 16
/* At most this many of them carry LINKS, which wait on another launcher:
 * the rest stay for the calls our own launcher answers at once (OFFERS,
 * CLAIMED, CLOSE, LOOKUP), which must not queue behind a stalled peer. */
#define CTL_CONNECTS 12

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ctl_idle = PTHREAD_COND_INITIALIZER;
/* fd -1: not open. None is closed but on error or in a forked child. */
static struct {
	int fd, busy; /* busy: 1, or 2 with a LINKS */
} ctl_conn[CTL_CONNS];
static int ctl_nconn;     /* entries in use, open or not */
static int ctl_nconnects; /* of them, busy with a LINKS */
static pid_t ctl_pid;
/* The notice ring (MPK_CTL_NOTES): CLAIMED and CLOSE, which the launcher
 * reads when it next looks, so that a connect or close neither wakes it
 * nor makes a system call. note_fd: the connection that brought the ring,
 * held so that its end tells the launcher we went; -1: not open.
 * note_failed: the launcher gave none (then notices go as requests).
 * Under ctl_lock, as the rest. */
static int note_fd = -1, note_failed;
static struct mpk_notes *notes;

/* Whether the process listening at the other end of fd is our launcher:
 * its pid (MPKLINK_CTL_PID) and our uid. The run directory's path could
 * lead elsewhere by now (a directory above it renamed by someone who
 * could: mpklink-run refuses to start where anyone but root or us can);
 * a socket another process bound there gets not one request from us, and
 * hands us no memory to write our data into. */
static int our_launcher(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (real.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return 0;
	if (cfg.ctl_pid > 0 && cr.pid == cfg.ctl_pid && cr.uid == getuid())
		return 1;
	slog(0, "%s is not our launcher's socket (pid %d uid %u listens there, not pid %d "
		"uid %u); no links", cfg.ctl_path, (int)cr.pid, (unsigned)cr.uid, cfg.ctl_pid,
	     (unsigned)getuid());
	return 0;
}

/* A forked child drops the parent's connections, which carry its calls.
 * Under ctl_lock. */
static void ctl_own(void)
{
	if (ctl_pid == getpid())
		return;
	for (int i = 0; i < ctl_nconn; i++)
		if (ctl_conn[i].fd >= 0)
			fdtab_internal_close(ctl_conn[i].fd);
	ctl_nconn = 0;
	ctl_nconnects = 0;
	if (note_fd >= 0)
		fdtab_internal_close(note_fd);
	note_fd = -1;
	note_failed = 0;
	/* The parent's ring has one writer: the parent. */
	mpk_notes_detach(notes);
	notes = NULL;
	ctl_pid = getpid();
}

/* Marks an idle connection busy and returns its index, opening it if it
 * is not open; or -errno. Waits while all are busy, except for a LINKS:
 * -EBUSY when CTL_CONNECTS are in flight or none is idle (link setup is
 * behind: the connection stays TCP rather than queue). */
static int ctl_take(int listen_conn, int connect)
{
	int i, fd;

	pthread_mutex_lock(&ctl_lock);
	ctl_own();
	if (ctl_nconn == 0)
		ctl_conn[ctl_nconn++] = (__typeof__(ctl_conn[0])){-1, 0};
	for (;;) {
		if (listen_conn) {
			i = ctl_conn[0].busy ? -1 : 0;
		} else {
			for (i = 1; i < ctl_nconn && ctl_conn[i].busy; i++)
				;
			if (i == ctl_nconn && i < CTL_CONNS)
				ctl_conn[ctl_nconn++] = (__typeof__(ctl_conn[0])){-1, 0};
			else if (i == ctl_nconn)
				i = -1;
		}
		if (connect && (i < 0 || ctl_nconnects >= CTL_CONNECTS)) {
			pthread_mutex_unlock(&ctl_lock);
			return -EBUSY;
		}
		if (i >= 0)
			break;
		pthread_cond_wait(&ctl_idle, &ctl_lock);
	}
	ctl_conn[i].busy = 1 + connect;
	ctl_nconnects += connect;
	if (ctl_conn[i].fd < 0) {
		fd = mpk_ctl_connect(cfg.ctl_path);
		if (fd >= 0 && !our_launcher(fd)) {
			real.close(fd);
			fd = -EPERM;
		}
		if (fd < 0) {
			ctl_nconnects -= ctl_conn[i].busy == 2;
			ctl_conn[i].busy = 0;
			pthread_cond_broadcast(&ctl_idle);
			pthread_mutex_unlock(&ctl_lock);
			slog(1, "cannot reach the launcher at %s: %s", cfg.ctl_path, strerror(-fd));
			return fd;
		}
		ctl_conn[i].fd = fdtab_internal_take(fd);
	}
	pthread_mutex_unlock(&ctl_lock);
	return i;
}

/* broken: the call failed, the connection's state is unknown: close it. */
static void ctl_give(int i, int broken)
{
	pthread_mutex_lock(&ctl_lock);
	if (broken) {
		fdtab_internal_close(ctl_conn[i].fd);
		ctl_conn[i].fd = -1;
	}
	ctl_nconnects -= ctl_conn[i].busy == 2;
	ctl_conn[i].busy = 0;
	pthread_cond_broadcast(&ctl_idle);
	pthread_mutex_unlock(&ctl_lock);
}

/* A request of type from this process. */
static struct mpk_ctl_req req_of(uint32_t type, unsigned port, unsigned peer_port, unsigned side)
{
	return (struct mpk_ctl_req){.magic = MPK_CTL_MAGIC, .version = MPK_CTL_VERSION,
				    .type = type, .port = port, .peer_port = peer_port,
				    .pid = (uint32_t)getpid(), .side = side};
}

int ctl_call(uint32_t type, unsigned port, unsigned peer_port, unsigned side,
	     struct mpk_ctl_rep *rep, int fds[MPK_LINK_NFDS])
{
	struct mpk_ctl_req req = req_of(type, port, peer_port, side);
	int r, i;

	for (int k = 0; k < MPK_LINK_NFDS; k++)
		fds[k] = -1;
	i = ctl_take(type == MPK_CTL_LISTEN || type == MPK_CTL_UNLISTEN, 0);
	if (i < 0)
		return i;
	/* Ours alone while busy: the fd is read without the lock. */
	r = mpk_ctl_call(ctl_conn[i].fd, &req, rep, fds);
	ctl_give(i, r < 0);
	return r < 0 ? r : rep->status;
}

int ctl_batch_ask(uint32_t type, unsigned port, unsigned count, uint32_t since)
{
	struct mpk_ctl_req req = req_of(type, port, 0, 0);
	int r, i = ctl_take(0, type == MPK_CTL_LINKS);

	req.count = count;
	req.since = since;

	if (i < 0)
		return i;
	r = mpk_ctl_send(ctl_conn[i].fd, &req, sizeof(req), NULL);
	if (r < 0) {
		ctl_give(i, 1);
		return r;
	}
	return i; /* busy until ctl_batch_take */
}

int ctl_batch_take(int handle, int wait, struct mpk_ctl_batch *rep, int *fds)
{
	int r = mpk_ctl_batch_recv(ctl_conn[handle].fd, rep, fds, !wait);

	if (r == -EAGAIN && !wait)
		return r;
	ctl_give(handle, r < 0);
	return r < 0 ? r : rep->status;
}

int ctl_batch(uint32_t type, unsigned port, unsigned count, uint32_t since,
	      struct mpk_ctl_batch *rep, int *fds)
{
	int h = ctl_batch_ask(type, port, count, since);

	if (h < 0) {
		for (int k = 0; k < MPK_LINK_NFDS * MPK_CTL_BATCH_MAX; k++)
			fds[k] = -1;
		return h;
	}
	return ctl_batch_take(h, 1, rep, fds);
}

/* Opens the notice connection and maps the ring it brings. Under ctl_lock. */
static void note_open(void)
{
	struct mpk_ctl_req hello = req_of(MPK_CTL_NOTES, 0, 0, 0);
	struct mpk_ctl_rep rep;
	int fds[MPK_LINK_NFDS] = {-1, -1, -1};
	int fd = mpk_ctl_connect(cfg.ctl_path), r = fd;

	if (fd >= 0 && !our_launcher(fd))
		r = -EPERM;
	if (r >= 0)
		r = mpk_ctl_call(fd, &hello, &rep, fds);
	if (r >= 0)
		r = rep.status;
	/* The ring's memfd, in each of a link's three places. */
	if (r >= 0)
		r = fds[0] >= 0 ? mpk_notes_attach(fds[0], &notes) : -EPROTO;
	mpk_ctl_fds_close(fds);
	if (r < 0) {
		if (fd >= 0)
			real.close(fd);
		slog(2, "no notice ring from the launcher (%s): notices go as requests",
		     strerror(-r));
		note_failed = 1;
		return;
	}
	note_fd = fdtab_internal_take(fd);
}

/* A notice: into the ring, which wakes nobody and costs no system call;
 * as a request when it is full (answered once the launcher took it, after
 * the ring's: a later notice cannot pass it) or cannot be had. */
static void ctl_tell(struct mpk_ctl_req *req)
{
	struct mpk_ctl_rep rep;
	int fds[MPK_LINK_NFDS], r = -1, i;

	pthread_mutex_lock(&ctl_lock);
	ctl_own();
	if (!notes && !note_failed)
		note_open();
	if (notes)
		r = mpk_notes_push(notes, req);
	pthread_mutex_unlock(&ctl_lock);
	if (r == 0)
		return;
	i = ctl_take(0, 0);
	if (i < 0)
		return;
	r = mpk_ctl_call(ctl_conn[i].fd, req, &rep, fds);
	if (r == 0)
		mpk_ctl_fds_close(fds);
	ctl_give(i, r < 0);
}

void ctl_claimed(unsigned port, unsigned cport, unsigned side, const uint8_t *token)
{
	struct mpk_ctl_req req = req_of(MPK_CTL_CLAIMED, port, cport, side);

	memcpy(req.token, token, MPK_TOKEN_BYTES);
	ctl_tell(&req);
}

void ctl_unlisten(unsigned port)
{
	struct mpk_ctl_rep rep;
	int fds[MPK_LINK_NFDS];

	ctl_call(MPK_CTL_UNLISTEN, port, 0, 0, &rep, fds);
}

void ctl_closed(unsigned port, unsigned cport, unsigned side, int alone)
{
	struct mpk_ctl_req req = req_of(MPK_CTL_CLOSE, port, cport, side);

	req.count = alone ? MPK_CTL_CLOSE_ALONE : 0;
	/* Not waited for (unless the ring is full): the launcher's sweep
	 * finds a link whose CLOSE was lost (its socket is held by nobody). */
	ctl_tell(&req);
}

/* A fork while another thread holds ctl_lock (briefly: never across a
 * call) must not leave the child a lock nobody will release. The child
 * drops the parent's connections on its first call (ctl_take). */
void ctl_fork_prepare(void)
{
	pthread_mutex_lock(&ctl_lock);
}

void ctl_fork_parent(void)
{
	pthread_mutex_unlock(&ctl_lock);
}

void ctl_fork_child(void)
{
	/* Its waiters were threads of the parent. */
	pthread_cond_init(&ctl_idle, NULL);
	pthread_mutex_unlock(&ctl_lock);
}
