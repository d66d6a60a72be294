/* SPDX-License-Identifier: MIT */
/* Poly1305 through libcrypto's EVP_MAC: the contract is in poly1305.h. */
#include "poly1305.h"

#include <pthread.h>

#include <openssl/evp.h>

struct mpk_poly {
	EVP_MAC_CTX *ctx;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static EVP_MAC *alg; /* fetched once: a fetch looks the provider up */

static void fetch(void)
{
	alg = EVP_MAC_fetch(NULL, "POLY1305", NULL);
}

int mpk_poly_new(struct mpk_poly **out)
{
	struct mpk_poly *p;

	*out = NULL;
	pthread_once(&once, fetch);
	if (!alg)
		return -1;
	p = OPENSSL_zalloc(sizeof(*p));
	if (!p)
		return -1;
	p->ctx = EVP_MAC_CTX_new(alg);
	if (!p->ctx) {
		OPENSSL_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

void mpk_poly_free(struct mpk_poly *p)
{
	if (!p)
		return;
	EVP_MAC_CTX_free(p->ctx); /* its key state is cleansed */
	OPENSSL_free(p);
}

int mpk_poly_init(struct mpk_poly *p, const uint8_t key[MPK_POLY_KEY])
{
	return EVP_MAC_init(p->ctx, key, MPK_POLY_KEY, NULL) == 1 ? 0 : -1;
}

int mpk_poly_update(struct mpk_poly *p, const void *data, size_t n)
{
	return EVP_MAC_update(p->ctx, data, n) == 1 ? 0 : -1;
}

int mpk_poly_final(struct mpk_poly *p, uint8_t tag[MPK_POLY_TAG])
{
	size_t len = 0;

	return EVP_MAC_final(p->ctx, tag, &len, MPK_POLY_TAG) == 1 && len == MPK_POLY_TAG ? 0 : -1;
}
