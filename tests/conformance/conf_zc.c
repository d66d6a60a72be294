/* SPDX-License-Identifier: MIT */
/*
 * conf_zc SUBCOMMAND: the calls that move bytes without read/write.
 *   sendfile   regular file -> socket, with and without an offset pointer;
 *              the file position afterwards
 *   splice     pipe -> socket and socket -> pipe; SPLICE_F_NONBLOCK
 *   sendmmsg   several messages in one call
 *   recvmmsg   with and without MSG_WAITFORONE, blocking for the first
 *   zerocopy   SO_ZEROCOPY + MSG_ZEROCOPY, the completion on MSG_ERRQUEUE
 *   oob        MSG_OOB both ways, SIOCATMARK, SO_OOBINLINE
 *   errqueue   MSG_ERRQUEUE on an idle socket
 */
#include "conf.h"

#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif

static int l, c, s;

static void sc_sendfile(void)
{
	char path[] = "/tmp/conf-sendfile.XXXXXX";
	int f = mkstemp(path);
	static unsigned char buf[100000];
	off_t off;

	if (f < 0)
		conf_fatal("mkstemp");
	unlink(path);
	pat_fill(buf, sizeof(buf), 0);
	if (write(f, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		conf_fatal("write file");
	lseek(f, 0, SEEK_SET);

	R("sendfile.nulloff", 0, sendfile(c, f, NULL, 30000));
	out("file position=%lld", (long long)lseek(f, 0, SEEK_CUR));
	conf_hear("recv.sendfile.nulloff", s, 30000, 1, 0);

	off = 50000;
	R("sendfile.offset", 0, sendfile(c, f, &off, 20000));
	out("offset now=%lld file position=%lld", (long long)off, (long long)lseek(f, 0, SEEK_CUR));
	conf_hear("recv.sendfile.offset", s, 20000, 1, 50000);

	R("sendfile.to-eof", 0, sendfile(c, f, NULL, 1000000));
	out("file position=%lld", (long long)lseek(f, 0, SEEK_CUR));
	conf_hear("recv.sendfile.to-eof", s, 70000, 1, 30000);
	R("sendfile.at-eof", 0, sendfile(c, f, NULL, 1000));
	/* Other way round: the socket is not a file to send from. */
	R("sendfile.from-socket", 0, sendfile(f, s, NULL, 10));
	/* The stream is still in order afterwards. */
	R("write.after", 0, write(c, "after", 5));
	conf_hear("recv.after", s, 5, 0, 0);
	close(f);
}

static void late_write(void *p)
{
	(void)p;
	if (write(c, "late!", 5) != 5)
		conf_fatal("late write");
}

static void sc_splice(void)
{
	int pp[2];
	static unsigned char buf[5000];
	unsigned char back[5000];
	long r;

	if (pipe(pp))
		conf_fatal("pipe");
	pat_fill(buf, sizeof(buf), 0);
	if (write(pp[1], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		conf_fatal("pipe write");
	R("splice.pipe-to-socket", 0, splice(pp[0], NULL, c, NULL, sizeof(buf), 0));
	conf_hear("recv.spliced", s, sizeof(buf), 1, 0);

	pat_fill(buf, 3000, 7);
	R("write.for-splice", 0, write(c, buf, 3000));
	conf_sleep_ms(50);
	r = R("splice.socket-to-pipe", 0, splice(s, NULL, pp[1], NULL, 3000, 0));
	if (r > 0) {
		ssize_t k = read(pp[0], back, (size_t)r);
		out("pipe got=%zd match=%s", k, k == 3000 && fnv(back, 3000, FNV0) == pat_fnv(7, 3000) ? "yes" : "no");
	}
	/* SPLICE_F_NONBLOCK is about the pipe; the socket's own O_NONBLOCK
	 * decides whether an empty one blocks. */
	conf_nonblock(s, 1);
	R("splice.socket-empty.NONBLOCK", 0, splice(s, NULL, pp[1], NULL, 100, SPLICE_F_NONBLOCK));
	conf_nonblock(s, 0);
	{
		struct conf_later *t = conf_later(CONF_T, late_write, NULL);
		r = R("splice.socket-blocking", CONF_T, splice(s, NULL, pp[1], NULL, 100, 0));
		conf_join(t);
		if (r > 0) {
			ssize_t k = read(pp[0], back, (size_t)r);
			out("pipe got %s", hexdata(back, k));
		}
	}
	/* Both sides of the stream still in order. */
	R("write.after", 0, write(c, "after", 5));
	conf_hear("recv.after", s, 5, 0, 0);
	R("write.back", 0, write(s, "back", 4));
	conf_hear("recv.back", c, 4, 0, 0);
	close(pp[0]);
	close(pp[1]);
}

static void sc_sendmmsg(void)
{
	struct iovec v[3] = {{"first-", 6}, {"second-", 7}, {"third", 5}};
	struct iovec v2[2] = {{"a", 1}, {"bc", 2}};
	struct mmsghdr m[3];
	int r;

	memset(m, 0, sizeof(m));
	m[0].msg_hdr.msg_iov = &v[0];
	m[0].msg_hdr.msg_iovlen = 1;
	m[1].msg_hdr.msg_iov = &v[1];
	m[1].msg_hdr.msg_iovlen = 1;
	m[2].msg_hdr.msg_iov = v2;
	m[2].msg_hdr.msg_iovlen = 2;
	r = (int)R("sendmmsg", 0, sendmmsg(c, m, 3, 0));
	for (int i = 0; i < r; i++)
		out("sendmmsg msg_len[%d]=%u", i, m[i].msg_len);
	conf_hear("recv.sendmmsg", s, 16, 0, 0);
	R("sendmmsg.zero", 0, sendmmsg(c, m, 0, 0));
	/* A large one: 3 x 64 KB. */
	{
		static unsigned char big[3][65536];
		struct iovec bv[3];
		for (int i = 0; i < 3; i++) {
			pat_fill(big[i], sizeof(big[i]), (uint64_t)i * 65536);
			bv[i] = (struct iovec){big[i], sizeof(big[i])};
			memset(&m[i], 0, sizeof(m[i]));
			m[i].msg_hdr.msg_iov = &bv[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		r = (int)R("sendmmsg.big", 0, sendmmsg(c, m, 3, 0));
		for (int i = 0; i < r; i++)
			out("sendmmsg.big msg_len[%d]=%u", i, m[i].msg_len);
		conf_hear("recv.sendmmsg.big", s, 3 * 65536, 1, 0);
	}
	R("write.after", 0, write(c, "after", 5));
	conf_hear("recv.after", s, 5, 0, 0);
}

static void sc_recvmmsg(void)
{
	char b[3][10];
	struct iovec v[3];
	struct mmsghdr m[3];
	int r;

#define RESET()                                                                                  \
	do {                                                                                     \
		memset(m, 0, sizeof(m));                                                         \
		memset(b, 0, sizeof(b));                                                         \
		for (int i = 0; i < 3; i++) {                                                    \
			v[i] = (struct iovec){b[i], sizeof(b[i])};                               \
			m[i].msg_hdr.msg_iov = &v[i];                                            \
			m[i].msg_hdr.msg_iovlen = 1;                                             \
		}                                                                                \
	} while (0)
#define SHOW(name)                                                                               \
	for (int i = 0; i < r; i++)                                                              \
	out("%s [%d] len=%u %s flags=0x%x", name, i, m[i].msg_len, hexdata(b[i], m[i].msg_len),  \
	    (unsigned)m[i].msg_hdr.msg_flags)

	write(c, "0123456789abcdefghijABCDEFGHIJ", 30);
	conf_sleep_ms(20);
	RESET();
	r = (int)R("recvmmsg.exact", 0, recvmmsg(s, m, 3, 0, NULL));
	SHOW("recvmmsg.exact");
	write(c, "short", 5);
	conf_sleep_ms(20);
	RESET();
	r = (int)R("recvmmsg.WAITFORONE", 0, recvmmsg(s, m, 3, MSG_WAITFORONE, NULL));
	SHOW("recvmmsg.WAITFORONE");
	write(c, "0123456789abc", 13);
	conf_sleep_ms(20);
	RESET();
	r = (int)R("recvmmsg.WAITFORONE.two", 0, recvmmsg(s, m, 3, MSG_WAITFORONE, NULL));
	SHOW("recvmmsg.WAITFORONE.two");
	RESET();
	r = (int)R("recvmmsg.DONTWAIT.empty", 0, recvmmsg(s, m, 3, MSG_DONTWAIT, NULL));
	write(c, "dw", 2);
	conf_sleep_ms(20);
	RESET();
	r = (int)R("recvmmsg.DONTWAIT", 0, recvmmsg(s, m, 3, MSG_DONTWAIT, NULL));
	SHOW("recvmmsg.DONTWAIT");
	{
		struct conf_later *t = conf_later(CONF_T, late_write, NULL);
		RESET();
		r = (int)R("recvmmsg.WAITFORONE.blocking", CONF_T, recvmmsg(s, m, 3, MSG_WAITFORONE, NULL));
		SHOW("recvmmsg.WAITFORONE.blocking");
		conf_join(t);
	}
	R("write.after", 0, write(c, "after", 5));
	conf_hear("recv.after", s, 5, 0, 0);
#undef RESET
#undef SHOW
}

static void read_completion(const char *name)
{
	char ctl[256], d[8];
	struct iovec v = {d, sizeof(d)};
	struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm;
	long r;

	conf_poll1t(name, c, POLLERR, 2000, 0);
	r = R(name, 0, recvmsg(c, &m, MSG_ERRQUEUE));
	if (r < 0)
		return;
	out("%s msg_flags=0x%x", name, (unsigned)m.msg_flags);
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
		struct sock_extended_err ee;
		if (cm->cmsg_len < CMSG_LEN(sizeof(ee))) {
			out("%s cmsg level=%d type=%d short", name, cm->cmsg_level, cm->cmsg_type);
			continue;
		}
		memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
		out("%s cmsg level=%d type=%d ee_errno=%u origin=%u code=0x%x info=%u data=%u", name,
		    cm->cmsg_level, cm->cmsg_type, ee.ee_errno, ee.ee_origin, ee.ee_code, ee.ee_info,
		    ee.ee_data);
	}
}

static void sc_zerocopy(void)
{
	static unsigned char buf[65536];
	int one = 1;

	pat_fill(buf, sizeof(buf), 0);
	/* Without SO_ZEROCOPY the flag is ignored. */
	R("send.ZEROCOPY.not-enabled", 0, send(c, buf, 1000, MSG_ZEROCOPY));
	conf_hear("recv.1", s, 1000, 1, 0);
	R("setsockopt.SO_ZEROCOPY", 0, setsockopt(c, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)));
	pat_fill(buf, sizeof(buf), 1000);
	R("send.ZEROCOPY", 0, send(c, buf, sizeof(buf), MSG_ZEROCOPY));
	conf_hear("recv.2", s, sizeof(buf), 1, 1000);
	read_completion("errqueue.1");
	pat_fill(buf, sizeof(buf), 1000 + 65536);
	R("send.ZEROCOPY.2", 0, send(c, buf, 500, MSG_ZEROCOPY));
	R("send.ZEROCOPY.3", 0, send(c, buf + 500, 500, MSG_ZEROCOPY));
	conf_hear("recv.3", s, 1000, 1, 1000 + 65536);
	conf_sleep_ms(50);
	read_completion("errqueue.2");
	R("errqueue.empty", 0, recvmsg(c, &(struct msghdr){0}, MSG_ERRQUEUE));
	R("write.after", 0, write(c, "after", 5));
	conf_hear("recv.after", s, 5, 0, 0);
}

static void sc_oob(void)
{
	char b[64];
	int v;
	long r;

	R("send.abc", 0, send(c, "abc", 3, 0));
	R("send.OOB", 0, send(c, "X", 1, MSG_OOB));
	R("send.def", 0, send(c, "def", 3, 0));
	conf_sleep_ms(50);
	conf_poll1("poll.urgent", s, POLLIN | POLLPRI, 0);
	R("ioctl.SIOCATMARK.before", 0, ioctl(s, SIOCATMARK, &v));
	out("SIOCATMARK=%d", v);
	r = R("recv.to-mark", 0, recv(s, b, sizeof(b), 0));
	out("recv.to-mark %s", hexdata(b, r));
	R("ioctl.SIOCATMARK.at", 0, ioctl(s, SIOCATMARK, &v));
	out("SIOCATMARK=%d", v);
	r = R("recv.OOB.PEEK", 0, recv(s, b, 1, MSG_OOB | MSG_PEEK));
	out("recv.OOB.PEEK %s", hexdata(b, r));
	r = R("recv.OOB", 0, recv(s, b, 1, MSG_OOB));
	out("recv.OOB %s", hexdata(b, r));
	R("recv.OOB.again", 0, recv(s, b, 1, MSG_OOB));
	r = R("recv.rest", 0, recv(s, b, sizeof(b), 0));
	out("recv.rest %s", hexdata(b, r));
	R("recv.OOB.none", 0, recv(s, b, 1, MSG_OOB));
	/* The other way, and SO_OOBINLINE. */
	v = 1;
	R("setsockopt.SO_OOBINLINE", 0, setsockopt(c, SOL_SOCKET, SO_OOBINLINE, &v, sizeof(v)));
	R("send.s.12", 0, send(s, "12", 2, 0));
	R("send.s.OOB", 0, send(s, "Y", 1, MSG_OOB));
	R("send.s.34", 0, send(s, "34", 2, 0));
	conf_sleep_ms(50);
	conf_poll1("poll.urgent.inline", c, POLLIN | POLLPRI, 0);
	R("recv.OOB.inline", 0, recv(c, b, 1, MSG_OOB));
	r = R("recv.inline.1", 0, recv(c, b, sizeof(b), 0));
	out("recv.inline.1 %s", hexdata(b, r));
	r = R("recv.inline.2", 0, recv(c, b, sizeof(b), MSG_DONTWAIT));
	out("recv.inline.2 %s", hexdata(b, r));
	R("write.after", 0, write(c, "after", 5));
	conf_hear("recv.after", s, 5, 0, 0);
}

static void sc_errqueue(void)
{
	char d[8], ctl[64];
	struct iovec v = {d, sizeof(d)};
	struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};

	R("recvmsg.ERRQUEUE.idle", 0, recvmsg(c, &m, MSG_ERRQUEUE));
	R("recv.ERRQUEUE.idle", 0, recv(s, d, sizeof(d), MSG_ERRQUEUE));
	conf_poll1("poll.idle", c, PALL, 0);
	write(c, "data", 4);
	conf_sleep_ms(20);
	R("recvmsg.ERRQUEUE.with-data", 0, recvmsg(s, &m, MSG_ERRQUEUE));
	conf_hear("recv.data-still-there", s, 4, 0, 0);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} sc[] = {{"sendfile", sc_sendfile}, {"splice", sc_splice},	  {"sendmmsg", sc_sendmmsg},
		  {"recvmmsg", sc_recvmmsg}, {"zerocopy", sc_zerocopy}, {"oob", sc_oob},
		  {"errqueue", sc_errqueue}};

	conf_init();
	if (argc != 2)
		conf_fatal("usage: conf_zc SUBCOMMAND");
	l = conf_listen(conf_port, 16);
	conf_pair(l, conf_port, &c, &s);
	for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++)
		if (!strcmp(argv[1], sc[i].name)) {
			out("scenario zc %s", argv[1]);
			sc[i].fn();
			conf_end();
		}
	conf_fatal("unknown subcommand %s", argv[1]);
}
