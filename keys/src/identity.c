/* SPDX-License-Identifier: MIT */
/*
 * The secret key holder. One Ed25519 secret key per sodium_malloc page:
 * guard pages around it, mlocked, excluded from core dumps (libsodium),
 * PROT_NONE except while signing, and, with PKU, tagged with a protection
 * key of its own that only the signing thread opens, only around
 * crypto_sign. A stray read elsewhere in the launcher, even one running
 * with the ring key open, faults instead of leaking the key.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "keys_internal.h"
#include "mpklink/pkey.h"

struct mpk__signer {
	pthread_mutex_t lock; /* mprotect is per process: one signer at a time */
	uint8_t *sk;          /* crypto_sign_SECRETKEYBYTES in the guarded page */
	uint8_t *page;        /* the page holding sk (libsodium's canary too) */
	size_t page_len;
	int pkey;             /* > 0, or -ENOTSUP / -ENOSPC: why not */
	const char *pkey_why;
	uint8_t pk[MPK_KEYS_PK_BYTES];
};

struct mpk_keys_identity {
	struct mpk__signer *s;
	struct mpk_keys_cert cert;
};

/* libsodium's canary sits right before sk; both must be in one page for
 * the page to be exactly libsodium's unprotected region. */
#define CANARY_BYTES 16

int mpk__signer_from_seed(const uint8_t seed[MPK__SEED_BYTES], struct mpk__signer **out,
			  char *why, size_t why_len)
{
	struct mpk__signer *s = NULL;
	long psz = sysconf(_SC_PAGESIZE);
	uintptr_t page;
	int r, k;

	*out = NULL;
	r = mpk__sodium();
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->pkey = -ENOTSUP;
	s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (!s->sk) {
		r = -ENOMEM;
		mpk__why(why, why_len, "cannot allocate a guarded page for the secret key");
		goto fail;
	}
	page = (uintptr_t)s->sk & ~((uintptr_t)psz - 1);
	if ((uintptr_t)s->sk - CANARY_BYTES < page ||
	    (uintptr_t)s->sk + crypto_sign_SECRETKEYBYTES > page + (uintptr_t)psz) {
		r = -EINVAL;
		mpk__why(why, why_len, "unexpected sodium_malloc layout");
		goto fail;
	}
	s->page = (uint8_t *)page;
	s->page_len = (size_t)psz;
	/* sodium_malloc tries mlock and ignores a failure; we do not. */
	if (sodium_mlock(s->sk, crypto_sign_SECRETKEYBYTES) != 0) {
		r = -ENOMEM;
		mpk__why(why, why_len, "cannot mlock the secret key page (%s; RLIMIT_MEMLOCK?)",
			 strerror(errno));
		goto fail;
	}
	crypto_sign_seed_keypair(s->pk, s->sk, seed);
	if (sodium_mprotect_noaccess(s->sk) != 0) {
		r = -errno;
		mpk__why(why, why_len, "cannot protect the secret key page: %s", strerror(-r));
		goto fail;
	}
	k = mpk_pkey_alloc();
	if (k > 0) {
		r = mpk_pkey_mprotect(s->page, s->page_len, PROT_NONE, k);
		if (r < 0) {
			mpk_pkey_free(k);
			mpk__why(why, why_len, "cannot tag the secret key page with pkey %d: %s", k,
				 strerror(-r));
			goto fail;
		}
		s->pkey = k;
	} else {
		s->pkey = k;
		if (k == -ENOTSUP)
			mpk_pkey_probe(&s->pkey_why);
		else
			s->pkey_why = k == -ENOSPC ? "no protection key left" : "pkey_alloc failed";
		if (!s->pkey_why)
			s->pkey_why = "protection keys unavailable";
	}
	*out = s;
	return 0;
fail:
	mpk__signer_free(s);
	return r;
}

int mpk__signer_load(const char *path, const char *kind, struct mpk__signer **out, char *why,
		     size_t why_len)
{
	/* Secret bytes only ever land in guarded memory, wiped by sodium_free. */
	const size_t cap = MPK__HDR_MAX + MPK__SEED_BYTES + 1;
	uint8_t *buf = sodium_malloc(cap);
	const uint8_t *seed;
	size_t len;
	int r;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	r = mpk__read_file(path, buf, cap, &len, 1, why, why_len);
	if (r < 0)
		goto out;
	r = mpk__file_body(path, buf, len, kind,
			   strcmp(kind, MPK__KIND_CA_KEY) ? "identity secret key" : "CA secret key",
			   MPK__SEED_BYTES, &seed, why, why_len);
	if (r < 0)
		goto out;
	r = mpk__signer_from_seed(seed, out, why, why_len);
out:
	sodium_free(buf);
	return r;
}

int mpk__signer_sign(struct mpk__signer *s, const void *msg, size_t len,
		     uint8_t sig[MPK_KEYS_SIG_BYTES])
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (sodium_mprotect_readonly(s->sk) != 0) {
		r = -errno;
		goto out;
	}
	/* The window: this thread, read-only, crypto_sign and nothing else.
	 * libsodium wipes its expanded copy of the key from the stack. */
	mpk_pkey_open(s->pkey, MPK_PKEY_READ_ONLY);
	crypto_sign_detached(sig, NULL, msg, len, s->sk);
	mpk_pkey_close(s->pkey);
	if (sodium_mprotect_noaccess(s->sk) != 0)
		r = -errno;
out:
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		sodium_memzero(sig, MPK_KEYS_SIG_BYTES);
	return r;
}

const uint8_t *mpk__signer_pk(const struct mpk__signer *s)
{
	return s->pk;
}

void mpk__signer_free(struct mpk__signer *s)
{
	if (!s)
		return;
	if (s->sk) {
		/* sodium_free checks the canary and wipes the page: it must
		 * reach it. */
		mpk_pkey_open(s->pkey, 0);
		sodium_free(s->sk);
		mpk_pkey_close(s->pkey);
	}
	if (s->pkey > 0)
		mpk_pkey_free(s->pkey); /* after the unmap: nothing carries it now */
	pthread_mutex_destroy(&s->lock);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

int mpk__identity_make(struct mpk__signer *s, const struct mpk_keys_cert *cert,
		       struct mpk_keys_identity **out)
{
	struct mpk_keys_identity *id = calloc(1, sizeof(*id));

	*out = NULL;
	if (!id) {
		mpk__signer_free(s);
		return -ENOMEM;
	}
	id->s = s;
	id->cert = *cert;
	*out = id;
	return 0;
}

int mpk_keys_identity_load(const char *base, struct mpk_keys_identity **out, char *why,
			   size_t why_len)
{
	const char *name = strrchr(base, '/');
	char *kpath = NULL, *cpath = NULL;
	struct mpk__signer *s = NULL;
	struct mpk_keys_cert cert;
	int r;

	*out = NULL;
	name = name ? name + 1 : base;
	if (mpk_keys_name_check(name) < 0) {
		mpk__why(why, why_len, "%s: '%s' is not a valid identity name", base, name);
		return -EINVAL;
	}
	kpath = mpk__path(NULL, base, ".key");
	cpath = mpk__path(NULL, base, ".cert");
	if (!kpath || !cpath) {
		r = -ENOMEM;
		goto out;
	}
	r = mpk_keys_cert_load(cpath, &cert, why, why_len);
	if (r < 0)
		goto out;
	if (strcmp(cert.name, name)) {
		r = -EKEYREJECTED;
		mpk__why(why, why_len, "%s: is the certificate of '%s', not of '%s'", cpath,
			 cert.name, name);
		goto out;
	}
	r = mpk__signer_load(kpath, MPK__KIND_KEY, &s, why, why_len);
	if (r < 0)
		goto out;
	if (memcmp(s->pk, cert.pk, MPK_KEYS_PK_BYTES)) {
		r = -EKEYREJECTED;
		mpk__why(why, why_len, "%s: does not match %s (the key of another identity?)",
			 kpath, cpath);
		goto out;
	}
	r = mpk__identity_make(s, &cert, out);
	s = NULL;
out:
	mpk__signer_free(s);
	free(kpath);
	free(cpath);
	return r;
}

void mpk_keys_identity_free(struct mpk_keys_identity *id)
{
	if (!id)
		return;
	mpk__signer_free(id->s);
	free(id);
}

const struct mpk_keys_cert *mpk_keys_identity_cert(const struct mpk_keys_identity *id)
{
	return &id->cert;
}

int mpk_keys_identity_sign(struct mpk_keys_identity *id, const void *msg, size_t len,
			   uint8_t sig[MPK_KEYS_SIG_BYTES])
{
	return mpk__signer_sign(id->s, msg, len, sig);
}

int mpk_keys_identity_pkey(const struct mpk_keys_identity *id, const char **why)
{
	if (why)
		*why = id->s->pkey > 0 ? NULL : id->s->pkey_why;
	return id->s->pkey;
}

void *mpk_keys_identity_secret_page(const struct mpk_keys_identity *id, size_t *len)
{
	if (len)
		*len = id->s->page_len;
	return id->s->page;
}

int mpk_keys_identity_keep_from_children(struct mpk_keys_identity *id)
{
	/* Not even mapped in a child: a launcher forks the program it runs,
	 * and the page would otherwise sit in the child's copy of our memory
	 * until its exec. */
	return madvise(id->s->page, id->s->page_len, MADV_DONTFORK) == 0 ? 0 : -errno;
}
