/* SPDX-License-Identifier: MIT */
/* The real-call table (real.h): every interposed name, dlsym(RTLD_NEXT). */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "real.h"

struct real_calls real;

#define RESOLVE(name) real.name = (__typeof__(real.name))dlsym(RTLD_NEXT, #name)

void real_resolve(void)
{
	RESOLVE(socket); RESOLVE(connect); RESOLVE(bind); RESOLVE(listen);
	RESOLVE(accept); RESOLVE(accept4); RESOLVE(close); RESOLVE(shutdown);
	RESOLVE(dup); RESOLVE(dup2); RESOLVE(dup3); RESOLVE(fcntl); RESOLVE(ioctl);
	RESOLVE(getsockopt); RESOLVE(setsockopt); RESOLVE(read); RESOLVE(readv);
	RESOLVE(write); RESOLVE(writev); RESOLVE(recv); RESOLVE(recvfrom);
	RESOLVE(recvmsg); RESOLVE(send); RESOLVE(sendto); RESOLVE(sendmsg);
	RESOLVE(epoll_create); RESOLVE(epoll_create1); RESOLVE(epoll_ctl);
	RESOLVE(epoll_wait); RESOLVE(epoll_pwait); RESOLVE(poll); RESOLVE(ppoll);
	RESOLVE(select); RESOLVE(pselect); RESOLVE(syscall); RESOLVE(fork);
	RESOLVE(sendfile); RESOLVE(splice); RESOLVE(sendmmsg);
	RESOLVE(recvmmsg); RESOLVE(openat); RESOLVE(pipe2); RESOLVE(socketpair);
	RESOLVE(eventfd); RESOLVE(memfd_create); RESOLVE(signalfd); RESOLVE(timerfd_create);
	RESOLVE(inotify_init1); RESOLVE(fclose); RESOLVE(mkostemps); RESOLVE(tmpfile);
	RESOLVE(fopen); RESOLVE(opendir); RESOLVE(execve); RESOLVE(fexecve);
	RESOLVE(execvpe); RESOLVE(posix_spawn); RESOLVE(posix_spawnp);
}
