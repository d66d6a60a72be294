/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peer.h"
#include "testutil.h"

struct peer {
	int ctl, bell, side;
	unsigned lie_pct;
	int running; /* free-running */
	/* Free-running, the victim's indices come from the header, where
	 * our own lies may sit over them: remember what each lie hid until
	 * the victim publishes again. [0]: its RX head, [1]: its TX tail. */
	struct {
		uint64_t lie, hidden;
		int active;
	} shadow[2];
	struct hs_raw raw;
	uint64_t rng;
	uint64_t lies;
};

unsigned peer_field(enum hs_role role, int ring)
{
	for (unsigned i = 0; i < hs_nfields; i++)
		if (hs_fields[i].role == role && hs_fields[i].ring == ring)
			return i;
	return 0;
}

/*
 * A lie for field f. Random bits find nothing a boundary would not, so
 * most lies sit at the edges a validation has: 0, cap, cap + 1, the top of
 * the u64 range, and the victim's own indices plus or minus a little.
 */
static uint64_t lie_value(struct peer *p, const struct hs_field *f, uint64_t vrx, uint64_t vtx)
{
	uint64_t r = tu_rand(&p->rng), cap = p->raw.cap, ref;
	static const int64_t small[] = {-2, -1, 0, 1, 2};
	int64_t d;

	if (f->width == 4) {
		switch (r % 8) {
		case 0: return 0;
		case 1: return 1;
		case 2: return 2;
		case 3: return 3;
		case 4: return UINT32_C(1) << ((r >> 8) % 32);
		case 5: return UINT32_MAX;
		case 6: return (uint32_t)(r >> 16);
		default: return UINT32_C(0x80000000) | ((r >> 8) & 3);
		}
	}
	d = small[(r >> 8) % 5];
	switch (r % 10) {
	case 0: return (uint64_t)d + 2;
	case 1: return cap + (uint64_t)d;
	case 2: return UINT64_MAX - (uint64_t)(d + 2);
	case 3: return (UINT64_C(1) << 63) + (uint64_t)d;
	case 4: return tu_rand(&p->rng);
	case 5: return (uint32_t)tu_rand(&p->rng);
	default: break;
	}
	switch ((r >> 16) % 4) {
	case 0: ref = vrx; break;
	case 1: ref = vtx; break;
	case 2: ref = hs_get(&p->raw, f); break;
	default: ref = (r >> 20) & 1 ? vrx + cap : vtx - cap; break;
	}
	switch ((r >> 24) % 6) {
	case 0: return ref + (uint64_t)d;
	case 1: return ref + cap + (uint64_t)d;
	case 2: return ref - cap + (uint64_t)d;
	case 3: return ref + (tu_rand(&p->rng) % (cap + 3));
	case 4: return ref - (tu_rand(&p->rng) % (cap + 3));
	default: return ref + (tu_rand(&p->rng) % 64) - 32;
	}
}

/* Publishes up to n stream bytes on the victim's RX ring, as an honest
 * producer would, given the victim's head. Returns the bytes published. */
static uint64_t produce(struct peer *p, uint64_t vrx, uint64_t n)
{
	struct mpk_ring_ctl *c = &p->raw.h->ring[!p->side];
	uint8_t *data = hs_raw_data(&p->raw, !p->side), chunk[256];
	uint64_t cap = p->raw.cap, tail = __atomic_load_n(&c->tail, __ATOMIC_RELAXED);
	uint64_t used = tail - vrx, done = 0;

	if (used > cap)
		return 0; /* our tail is a lie already: nothing honest to add */
	if (n > cap - used)
		n = cap - used;
	while (done < n) {
		uint64_t pos = (tail + done) & (cap - 1);
		size_t k = sizeof(chunk);

		if (k > n - done)
			k = (size_t)(n - done);
		if (k > cap - pos)
			k = (size_t)(cap - pos);
		tu_fill(chunk, k, tail + done, 0x5eed);
		memcpy(data + pos, chunk, k);
		done += k;
	}
	__atomic_store_n(&c->tail, tail + n, __ATOMIC_RELEASE);
	return n;
}

/* Frees up to n bytes of the victim's TX ring, given its tail. */
static uint64_t consume(struct peer *p, uint64_t vtx, uint64_t n)
{
	struct mpk_ring_ctl *c = &p->raw.h->ring[p->side];
	uint64_t head = __atomic_load_n(&c->head, __ATOMIC_RELAXED), used = vtx - head;

	if (used > p->raw.cap)
		return 0;
	if (n > used)
		n = used;
	__atomic_store_n(&c->head, head + n, __ATOMIC_RELEASE);
	return n;
}

static void step(struct peer *p, uint64_t vrx, uint64_t vtx, struct peer_reply *rep)
{
	uint64_t r = tu_rand(&p->rng), cap = p->raw.cap;
	unsigned roll = (unsigned)(r % 100);
	const struct hs_field *f;
	unsigned fi;

	if (!p->raw.base) {
		rep->what = ACT_NONE;
		return;
	}
	if (roll < p->lie_pct) {
		/* Half the lies go to the four fields the victim validates. */
		if ((r >> 8) & 1) {
			static const enum hs_role roles[] = {HS_ROLE_TAIL, HS_ROLE_PFLAGS,
							     HS_ROLE_HEAD, HS_ROLE_CFLAGS};
			enum hs_role role = roles[(r >> 9) % 4];
			int ring = role == HS_ROLE_TAIL || role == HS_ROLE_PFLAGS ? !p->side
										  : p->side;
			fi = peer_field(role, ring);
		} else {
			fi = (unsigned)((r >> 9) % hs_nfields);
		}
		f = &hs_fields[fi];
		rep->what = ACT_LIE;
		rep->field = fi;
		rep->value = lie_value(p, f, vrx, vtx);
		if ((f->role == HS_ROLE_HEAD && f->ring == !p->side) ||
		    (f->role == HS_ROLE_TAIL && f->ring == p->side)) {
			int k = f->role == HS_ROLE_TAIL;

			if (!p->shadow[k].active)
				p->shadow[k].hidden = hs_get(&p->raw, f);
			p->shadow[k].lie = rep->value;
			p->shadow[k].active = 1;
		}
		hs_set(&p->raw, f, rep->value);
		p->lies++;
		return;
	}
	roll = (unsigned)((r >> 8) % 100);
	/* Free-running, the peer takes steps far faster than the victim
	 * calls: flags that end the stream would end every link at once. */
	if (roll >= 96 && p->running && (r >> 40) % 64)
		roll = 0;
	if (roll < 40) {
		uint64_t n = (r >> 16) & 1 ? (r >> 20) % 64 : (r >> 20) % (cap + 1);

		rep->what = ACT_PRODUCE;
		rep->value = produce(p, vrx, n);
	} else if (roll < 80) {
		rep->what = ACT_CONSUME;
		rep->value = consume(p, vtx, (r >> 20) % (cap + 1));
	} else if (roll < 88) {
		/* Honest-looking waiting flags, any value: they are only flags. */
		fi = peer_field(HS_ROLE_WAIT, (int)((r >> 16) & 1));
		fi += (unsigned)((r >> 17) & 1);
		rep->what = ACT_WAITING;
		rep->field = fi;
		rep->value = (r >> 18) & 1 ? 1 : (uint32_t)(r >> 24);
		hs_set(&p->raw, &hs_fields[fi], rep->value);
	} else if (roll < 96) {
		char buf[512];

		rep->what = ACT_BELL;
		if ((r >> 16) & 1) {
			memset(buf, 1, sizeof(buf));
			rep->value = (uint64_t)send(p->bell, buf, 1 + (r >> 20) % sizeof(buf),
						    MSG_DONTWAIT | MSG_NOSIGNAL);
		} else {
			rep->value = (uint64_t)recv(p->bell, buf, sizeof(buf), MSG_DONTWAIT);
		}
	} else {
		/* Legal flags: shutdown, close, consumer closed. */
		rep->what = ACT_FLAGS;
		if ((r >> 16) & 1) {
			fi = peer_field(HS_ROLE_PFLAGS, !p->side);
			rep->value = (r >> 17) & 1 ? MPK_PROD_SHUT : MPK_PROD_SHUT | MPK_PROD_CLOSED;
		} else {
			fi = peer_field(HS_ROLE_CFLAGS, p->side);
			rep->value = MPK_CONS_CLOSED;
		}
		rep->field = fi;
		hs_set(&p->raw, &hs_fields[fi], rep->value);
	}
}

static void newlink(struct peer *p, const struct peer_msg *m, const int *fds, int nfds)
{
	hs_raw_unmap(&p->raw);
	if (p->bell >= 0)
		close(p->bell);
	p->bell = -1;
	if (nfds != 2)
		_exit(3);
	p->side = (int)m->arg;
	p->lie_pct = (unsigned)m->a;
	memset(p->shadow, 0, sizeof(p->shadow));
	if (hs_raw_map(&p->raw, fds[0]) < 0)
		_exit(4);
	close(fds[0]); /* the mapping keeps the memory */
	p->bell = fds[1];
}

/* One of the victim's published indices, seen through our own lies. */
static uint64_t victim_index(struct peer *p, int k)
{
	const uint64_t *f = k ? &p->raw.h->ring[p->side].tail : &p->raw.h->ring[!p->side].head;
	uint64_t v = __atomic_load_n(f, __ATOMIC_ACQUIRE);

	if (p->shadow[k].active && v == p->shadow[k].lie)
		return p->shadow[k].hidden;
	p->shadow[k].active = 0; /* it published since */
	return v;
}

/* Steps at the victim's published indices, as an attacker reads them. */
static void freerun(struct peer *p)
{
	struct pollfd pf = {.fd = p->ctl, .events = POLLIN};
	struct peer_reply rep;

	for (;;) {
		for (int i = 0; i < 64; i++) {
			uint64_t vrx = 0, vtx = 0;

			if (p->raw.base) {
				vrx = victim_index(p, 0);
				vtx = victim_index(p, 1);
			}
			memset(&rep, 0, sizeof(rep));
			step(p, vrx, vtx, &rep);
			/* A little slack, so data also gets through between lies. */
			for (volatile unsigned k = (unsigned)(tu_rand(&p->rng) % 2048); k; k--)
				;
		}
		if (poll(&pf, 1, 0) != 0)
			return;
	}
}

__attribute__((noreturn)) static void peer_main(int ctl, uint64_t seed)
{
	struct peer p = {.ctl = ctl, .bell = -1, .rng = seed | 1};
	struct peer_msg m;
	struct peer_reply rep;
	int fds[4], nfds;
	ssize_t r;

	for (;;) {
		if (p.running)
			freerun(&p);
		r = hs_recv(ctl, &m, sizeof(m), fds, 4, &nfds);
		if (r != (ssize_t)sizeof(m))
			_exit(r == 0 ? 0 : 2); /* victim gone: nothing to report to */
		memset(&rep, 0, sizeof(rep));
		rep.op = m.op;
		switch (m.op) {
		case PEER_NEWLINK:
			newlink(&p, &m, fds, nfds);
			break;
		case PEER_STEP:
			step(&p, m.a, m.b, &rep);
			break;
		case PEER_SET:
			if (!p.raw.base || m.arg >= hs_nfields)
				_exit(5);
			hs_set(&p.raw, &hs_fields[m.arg], m.a);
			rep.field = m.arg;
			rep.value = m.a;
			p.lies++;
			break;
		case PEER_PRODUCE:
			rep.value = produce(&p, m.b, m.a);
			break;
		case PEER_CONSUME:
			rep.value = consume(&p, m.b, m.a);
			break;
		case PEER_FREERUN:
			p.running = 1;
			break;
		case PEER_COUNT:
			rep.lies = p.lies;
			break;
		case PEER_QUIT:
			rep.lies = p.lies;
			hs_send(ctl, &rep, sizeof(rep), NULL, 0);
			_exit(0);
		default:
			_exit(6);
		}
		for (int i = (m.op == PEER_NEWLINK ? 2 : 0); i < nfds; i++)
			close(fds[i]);
		if (hs_send(ctl, &rep, sizeof(rep), NULL, 0) < 0)
			_exit(7);
	}
}

pid_t peer_spawn(uint64_t seed, int *ctl)
{
	pid_t parent = getpid(), pid;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (pid == 0) {
		close(sv[0]);
		/* Never outlive the victim, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(600);
		peer_main(sv[1], seed);
	}
	close(sv[1]);
	*ctl = sv[0];
	return pid;
}

int peer_call(int ctl, const struct peer_msg *msg, const int *fds, int nfds,
	      struct peer_reply *rep)
{
	int rfds[4], rn;
	ssize_t r;

	r = hs_send(ctl, msg, sizeof(*msg), fds, nfds);
	if (r < 0)
		return (int)r;
	r = hs_recv(ctl, rep, sizeof(*rep), rfds, 4, &rn);
	for (int i = 0; i < rn; i++)
		close(rfds[i]);
	if (r < 0)
		return (int)r;
	return r == (ssize_t)sizeof(*rep) && rep->op == msg->op ? 0 : -EPROTO;
}

int64_t peer_quit(pid_t pid, int ctl)
{
	struct peer_msg m = {.op = PEER_QUIT};
	struct peer_reply rep;
	int st, r;

	r = peer_call(ctl, &m, NULL, 0, &rep);
	close(ctl);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || r < 0)
		return -1;
	return (int64_t)rep.lies;
}
