/* SPDX-License-Identifier: MIT */
/*
 * The identity's secret page under real protection keys (run-vm.sh runs
 * it in QEMU -cpu max). It must carry a key of its own, not the ring
 * guard's; signing must work; and outside signing every touch faults with
 * SEGV_PKUERR naming that key, even where PROT_NONE alone would not stop
 * it (the page made readable again) and even with the ring key open.
 * Without PKU (--expect-no-pku) it checks the fallback: no pkey, a reason,
 * signing works, and PROT_NONE still faults.
 *
 * Every fault probe runs in a forked child, which reports si_code and
 * si_pkey through a pipe.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "mpklink/keys.h"
#include "mpklink/pkey.h"
#include "mpklink/ring.h"
#include "pkru.h"

#ifndef SEGV_PKUERR
#define SEGV_PKUERR 4
#endif

static int failures, checks;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	checks++;
	failures += !ok;
	printf("%s: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

struct fault {
	int faulted, code, pkey;
};

static int probe_fd = -1;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	struct fault f = {1, si->si_code, si->si_pkey};

	if (write(probe_fd, &f, sizeof(f)) != sizeof(f))
		_exit(2);
	_exit(0);
}

enum probe_kind {
	P_READ,          /* as the page is: PROT_NONE + pkey */
	P_WRITE,
	P_READABLE,      /* mprotect(PROT_READ) first: only the pkey stands */
	P_RING_KEY_OPEN, /* readable, and the transport's ring key opened */
	P_THREAD,        /* readable, read from a thread created afterwards */
	P_OPENED,        /* readable, our key opened: the control, no fault */
};

struct probe {
	enum probe_kind kind;
	volatile uint8_t *page;
	size_t len;
	int pkey;
};

static void *thread_read(void *arg)
{
	struct probe *pr = arg;

	(void)pr->page[0];
	return NULL;
}

static void probe_child(struct probe *pr)
{
	struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
	struct fault none = {0, 0, -1};
	pthread_t t;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	if (pr->kind >= P_READABLE && mprotect((void *)pr->page, pr->len, PROT_READ) < 0)
		_exit(3);
	switch (pr->kind) {
	case P_READ:
	case P_READABLE:
		(void)pr->page[0];
		break;
	case P_WRITE:
		pr->page[0] = 0x5a;
		break;
	case P_RING_KEY_OPEN:
		mpk__guard_open();
		(void)pr->page[0];
		mpk__guard_close();
		break;
	case P_THREAD:
		if (pthread_create(&t, NULL, thread_read, pr) == 0)
			pthread_join(t, NULL);
		break;
	case P_OPENED:
		mpk_pkey_open(pr->pkey, MPK_PKEY_READ_ONLY);
		(void)pr->page[0];
		mpk_pkey_close(pr->pkey);
		break;
	}
	if (write(probe_fd, &none, sizeof(none)) != sizeof(none))
		_exit(2);
	_exit(0);
}

static struct fault probe(enum probe_kind kind, void *page, size_t len, int pkey)
{
	struct probe pr = {kind, page, len, pkey};
	struct fault f = {-1, 0, -1};
	int fds[2], st;
	pid_t pid;

	if (pipe(fds) < 0)
		return f;
	fflush(stdout);
	probe_fd = fds[1];
	pid = fork();
	if (pid == 0)
		probe_child(&pr);
	close(fds[1]);
	if (pid < 0 || read(fds[0], &f, sizeof(f)) != sizeof(f))
		f.faulted = -1;
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, &st, 0);
	return f;
}

static void expect_fault(const char *what, enum probe_kind kind, void *page, size_t len,
			 int pkey, int code)
{
	struct fault f = probe(kind, page, len, pkey);

	if (f.faulted < 0)
		check(0, "%s: the probe died without reporting", what);
	else if (!f.faulted)
		check(0, "%s: no fault: the secret page was readable", what);
	else if (code == SEGV_PKUERR)
		check(f.code == SEGV_PKUERR && f.pkey == pkey,
		      "%s faults: si_code=%d (SEGV_PKUERR=%d), si_pkey=%d (identity key %d)", what,
		      f.code, SEGV_PKUERR, f.pkey, pkey);
	else
		check(f.code == code, "%s faults: si_code=%d (want %d)", what, f.code, code);
}

static int sign_ok(struct mpk_keys_identity *id, const char *msg)
{
	uint8_t sig[MPK_KEYS_SIG_BYTES];

	if (mpk_keys_identity_sign(id, msg, strlen(msg), sig) < 0)
		return 0;
	return crypto_sign_verify_detached(sig, (const uint8_t *)msg, strlen(msg),
					   mpk_keys_identity_cert(id)->pk) == 0;
}

static void *thread_sign(void *arg)
{
	int ok = 1;

	for (int i = 0; i < 50; i++)
		ok &= sign_ok(arg, "from another thread");
	return ok ? arg : NULL;
}

static void remove_dir(const char *dir)
{
	static const char *const files[] = {"ca.key", "ca.pub", "vm.key", "vm.cert"};
	char p[512];

	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* A CA and an identity for this very binary, in a fresh directory. */
static struct mpk_keys_identity *make_identity(char *dir)
{
	char why[MPK_KEYS_WHY_MAX], base[512];
	struct mpk_keys_identity *id = NULL;
	int64_t now = (int64_t)time(NULL);
	int r;

	strcpy(dir, "/tmp/mpk-keys-vm.XXXXXX");
	if (!mkdtemp(dir)) {
		check(0, "mkdtemp: %s", strerror(errno));
		return NULL;
	}
	r = mpk_keys_ca_create(dir, 0, why, sizeof(why));
	if (r == 0)
		r = mpk_keys_issue(dir, "vm", "/proc/self/exe", now - 60, now + 3600, 0, why,
				   sizeof(why));
	snprintf(base, sizeof(base), "%s/vm", dir);
	if (r == 0)
		r = mpk_keys_identity_load(base, &id, why, sizeof(why));
	check(r == 0, "CA, issue and load an identity = %d%s%s", r, r ? ": " : "", r ? why : "");
	return id;
}

static void full_checks(void)
{
	struct mpk_guard_status st;
	struct mpk_keys_identity *id;
	const char *why = NULL;
	char dir[64];
	void *page;
	size_t len;
	pthread_t t;
	void *res;
	int k, r, ok;

	/* The ring key first, so the identity's must be another one. */
	r = mpk_guard_init(MPK_GUARD_MPK);
	mpk_guard_status(&st);
	check(r == 0 && st.active && st.pkey > 0, "ring guard on with pkey %d (%d)", st.pkey, r);
	id = make_identity(dir);
	if (!id)
		return;
	k = mpk_keys_identity_pkey(id, &why);
	check(k > 0, "identity page under pkey %d%s%s", k, why ? ": " : "", why ? why : "");
	check(k != st.pkey, "identity pkey %d is not the ring's %d", k, st.pkey);
	if (k <= 0)
		return;
	check(mpk_pkey_denied(k), "PKRU=%#x denies pkey %d after load", mpk__rdpkru(), k);
	page = mpk_keys_identity_secret_page(id, &len);

	check(sign_ok(id, "hello from the VM"), "signing works and verifies");
	check(mpk_pkey_denied(k), "PKRU=%#x denies pkey %d again after signing", mpk__rdpkru(),
	      k);
	r = pthread_create(&t, NULL, thread_sign, id);
	ok = 1;
	for (int i = 0; i < 50; i++)
		ok &= sign_ok(id, "main thread");
	check(ok, "50 signatures in the main thread while another thread signs");
	check(r == 0 && pthread_join(t, &res) == 0 && res == id,
	      "50 signatures from a second thread at the same time");

	check(probe(P_OPENED, page, len, k).faulted == 0,
	      "control: with the key opened and the page readable, a read does not fault");
	expect_fault("READ of the secret page", P_READ, page, len, k, SEGV_PKUERR);
	expect_fault("WRITE to the secret page", P_WRITE, page, len, k, SEGV_PKUERR);
	expect_fault("READ with the page made PROT_READ (only the pkey left)", P_READABLE, page,
		     len, k, SEGV_PKUERR);
	expect_fault("READ with the ring guard's key open", P_RING_KEY_OPEN, page, len, k,
		     SEGV_PKUERR);
	expect_fault("READ from a thread created later", P_THREAD, page, len, k, SEGV_PKUERR);
	check(sign_ok(id, "still signs after the probes"), "signing still works");
	mpk_keys_identity_free(id);
	remove_dir(dir);
}

static void no_pku_checks(void)
{
	struct mpk_keys_identity *id;
	const char *why = NULL;
	char dir[64];
	void *page;
	size_t len;
	int k;

	id = make_identity(dir);
	if (!id)
		return;
	k = mpk_keys_identity_pkey(id, &why);
	check(k == -ENOTSUP && why && *why, "no PKU: no pkey (%d), because: %s", k,
	      why ? why : "(no reason)");
	check(sign_ok(id, "no PKU"), "no PKU: signing works and verifies");
	page = mpk_keys_identity_secret_page(id, &len);
	expect_fault("no PKU: READ of the PROT_NONE secret page", P_READ, page, len, 0,
		     SEGV_ACCERR);
	mpk_keys_identity_free(id);
	remove_dir(dir);
}

int main(int argc, char **argv)
{
	int expect_no_pku = argc > 1 && !strcmp(argv[1], "--expect-no-pku");
	const char *why = NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 || (argc == 2 && !expect_no_pku)) {
		fprintf(stderr, "usage: %s [--expect-no-pku]\n", argv[0]);
		return 2;
	}
	if (mpk_pkey_probe(&why)) {
		printf("keys_pkey_test: PKU present: full checks\n");
		full_checks();
	} else if (expect_no_pku) {
		printf("keys_pkey_test: no PKU (%s): fallback checks only\n", why);
		no_pku_checks();
	} else {
		check(0, "no usable PKU here (%s): run under tests/mpk_vm/run-vm.sh", why);
	}
	printf("keys_pkey_test: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
