/* SPDX-License-Identifier: MIT */
/* Names, certificates, CA public keys, binary digests. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "keys_internal.h"

int mpk_keys_name_check(const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strnlen(name, MPK_KEYS_NAME_MAX + 1);
	if (n == 0 || n > MPK_KEYS_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	/* Names become file names: DIR/NAME.key. "ca" would be the CA's. */
	if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "ca"))
		return -EINVAL;
	return 0;
}

int mpk_keys_cert_parse(const void *buf, size_t len, struct mpk_keys_cert *out,
			const char **why)
{
	const uint8_t *p = buf;
	const char *w = NULL;
	char kind[MPK__HDR_MAX];
	unsigned version;
	size_t h, n;
	int r = -EPROTO;

	memset(out, 0, sizeof(*out));
	if (!p || mpk__hdr_split(p, len, kind, &version, &h) < 0 || strcmp(kind, MPK__KIND_CERT)) {
		w = "not a certificate (bad header)";
		goto fail;
	}
	if (version != 1) {
		r = -EPROTONOSUPPORT;
		w = "unsupported certificate version";
		goto fail;
	}
	if (len < MPK_KEYS_CERT_BYTES) {
		w = "certificate truncated";
		goto fail;
	}
	if (len > MPK_KEYS_CERT_BYTES) {
		r = -EMSGSIZE;
		w = "certificate too long";
		goto fail;
	}
	/* v1 spelled with leading zeros is not the header we sign. */
	if (h != sizeof(MPK__CERT_HDR) - 1 || memcmp(p, MPK__CERT_HDR, h)) {
		w = "not a certificate (bad header)";
		goto fail;
	}
	n = strnlen((const char *)p + MPK__CERT_O_NAME, MPK__CERT_NAME_SZ);
	if (n == MPK__CERT_NAME_SZ ||
	    !sodium_is_zero(p + MPK__CERT_O_NAME + n, MPK__CERT_NAME_SZ - n)) {
		w = "certificate name field malformed";
		goto fail;
	}
	memcpy(out->name, p + MPK__CERT_O_NAME, n);
	if (mpk_keys_name_check(out->name) < 0) {
		w = "certificate name invalid";
		goto fail;
	}
	out->not_before = (int64_t)mpk__get64(p + MPK__CERT_O_NB);
	out->not_after = (int64_t)mpk__get64(p + MPK__CERT_O_NA);
	if (out->not_before > out->not_after) {
		w = "certificate validity window inverted";
		goto fail;
	}
	memcpy(out->pk, p + MPK__CERT_O_PK, MPK_KEYS_PK_BYTES);
	memcpy(out->digest, p + MPK__CERT_O_DIG, MPK_KEYS_DIGEST_BYTES);
	memcpy(out->issuer, p + MPK__CERT_O_ISS, MPK_KEYS_PK_BYTES);
	memcpy(out->raw, p, MPK_KEYS_CERT_BYTES);
	if (why)
		*why = NULL;
	return 0;
fail:
	sodium_memzero(out, sizeof(*out));
	if (why)
		*why = w;
	return r;
}

int mpk_keys_cert_load(const char *path, struct mpk_keys_cert *out, char *why, size_t why_len)
{
	uint8_t buf[MPK_KEYS_CERT_BYTES + 1];
	const uint8_t *body;
	const char *w;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	r = mpk__read_file(path, buf, sizeof(buf), &len, 0, why, why_len);
	if (r < 0)
		return r;
	/* The file-level checks name the file and an unknown version... */
	r = mpk__file_body(path, buf, len, MPK__KIND_CERT, "certificate",
			   MPK_KEYS_CERT_BYTES - (sizeof(MPK__CERT_HDR) - 1), &body, why, why_len);
	if (r < 0)
		return r;
	/* ...the certificate's own ones say what is wrong inside. */
	r = mpk_keys_cert_parse(buf, len, out, &w);
	if (r < 0)
		mpk__why(why, why_len, "%s: %s", path, w);
	return r;
}

int mpk_keys_ca_load(const char *path, uint8_t ca_pk[MPK_KEYS_PK_BYTES], char *why,
		     size_t why_len)
{
	uint8_t buf[64];
	const uint8_t *body;
	size_t len;
	int r;

	memset(ca_pk, 0, MPK_KEYS_PK_BYTES);
	r = mpk__read_file(path, buf, sizeof(buf), &len, 0, why, why_len);
	if (r < 0)
		return r;
	r = mpk__file_body(path, buf, len, MPK__KIND_CA_PUB, "CA public key", MPK_KEYS_PK_BYTES,
			   &body, why, why_len);
	if (r < 0)
		return r;
	memcpy(ca_pk, body, MPK_KEYS_PK_BYTES);
	return 0;
}

/*
 * Certificates whose CA signature checked out, by their exact bytes and
 * the CA key. A launcher sees the same peer certificate on every link, and
 * that Ed25519 check was a tenth of an upgrade's control time
 * (docs/PERFORMANCE.md). The same bytes under the same key verify the same
 * way every time, so a hit skips only the signature; the issuer and the
 * validity window are checked on every call.
 */
#define SIG_CACHE 16
static struct {
	uint8_t raw[MPK_KEYS_CERT_BYTES];
	uint8_t ca[MPK_KEYS_PK_BYTES];
} sig_ok[SIG_CACHE];
static unsigned sig_n, sig_next;
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;

static int sig_cached(const struct mpk_keys_cert *c, const uint8_t *ca_pk)
{
	int hit = 0;

	pthread_mutex_lock(&sig_lock);
	for (unsigned i = 0; i < sig_n && !hit; i++)
		hit = !memcmp(sig_ok[i].raw, c->raw, sizeof(c->raw)) &&
		      !memcmp(sig_ok[i].ca, ca_pk, MPK_KEYS_PK_BYTES);
	pthread_mutex_unlock(&sig_lock);
	return hit;
}

static int sig_check(const struct mpk_keys_cert *c, const uint8_t *ca_pk)
{
	if (sig_cached(c, ca_pk))
		return 0;
	if (crypto_sign_verify_detached(c->raw + MPK__CERT_O_SIG, c->raw, MPK__CERT_O_SIG,
					ca_pk) != 0)
		return -1;
	pthread_mutex_lock(&sig_lock);
	memcpy(sig_ok[sig_next].raw, c->raw, sizeof(c->raw));
	memcpy(sig_ok[sig_next].ca, ca_pk, MPK_KEYS_PK_BYTES);
	sig_next = (sig_next + 1) % SIG_CACHE;
	if (sig_n < SIG_CACHE)
		sig_n++;
	pthread_mutex_unlock(&sig_lock);
	return 0;
}

int mpk_keys_cert_verify(const struct mpk_keys_cert *c, const uint8_t ca_pk[MPK_KEYS_PK_BYTES],
			 int64_t now, const char **why)
{
	const char *w = NULL;
	int r = 0;

	if (mpk__sodium() < 0) {
		r = -EIO;
		w = "libsodium failed to initialise";
	} else if (memcmp(c->issuer, ca_pk, MPK_KEYS_PK_BYTES)) {
		/* The issuer field only picks the message: the signature
		 * below is checked against ca_pk either way. */
		r = -EKEYREJECTED;
		w = "certificate issued by another CA";
	} else if (sig_check(c, ca_pk) != 0) {
		r = -EBADMSG;
		w = "certificate signature invalid (tampered?)";
	} else if (now > c->not_after) {
		r = -EKEYEXPIRED;
		w = "certificate expired";
	} else if (now < c->not_before) {
		r = -ETIME;
		w = "certificate not yet valid";
	}
	if (why)
		*why = w;
	return r;
}

int mpk_keys_digest_fd(int fd, uint8_t digest[MPK_KEYS_DIGEST_BYTES])
{
	crypto_hash_sha256_state h;
	uint8_t buf[16384]; /* modest: launcher threads may have small stacks */
	struct stat st;
	off_t off = 0;
	int r = 0;

	memset(digest, 0, MPK_KEYS_DIGEST_BYTES);
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (mpk__sodium() < 0)
		return -EIO;
	crypto_hash_sha256_init(&h);
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
		off += n;
	}
	if (r == 0)
		crypto_hash_sha256_final(&h, digest);
	return r;
}

int mpk_keys_cert_check_binary(const struct mpk_keys_cert *c, const char *path, char *why,
			       size_t why_len)
{
	uint8_t d[MPK_KEYS_DIGEST_BYTES];
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0) {
		r = -errno;
		mpk__why(why, why_len, "%s: cannot read the binary: %s", path, strerror(-r));
		return r;
	}
	r = mpk_keys_digest_fd(fd, d);
	close(fd);
	if (r < 0) {
		mpk__why(why, why_len, "%s: cannot read the binary: %s", path,
			 r == -EINVAL ? "not a regular file" : strerror(-r));
		return r;
	}
	if (memcmp(d, c->digest, sizeof(d))) {
		mpk__why(why, why_len,
			 "%s: SHA-256 differs from the one in %s's certificate (another or a "
			 "changed binary)",
			 path, c->name);
		return -EPERM;
	}
	return 0;
}

int mpk__cert_make(struct mpk__signer *ca, const char *name, const uint8_t pk[MPK_KEYS_PK_BYTES],
		   const uint8_t digest[MPK_KEYS_DIGEST_BYTES], int64_t not_before,
		   int64_t not_after, struct mpk_keys_cert *out)
{
	uint8_t raw[MPK_KEYS_CERT_BYTES] = {0};
	int r;

	memset(out, 0, sizeof(*out));
	if (mpk_keys_name_check(name) < 0 || not_before > not_after)
		return -EINVAL;
	memcpy(raw, MPK__CERT_HDR, sizeof(MPK__CERT_HDR) - 1);
	memcpy(raw + MPK__CERT_O_NAME, name, strlen(name));
	memcpy(raw + MPK__CERT_O_PK, pk, MPK_KEYS_PK_BYTES);
	memcpy(raw + MPK__CERT_O_DIG, digest, MPK_KEYS_DIGEST_BYTES);
	mpk__put64(raw + MPK__CERT_O_NB, (uint64_t)not_before);
	mpk__put64(raw + MPK__CERT_O_NA, (uint64_t)not_after);
	memcpy(raw + MPK__CERT_O_ISS, mpk__signer_pk(ca), MPK_KEYS_PK_BYTES);
	r = mpk__signer_sign(ca, raw, MPK__CERT_O_SIG, raw + MPK__CERT_O_SIG);
	if (r < 0)
		return r;
	/* Through the parser, so what we write is what we would accept. */
	return mpk_keys_cert_parse(raw, sizeof(raw), out, NULL) < 0 ? -EINVAL : 0;
}
