/* SPDX-License-Identifier: MIT */
/*
 * mpklink-run: runs a program with its configured TCP connections upgraded
 * to shared memory. Reads the env files and checks them and its environment
 * (mpklink/config.h), checks and holds the run directory, runs the control
 * plane as threads of its own, starts the program as its child with the
 * shim preloaded (the child dies with it), forwards signals, and exits with
 * the program's status.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "ctl_server.h"
#include "mpklink/config.h"
#include "mpklink/keys.h"
#include "mpklink/ring.h"

/* --help and --check name the default ring size as text. */
_Static_assert(MPK_LINK_RING_DEFAULT == 4u << 20, "say the new default in the help text");

#define EXIT_USAGE 2

static const char usage[] =
	"usage: mpklink-run [-e ENVFILE]... [--] PROGRAM [ARGS...]\n"
	"       mpklink-run --check [-e ENVFILE]... [PROGRAM]\n"
	"       mpklink-run --help | --version\n"
	"\n"
	"Runs PROGRAM with its TCP connections to the endpoints named in\n"
	"MPKLINK_ENDPOINTS upgraded to shared memory, when the other side runs under\n"
	"mpklink-run too; every other connection, and every connection to a peer that\n"
	"does not, stays plain TCP.\n"
	"\n"
	"  -e, --env-file FILE  read KEY=VALUE lines (and # comments) from FILE;\n"
	"                       repeatable, later files win; variables already in the\n"
	"                       environment win over every file\n"
	"  --check              say what is in force and what cannot work, then exit\n"
	"                       (non-zero when the configuration is unusable)\n"
	"\n"
	"Keys (in the file or the environment):\n"
	"  MPKLINK_ENDPOINTS   host:port,...  each port once. A loopback or wildcard host\n"
	"                      matches any loopback address; another address (a server\n"
	"                      in another network namespace sharing MPKLINK_RUNDIR)\n"
	"                      matches itself, and a server's must be its own\n"
	"  MPKLINK_RUNDIR      rendezvous directory, 0700 and yours, every directory above\n"
	"                      it root's or yours and writable by no one else unless sticky\n"
	"                      (default $XDG_RUNTIME_DIR/mpklink, else /tmp/mpklink-$UID)\n"
	"  MPKLINK_FALLBACK    tcp (default) or deny: what to do when no link can be made\n"
	"                      (deny: a client's connect fails; a server's port takes links\n"
	"                      only, any other connection is reset before it is read)\n"
	"  MPKLINK_RING_BYTES  ring size per direction, a power of two, 4096..1G\n"
	"                      (suffixes K, M, G; default 4M)\n"
	"  MPKLINK_GUARD       auto (default), mpk or off: the MPK guard of the rings\n"
	"  MPKLINK_LOG         error, warn (default), info or debug\n"
	"  MPKLINK_STATS       stderr (or 1) or a file: per-process link counters at exit\n"
	"  MPKLINK_SPIN_US     microseconds a waiting call watches the rings before it\n"
	"                      sleeps (0..1000000; 0: never spin; default 50)\n"
	"  MPKLINK_SPIN_MAX_US how far a thread's spin may grow when its waits keep\n"
	"                      ending just after it (0..1000000; default 400)\n"
	"  MPKLINK_IDENTITY    D/NAME: this service's identity (D/NAME.key, D/NAME.cert,\n"
	"                      made by mpklink-keys); PROGRAM must be the binary the\n"
	"                      certificate names (else exit 126, nothing runs)\n"
	"  MPKLINK_TRUST       the CA's public key (D/ca.pub), needed with an identity\n"
	"  MPKLINK_ALLOW       PORT:NAME[|NAME...],...  client identities allowed to link\n"
	"                      to our ports (* = any the CA signed; default: any);\n"
	"                      needs MPKLINK_IDENTITY\n"
	"  MPKLINK_INTEGRITY   off (default) or mac: every ring frame carries a MAC under\n"
	"                      the handshake's session key (needs MPKLINK_IDENTITY);\n"
	"                      a server with mac makes all its links so\n"
	"  In MPKLINK_ENDPOINTS, HOST:PORT=NAME also requires the server there to be NAME.\n"
	"Other KEY=VALUE lines are passed to PROGRAM's environment (a name that looks\n"
	"like a key, MPKLNK_LOG or mpklink_log, with a warning). Files and the\n"
	"environment are checked alike: an unknown MPKLINK_ key is an error in both.\n"
	"If mpklink-run dies, even by SIGKILL, PROGRAM is killed too.\n"
	"\n"
	"Exit status: PROGRAM's; 128+N if it was killed by signal N; 2 for a bad\n"
	"command line or configuration (PROGRAM is not started); 126/127 when PROGRAM\n"
	"cannot be executed or found.\n"
	"Programs that bypass libc (Go binaries, static binaries) are not upgraded.\n";

/* MPKLINK_ALLOW's syntax is keys/' (mpklink/config.h leaves it to us). */
static int check_allow(void *ctx, const char *key, const char *v, char *why, size_t whylen)
{
	struct mpk_keys_allow *a = NULL;

	(void)ctx;
	if (strcmp(key, "MPKLINK_ALLOW"))
		return 0;
	if (mpk_keys_allow_parse(v, &a, why, whylen) < 0)
		return -EINVAL;
	mpk_keys_allow_free(a);
	return 0;
}

static void warn_line(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "mpklink-run: warning: %s\n", line);
}

static const struct mpk_config_hooks hooks = {.check = check_allow, .warn = warn_line};

/* The spin settings as the shim takes them (checked already). */
static void print_spin(void)
{
	long base = mpk_us_parse(getenv("MPKLINK_SPIN_US"));
	long max = mpk_us_parse(getenv("MPKLINK_SPIN_MAX_US"));

	if (base < 0)
		base = MPK_SPIN_US_DEFAULT;
	if (max < 0)
		max = MPK_SPIN_MAX_US_DEFAULT;
	if (max > base)
		printf("  waiting:    spin %ld us on the rings, up to %ld us where waits keep "
		       "ending just after a spin; then doorbells\n", base, max);
	else
		printf("  waiting:    spin %ld us on the rings, then doorbells\n", base);
}

/* Where each MPKLINK_ setting in force came from: "FILE:LINE", or the
 * environment (no entry), for the messages about settings together. */
static struct {
	char key[32];
	char where[288];
} origin[32];
static size_t norigin;

static const char *origin_of(const char *key)
{
	for (size_t i = 0; i < norigin; i++)
		if (!strcmp(origin[i].key, key))
			return origin[i].where;
	return "environment";
}

struct file_ctx {
	const char *path;
	char **snapshot; /* the environment before any file: it wins */
};

static int put_setting(void *ctx, const char *key, const char *val, unsigned line)
{
	const struct file_ctx *fc = ctx;
	size_t k = strlen(key), i;

	for (char **e = fc->snapshot; *e; e++)
		if (!strncmp(*e, key, k) && (*e)[k] == '=')
			return 0;
	if (setenv(key, val, 1) < 0)
		return -errno;
	if (strncmp(key, "MPKLINK_", 8) || k >= sizeof(origin[0].key))
		return 0;
	for (i = 0; i < norigin && strcmp(origin[i].key, key); i++)
		;
	if (i == sizeof(origin) / sizeof(origin[0]))
		return 0;
	if (i == norigin)
		norigin++;
	snprintf(origin[i].key, sizeof(origin[i].key), "%s", key);
	snprintf(origin[i].where, sizeof(origin[i].where), "%s:%u", fc->path, line);
	return 0;
}

#define ENV_FILE_MAX (1 << 20)

/*
 * Reads an env file into the environment (mpk_config_parse_file's rules),
 * without overriding variables the environment already had before any file
 * was read (snapshot[]). A pipe is fine (-e <(...)); a directory is not.
 * Returns 0, or -1 after printing "FILE[:LINE]: what is wrong".
 */
static int read_env_file(const char *path, char **snapshot)
{
	struct file_ctx fc = {.path = path, .snapshot = snapshot};
	struct mpk_config_hooks h = hooks;
	char err[1024], *buf;
	struct stat st;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), r;

	if (fd < 0) {
		fprintf(stderr, "mpklink-run: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mpklink-run: %s: %s\n", path,
			S_ISDIR(st.st_mode) ? "is a directory, not an env file" : strerror(errno));
		close(fd);
		return -1;
	}
	buf = malloc(ENV_FILE_MAX);
	if (!buf) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, ENV_FILE_MAX - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "mpklink-run: %s: %s\n", path, strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == ENV_FILE_MAX) {
			fprintf(stderr, "mpklink-run: %s: larger than %d bytes: not an env file\n",
				path, ENV_FILE_MAX);
			free(buf);
			close(fd);
			return -1;
		}
	}
	close(fd);
	h.ctx = &fc;
	r = mpk_config_parse_file(path, buf, len, put_setting, &h, err, sizeof(err));
	free(buf);
	if (r < 0) {
		fprintf(stderr, "mpklink-run: %s\n", err);
		return -1;
	}
	return 0;
}

static const char *get_env(const char *key)
{
	return getenv(key);
}

/* The environment's own MPKLINK_ values are held to the same rules (the
 * files' were checked as they were read), then the settings together. */
static int check_environment(char **snapshot)
{
	char err[1024];
	const char *key, *why, *v;

	if (mpk_config_check_environ(snapshot, &hooks, err, sizeof(err)) < 0) {
		fprintf(stderr, "mpklink-run: %s\n", err);
		return -1;
	}
	if (mpk_config_check_together(get_env, &key, &why) < 0) {
		v = getenv(key);
		fprintf(stderr, "mpklink-run: %s: %s=%.80s%s: %s\n", origin_of(key), key, v ? v : "",
			v && strlen(v) > 80 ? "..." : "", why);
		return -1;
	}
	return 0;
}

/* PROGRAM as execvp would find it, into path. Returns 0 or -ENOENT. */
static int resolve_program(const char *prog, char *path, size_t len)
{
	const char *p;
	char *dup, *save, *dir;

	if (strchr(prog, '/')) {
		snprintf(path, len, "%s", prog);
		return 0;
	}
	p = getenv("PATH");
	dup = strdup(p ? p : "/usr/bin:/bin");
	if (!dup)
		return -ENOMEM;
	for (dir = strtok_r(dup, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, len, "%s/%s", *dir ? dir : ".", prog);
		if (access(path, X_OK) == 0) {
			free(dup);
			return 0;
		}
	}
	free(dup);
	return -ENOENT;
}

/*
 * libmpklink.so beside us (the build tree), else in the libdir found from
 * our own directory (an install under any prefix, or one moved whole, as a
 * DESTDIR staging tree is), else in the libdir fixed at build time. On
 * failure buf lists every place looked at, for the error message.
 */
static int find_shim(char *buf, size_t len)
{
	char self[PATH_MAX], cand[3][PATH_MAX], real[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;
	size_t off = 0;
	int i, k = 0, w;

	if (n > 0) {
		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			w = snprintf(cand[k], sizeof(cand[k]), "%s/libmpklink.so", self);
			if (w > 0 && (size_t)w < sizeof(cand[k]))
				k++;
			w = snprintf(cand[k], sizeof(cand[k]), "%s/%s/mpklink/libmpklink.so", self,
				     MPK_BIN_TO_LIBDIR);
			if (w > 0 && (size_t)w < sizeof(cand[k]))
				k++;
		}
	}
	w = snprintf(cand[k], sizeof(cand[k]), "%s/mpklink/libmpklink.so", MPK_LIBDIR);
	if (w > 0 && (size_t)w < sizeof(cand[k]))
		k++;
	for (i = 0; i < k; i++) {
		if (access(cand[i], R_OK) != 0)
			continue;
		/* LD_PRELOAD and --check show a path without "bin/../". */
		if (!realpath(cand[i], real))
			snprintf(real, sizeof(real), "%s", cand[i]);
		if (strlen(real) >= len)
			continue;
		memcpy(buf, real, strlen(real) + 1);
		return 0;
	}
	buf[0] = 0;
	for (i = 0; i < k && off < len; i++) {
		w = snprintf(buf + off, len - off, "%s%s", i ? (i == k - 1 ? " nor " : ", ") : "",
			     cand[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return -ENOENT;
}

static void resolve_rundir(char *buf, size_t len)
{
	const char *d = getenv("MPKLINK_RUNDIR");

	if (d && *d)
		snprintf(buf, len, "%s", d);
	else
		mpk_rundir_default(buf, len);
}

/* What LD_PRELOAD cannot reach. Returns a reason, or NULL. */
static const char *unreachable(const char *prog)
{
	static char why[200];
	char path[PATH_MAX];
	Elf64_Ehdr eh;
	int fd, has_interp = 0, go = 0;

	if (!strchr(prog, '/')) {
		/* Look it up the way execvp will. */
		const char *p = getenv("PATH");
		char *dup = strdup(p ? p : "/usr/bin:/bin"), *save, *dir;
		path[0] = 0;
		for (dir = strtok_r(dup, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
			snprintf(path, sizeof(path), "%s/%s", dir, prog);
			if (access(path, X_OK) == 0)
				break;
			path[0] = 0;
		}
		free(dup);
		if (!path[0])
			return NULL;
	} else {
		snprintf(path, sizeof(path), "%s", prog);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64) {
		close(fd);
		return NULL; /* a script: its interpreter is what runs */
	}
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize)) !=
		    sizeof(ph))
			break;
		has_interp |= ph.p_type == PT_INTERP;
	}
	/* Go's linker leaves its build ID note near the start; its build info
	 * can be anywhere in the first 64 MiB. This runs at every launch:
	 * memmem, not a compare per byte. */
	{
		char b[65536];
		ssize_t n = pread(fd, b, 4096, 0);
		go = n > 0 && memmem(b, (size_t)n, "Go build ID:", 12);
		for (off_t off = 0; !go && off <= (64 << 20); off += n - 14) {
			n = pread(fd, b, sizeof(b), off);
			if (n <= 14)
				break;
			go = memmem(b, (size_t)n, "\xff Go buildinf:", 14) != NULL;
		}
	}
	close(fd);
	if (go) {
		snprintf(why, sizeof(why), "%s is a Go binary: it makes raw system calls that "
					   "LD_PRELOAD cannot see; its connections stay plain TCP", path);
		return why;
	}
	if (!has_interp) {
		snprintf(why, sizeof(why), "%s is statically linked: LD_PRELOAD cannot reach it; "
					   "its connections stay plain TCP", path);
		return why;
	}
	return NULL;
}

static int check_main(int argc, char **argv)
{
	struct mpk_guard_status g;
	struct mpk_endpoint ports[MPK_MAX_ENDPOINTS];
	char host[64];
	char rundir[256], shim[PATH_MAX], rwhy[512];
	const char *bad, *eps = getenv("MPKLINK_ENDPOINTS");
	int unusable = 0, n, r;

	printf("mpklink-run --check\n");
	mpk_guard_status(&g);
	printf("  guard:      %s (MPKLINK_GUARD=%s; CPU PKU %s, OS PKE %s)\n", g.reason,
	       getenv("MPKLINK_GUARD") ? getenv("MPKLINK_GUARD") : "auto", g.cpu_pku ? "yes" : "no",
	       g.os_pke ? "yes" : "no");
	if (mpk_guard_init_env() < 0) {
		printf("  UNUSABLE:   MPKLINK_GUARD=mpk but the MPK guard is unavailable here\n");
		unusable = 1;
	}
	resolve_rundir(rundir, sizeof(rundir));
	r = mpk_rundir_open(rundir, 0, NULL, 0, rwhy, sizeof(rwhy));
	if (r == -ENOENT) {
		printf("  run dir:    %s (created, 0700, at start)\n", rundir);
	} else if (r < 0) {
		printf("  UNUSABLE:   run directory: %s\n", rwhy);
		unusable = 1;
	} else {
		printf("  run dir:    %s (ok: 0700, yours; every directory above it root's or "
		       "yours, writable by nobody else)\n", rundir);
		close(r);
	}
	n = mpk_endpoints_parse(eps, ports, MPK_MAX_ENDPOINTS, &bad);
	if (n < 0) {
		printf("  UNUSABLE:   MPKLINK_ENDPOINTS malformed at \"%s\"\n", bad);
		unusable = 1;
	} else if (n == 0) {
		printf("  endpoints:  none: every connection stays plain TCP\n");
	} else {
		printf("  endpoints: ");
		for (int i = 0; i < n; i++)
			printf(" %s%s:%u", i ? ", " : "", mpk_endpoint_host(&ports[i], host, sizeof(host)),
			       ports[i].port);
		printf("\n");
	}
	if (getenv("MPKLINK_IDENTITY") && *getenv("MPKLINK_IDENTITY")) {
		struct mpk_auth *a = NULL;
		char awhy[512];

		if (mpk_auth_load(getenv("MPKLINK_IDENTITY"), getenv("MPKLINK_TRUST"),
				  getenv("MPKLINK_ALLOW"), getenv("MPKLINK_ENDPOINTS"), &a, awhy,
				  sizeof(awhy)) < 0) {
			printf("  UNUSABLE:   identity: %s\n", awhy);
			unusable = 1;
		} else {
			printf("  identity:   \"%s\" (%s), peers checked against %s\n",
			       mpk_auth_name(a), getenv("MPKLINK_IDENTITY"), getenv("MPKLINK_TRUST"));
			printf("  allow:      %s\n", mpk_auth_has_allow(a)
							    ? getenv("MPKLINK_ALLOW")
							    : "any identity the CA signed (no MPKLINK_ALLOW)");
			if (argc > 0) {
				char path[PATH_MAX];
				int fd = resolve_program(argv[0], path, sizeof(path)) == 0
						 ? open(path, O_RDONLY | O_CLOEXEC)
						 : -1;
				if (fd < 0 || mpk_auth_check_binary(a, fd, path, awhy, sizeof(awhy)) < 0) {
					printf("  UNUSABLE:   %s\n",
					       fd < 0 ? "the program cannot be read to check it" : awhy);
					unusable = 1;
				} else {
					printf("  binary:     %s matches the certificate\n", path);
				}
				if (fd >= 0)
					close(fd);
			}
			mpk_auth_free(a);
		}
	} else {
		printf("  identity:   none: peers are trusted by same uid (SO_PEERCRED)\n");
	}
	printf("  ring:       %s bytes per direction\n",
	       getenv("MPKLINK_RING_BYTES") ? getenv("MPKLINK_RING_BYTES") : "4M");
	printf("  fallback:   %s\n", getenv("MPKLINK_FALLBACK") ? getenv("MPKLINK_FALLBACK") : "tcp");
	if (getenv("MPKLINK_SPIN_US") && !strcmp(getenv("MPKLINK_SPIN_US"), "0"))
		printf("  waiting:    on doorbells only (MPKLINK_SPIN_US=0)\n");
	else
		print_spin();
	if (find_shim(shim, sizeof(shim)) < 0) {
		printf("  UNUSABLE:   libmpklink.so not found: not at %s\n", shim);
		unusable = 1;
	} else {
		printf("  shim:       %s\n", shim);
	}
	printf("  limits:     Go binaries and statically linked binaries bypass LD_PRELOAD;\n"
	       "              their connections stay plain TCP\n");
	if (argc > 0) {
		const char *u = unreachable(argv[0]);
		printf("  program:    %s\n", u ? u : argv[0]);
		if (u)
			unusable = 1;
	}
	printf("%s\n", unusable ? "configuration: UNUSABLE" : "configuration: ok");
	return unusable ? 1 : 0;
}

/*
 * Waits for the child, forwarding SIGINT, SIGTERM and SIGHUP to it. The
 * signals are blocked in every thread and taken here synchronously: no
 * handler runs in the middle of anything. Returns the wait status.
 */
static int supervise(pid_t pid, const sigset_t *set)
{
	siginfo_t si;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR) {
			perror("mpklink-run: waitpid");
			return 1 << 8;
		}
		if (sigwaitinfo(set, &si) < 0)
			continue;
		/* A terminal's ^C reached the child's process group already. */
		if (si.si_signo != SIGCHLD && si.si_code != SI_KERNEL)
			kill(pid, si.si_signo);
	}
}

static int run_main(int argc, char **argv)
{
	struct mpk_ctl_config cc = {0};
	struct mpk_ctl *ctl = NULL;
	struct mpk_auth *auth = NULL;
	sigset_t set, oldmask;
	char given[256], rundir[256], shim[PATH_MAX], *preload, prog[PATH_MAX], why[768];
	const char *old, *u, *ring, *bad, *idv = getenv("MPKLINK_IDENTITY");
	int r, status, pipefd[2], progfd = -1;
	pid_t pid, launcher;

	if (find_shim(shim, sizeof(shim)) < 0) {
		fprintf(stderr, "mpklink-run: libmpklink.so not found: not at %s\n", shim);
		return EXIT_USAGE;
	}
	r = mpk_guard_init_env();
	if (r < 0) {
		fprintf(stderr, "mpklink-run: MPKLINK_GUARD=mpk but the MPK guard is unavailable "
				"here (no PKU); run mpklink-run --check\n");
		return EXIT_USAGE;
	}
	u = unreachable(argv[0]);
	if (u)
		fprintf(stderr, "mpklink-run: warning: %s\n", u);
	if (idv && *idv) {
		r = mpk_auth_load(idv, getenv("MPKLINK_TRUST"), getenv("MPKLINK_ALLOW"),
				  getenv("MPKLINK_ENDPOINTS"), &auth, why, sizeof(why));
		if (r < 0) {
			fprintf(stderr, "mpklink-run: identity: %s; nothing started\n", why);
			return EXIT_USAGE;
		}
		/* The file we check is the file we run (fexecve): no swap between. */
		if (resolve_program(argv[0], prog, sizeof(prog)) < 0) {
			fprintf(stderr, "mpklink-run: cannot run %s: not found\n", argv[0]);
			mpk_auth_free(auth);
			return 127;
		}
		progfd = open(prog, O_RDONLY | O_CLOEXEC);
		if (progfd < 0) {
			fprintf(stderr, "mpklink-run: cannot run %s: %s\n", prog, strerror(errno));
			mpk_auth_free(auth);
			return errno == ENOENT ? 127 : 126;
		}
		r = mpk_auth_check_binary(auth, progfd, prog, why, sizeof(why));
		if (r < 0) {
			fprintf(stderr, "mpklink-run: %s (MPKLINK_IDENTITY=%s); not started\n", why, idv);
			close(progfd);
			mpk_auth_free(auth);
			return 126;
		}
		cc.auth = mpk_auth_ops(auth);
		if (getenv("MPKLINK_INTEGRITY") && !strcmp(getenv("MPKLINK_INTEGRITY"), "mac"))
			cc.link_flags = MPK_LINK_MAC;
		/* The program needs none of it; the key stays here. */
		unsetenv("MPKLINK_IDENTITY");
		unsetenv("MPKLINK_TRUST");
		unsetenv("MPKLINK_ALLOW");
	} else if (getenv("MPKLINK_ENDPOINTS") && *getenv("MPKLINK_ENDPOINTS")) {
		const char *l = getenv("MPKLINK_LOG");
		if (!l || mpk_log_level_parse(l) >= 1)
			fprintf(stderr, "mpklink-run: no MPKLINK_IDENTITY: links are made with any "
					"launcher of this user (same uid), unauthenticated\n");
	}
	resolve_rundir(given, sizeof(given));
	/* Checked once, then held: every socket is made through this fd. */
	cc.rundir_fd = mpk_rundir_open(given, 1, rundir, sizeof(rundir), why, sizeof(why));
	if (cc.rundir_fd < 0) {
		fprintf(stderr, "mpklink-run: run directory: %s; nothing started\n", why);
		mpk_auth_free(auth);
		return EXIT_USAGE;
	}
	ring = getenv("MPKLINK_RING_BYTES");
	if (ring && mpk_ring_bytes_parse(ring, &cc.ring_bytes) < 0)
		cc.ring_bytes = 0; /* checked in main */
	cc.rundir = rundir;
	r = mpk_endpoints_parse(getenv("MPKLINK_ENDPOINTS"), cc.eps, MPK_MAX_ENDPOINTS, &bad);
	cc.neps = r > 0 ? (size_t)r : 0; /* checked in main */
	cc.log_level = mpk_log_level_parse(getenv("MPKLINK_LOG")); /* checked in main */
	cc.log_name = "mpklink-run";
	/* Before any thread exists, so that all of them inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, &oldmask);
	r = mpk_ctl_start(&cc, &ctl);
	if (r < 0) {
		fprintf(stderr, "mpklink-run: run directory %s: %s; nothing started\n", rundir,
			strerror(-r));
		mpk_auth_free(auth);
		return EXIT_USAGE;
	}
	old = getenv("LD_PRELOAD");
	if (asprintf(&preload, "%s%s%s", shim, old && *old ? ":" : "", old ? old : "") < 0)
		return EXIT_USAGE;
	setenv("LD_PRELOAD", preload, 1);
	free(preload);
	setenv("MPKLINK_CTL", mpk_ctl_path(ctl), 1);
	{
		/* The shim talks only to the process listening there: us. */
		char pidbuf[16];

		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("MPKLINK_CTL_PID", pidbuf, 1);
	}
	/* Ours for this program; an image of an earlier one's, not. */
	unsetenv("MPKLINK_EXECED");
	setenv("MPKLINK_GUARD_SAID", "1", 1);
	setenv("MPKLINK_RUNDIR", rundir, 1);

	/* The exec's failure comes back through a close-on-exec pipe. */
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		perror("mpklink-run: pipe");
		mpk_ctl_stop(ctl);
		return EXIT_USAGE;
	}
	launcher = getpid();
	pid = fork();
	if (pid < 0) {
		perror("mpklink-run: fork");
		mpk_ctl_stop(ctl);
		return EXIT_USAGE;
	}
	if (pid == 0) {
		int e;
		close(pipefd[0]);
		/* The program follows its launcher: killed with -9, the launcher
		 * takes its control plane and rendezvous with it, and a program
		 * left behind (PPID 1) could make no more links and would hold
		 * the port. The signal is kept across exec (not across a
		 * set-user-ID one). A launcher dead before the prctl is caught
		 * by getppid: we were reparented already. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != launcher)
			_exit(128 + SIGKILL);
		pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
		if (progfd >= 0) {
			fexecve(progfd, argv, environ);
			/* A script: its interpreter cannot open a close-on-exec
			 * /dev/fd; run it by path (checked a moment ago). */
			if (errno == ENOENT)
				execv(prog, argv);
		} else {
			execvp(argv[0], argv);
		}
		e = errno;
		if (write(pipefd[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(e == ENOENT ? 127 : 126);
	}
	close(pipefd[1]);
	{
		int e;
		if (read(pipefd[0], &e, sizeof(e)) == sizeof(e))
			fprintf(stderr, "mpklink-run: cannot run %s: %s\n", argv[0], strerror(e));
		close(pipefd[0]);
	}
	if (progfd >= 0)
		close(progfd);
	status = supervise(pid, &set);
	/* Its sockets closed with it: the peers saw FIN and read to EOF. */
	mpk_ctl_stop(ctl);
	mpk_auth_free(auth);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);

		/* A crash must not pass for a stop: the program's own stderr
		 * says nothing when a signal kills it. */
		if (sig != SIGTERM && sig != SIGINT && sig != SIGKILL && sig != SIGHUP &&
		    sig != SIGPIPE)
			fprintf(stderr, "mpklink-run: %s (pid %d) killed by signal %d (%s)%s\n",
				argv[0], (int)pid, sig, strsignal(sig),
				WCOREDUMP(status) ? ", core dumped" : "");
		return 128 + sig;
	}
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	char **snapshot;
	int check = 0, i, n, r;

	/* What the environment held before any file: it wins. */
	for (n = 0; environ[n]; n++)
		;
	snapshot = calloc((size_t)n + 1, sizeof(*snapshot));
	if (!snapshot)
		return EXIT_USAGE;
	for (i = 0; i < n; i++)
		snapshot[i] = strdup(environ[i]);

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("mpklink-run %s\n", MPK_VERSION);
			return 0;
		} else if (!strcmp(argv[i], "--check")) {
			check = 1;
		} else if (!strcmp(argv[i], "-e") || !strcmp(argv[i], "--env-file")) {
			if (++i == argc) {
				fprintf(stderr, "mpklink-run: %s needs a file\n%s", argv[i - 1], usage);
				return EXIT_USAGE;
			}
			if (read_env_file(argv[i], snapshot) < 0)
				return EXIT_USAGE;
		} else if (!strncmp(argv[i], "--env-file=", 11)) {
			if (read_env_file(argv[i] + 11, snapshot) < 0)
				return EXIT_USAGE;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "mpklink-run: unknown option %s\n%s", argv[i], usage);
			return EXIT_USAGE;
		} else {
			break;
		}
	}
	r = check_environment(snapshot);
	for (int k = 0; snapshot[k]; k++)
		free(snapshot[k]);
	free(snapshot);
	if (r < 0)
		return EXIT_USAGE;
	if (check)
		return check_main(argc - i, argv + i);
	if (i == argc) {
		fprintf(stderr, "mpklink-run: no program to run\n%s", usage);
		return EXIT_USAGE;
	}
	return run_main(argc - i, argv + i);
}
