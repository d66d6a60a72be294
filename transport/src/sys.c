/* SPDX-License-Identifier: MIT */
/* The transport's real-call table (sys.h): dlsym(RTLD_NEXT), once. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>

#include "sys.h"

static struct mpk_sys sys;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#define RESOLVE(name) sys.name = (__typeof__(sys.name))dlsym(RTLD_NEXT, #name)

static void resolve(void)
{
	RESOLVE(close);
	RESOLVE(fcntl);
	RESOLVE(syscall);
	RESOLVE(socket);
	RESOLVE(connect);
	RESOLVE(getsockopt);
	RESOLVE(send);
	RESOLVE(recv);
	RESOLVE(sendmsg);
	RESOLVE(recvmsg);
	RESOLVE(eventfd);
	RESOLVE(memfd_create);
}

const struct mpk_sys *mpk__sys(void)
{
	pthread_once(&once, resolve);
	return &sys;
}
