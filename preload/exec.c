/* SPDX-License-Identifier: MIT */
/*
 * Interposers: exec and posix_spawn (execve, execv, execvp, execvpe,
 * execl, execlp, execle, fexecve, posix_spawn, posix_spawnp).
 *
 * A socket without FD_CLOEXEC that carries a link survives the exec, and
 * the new image finds its link again (upgrade.h, LOOKUP) only if it has
 * the preload. A program that runs a child with an environment of its own
 * (env -i, Python's subprocess with env=...) would drop LD_PRELOAD and
 * MPKLINK_*, and the child would read a stream that only the ring carries:
 * it would wait forever. So when links are inherited, the child's
 * environment gets back the preload and the settings this image started
 * with; otherwise it is left exactly as given.
 *
 * May call: fdtab.h, conn.h, process.h, real.h, log.h.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "fdtab.h"
#include "log.h"
#include "process.h"
#include "real.h"
#include "settings.h"

extern char **environ;

/*
 * What this image started with, to give back: LD_PRELOAD and MPKLINK_*.
 * Pointers to the strings the kernel put on the stack, which setenv and
 * unsetenv never free; no malloc here, as the start may run inside the
 * program's allocator's own start (jemalloc calls syscall() then).
 */
#define START_MAX 48
static char *start_env[START_MAX];
static size_t nstart;

void exec_start(void)
{
	static char execed[] = "MPKLINK_EXECED=1";

	for (char **e = environ; e && *e && nstart < START_MAX - 1; e++)
		if ((!strncmp(*e, "MPKLINK_", 8) && strncmp(*e, "MPKLINK_EXECED=", 15)) ||
		    !strncmp(*e, "LD_PRELOAD=", 11))
			start_env[nstart++] = *e;
	/* The image after an exec is one a process of ours started. */
	start_env[nstart++] = execed;
}

/* Whether the image to come inherits a link's socket. Each such link is
 * marked as held by another process too (conn_maybe_shared): a vfork or
 * posix_spawn child runs no fork handler, and its close must not make the
 * launcher forget a link the new image is about to look up. (A vfork
 * child's store lands in its parent's memory, which is what is meant.) */
static int inherits_link(void)
{
	int high = fdtab_high(), any = 0;

	for (int fd = 0; fd < high; fd++) {
		struct fdobj *o = fdtab_peek(fd);
		int fl;

		if (!o || o->kind != FDO_CONN || !ufd_of(o)->link)
			continue;
		fl = real.fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC)) {
			__atomic_store_n(&ufd_of(o)->passed, 1, __ATOMIC_RELAXED);
			any = 1;
		}
	}
	return any;
}

static const char *env_get(char *const *envp, const char *kv)
{
	size_t n = strcspn(kv, "=") + 1;

	for (; envp && *envp; envp++)
		if (!strncmp(*envp, kv, n))
			return *envp;
	return NULL;
}

/*
 * envp, or a copy with what this image started with where envp lacks it
 * (LD_PRELOAD: ours first, the child's own kept after it), when a link is
 * inherited. *fresh: the copy to free after a failed exec.
 */
static char *const *exec_env(char *const *envp, char ***fresh)
{
	size_t n = 0, k = 0;
	char **out;

	*fresh = NULL;
	if (!cfg.enabled || !inherits_link() || !nstart)
		return envp;
	for (char *const *e = envp; e && *e; e++)
		n++;
	out = calloc(n + nstart + 1, sizeof(*out));
	if (!out)
		return envp;
	for (char *const *e = envp; e && *e; e++)
		out[k++] = *e;
	for (size_t i = 0; i < nstart; i++) {
		const char *have = env_get(out, start_env[i]);

		if (!strncmp(start_env[i], "LD_PRELOAD=", 11)) {
			const char *ours = start_env[i] + 11;

			if (have && strstr(have + 11, ours))
				continue;
			/* Ours, then theirs. */
			char *both = NULL;

			if (asprintf(&both, "LD_PRELOAD=%s%s%s", ours, have ? ":" : "",
				     have ? have + 11 : "") < 0)
				continue;
			for (size_t j = 0; j < k; j++)
				if (out[j] == have)
					out[j] = both;
			if (!have)
				out[k++] = both;
			continue;
		}
		if (!have)
			out[k++] = start_env[i];
	}
	out[k] = NULL;
	slog(2, "exec with a link inherited: the preload and its settings go with it");
	*fresh = out;
	return out;
}

static int failed(char **fresh)
{
	int e = errno;

	free(fresh);
	errno = e;
	return -1;
}

/* The bodies once: a call by name inside the library would bind to the
 * exported interposer (tests/integration/hygiene.sh). */
typedef int (*exec_fn)(const char *, char *const[], char *const[]);

/* fn with the environment exec_env makes: returns only when it failed. */
static int do_exec(exec_fn fn, const char *what, char *const argv[], char *const envp[])
{
	char **fresh;
	char *const *env;

	init();
	env = exec_env(envp, &fresh);
	fn(what, argv, env);
	return failed(fresh);
}

static int do_execve(const char *path, char *const argv[], char *const envp[])
{
	return do_exec(real.execve, path, argv, envp);
}

static int do_execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_exec(real.execvpe, file, argv, envp);
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_execve(path, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	char **fresh;
	char *const *env;

	init();
	env = exec_env(envp, &fresh);
	real.fexecve(fd, argv, env);
	return failed(fresh);
}

EXPORT int execv(const char *path, char *const argv[])
{
	return do_execve(path, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_execvpe(file, argv, envp);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	return do_execvpe(file, argv, environ);
}

/* execl, execlp, execle: their arguments as an argv (and, for execle,
 * the envp after the NULL). */
#define VA_ARGV(first, ap, argv, envp_out)                                                \
	do {                                                                              \
		size_t n_ = 1;                                                            \
		va_list c_;                                                               \
		va_copy(c_, ap);                                                          \
		while (va_arg(c_, const char *))                                          \
			n_++;                                                             \
		va_end(c_);                                                               \
		argv = alloca((n_ + 1) * sizeof(*argv));                                  \
		argv[0] = (char *)(first);                                                \
		for (size_t i_ = 1; i_ <= n_; i_++)                                       \
			argv[i_] = va_arg(ap, char *);                                    \
		envp_out = (envp_out) ? va_arg(ap, char **) : NULL;                      \
	} while (0)

EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	char **argv;

	char **no_env = NULL;

	va_start(ap, arg);
	VA_ARGV(arg, ap, argv, no_env);
	va_end(ap);
	return do_execve(path, argv, environ);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	char **argv;

	char **no_env = NULL;

	va_start(ap, arg);
	VA_ARGV(arg, ap, argv, no_env);
	va_end(ap);
	return do_execvpe(file, argv, environ);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	char **argv, **envp = (char **)1; /* non-NULL: read it */

	va_start(ap, arg);
	VA_ARGV(arg, ap, argv, envp);
	va_end(ap);
	return do_execve(path, argv, envp);
}

typedef int (*spawn_fn)(pid_t *, const char *, const void *, const void *, char *const[],
			char *const[]);

static int do_spawn(spawn_fn fn, pid_t *pid, const char *what, const void *fa, const void *attr,
		    char *const argv[], char *const envp[])
{
	char **fresh;
	char *const *env = exec_env(envp, &fresh);
	int r = fn(pid, what, fa, attr, argv, env);

	free(fresh);
	return r;
}

static int posix_spawn_(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	init();
	return do_spawn(real.posix_spawn, pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	KEEP_ERRNO(int, posix_spawn_(pid, path, fa, attr, argv, envp));
}

static int posix_spawnp_(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	init();
	return do_spawn(real.posix_spawnp, pid, file, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	KEEP_ERRNO(int, posix_spawnp_(pid, file, fa, attr, argv, envp));
}
