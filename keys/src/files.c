/* SPDX-License-Identifier: MIT */
/* Reading and writing the key files, and making a CA and identities. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "keys_internal.h"

int mpk__sodium(void)
{
	/* 0 first time, 1 after: both fine. Thread-safe by libsodium. */
	return sodium_init() < 0 ? -EIO : 0;
}

void mpk__why(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !why_len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

int mpk__hdr_split(const uint8_t *buf, size_t len, char kind[MPK__HDR_MAX], unsigned *version,
		   size_t *hdr_len)
{
	static const char pre[] = "mpklink-";
	size_t i = sizeof(pre) - 1, k = 0, digits = 0;
	unsigned long v = 0;

	kind[0] = 0;
	*version = 0;
	if (len < i || memcmp(buf, pre, i))
		return -EPROTO;
	while (i < len && ((buf[i] >= 'a' && buf[i] <= 'z') || buf[i] == '-')) {
		if (k == 16)
			return -EPROTO;
		kind[k++] = (char)buf[i++];
	}
	kind[k] = 0;
	if (!k || i + 2 > len || buf[i] != ' ' || buf[i + 1] != 'v')
		return -EPROTO;
	for (i += 2; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (++digits > 6)
			return -EPROTO;
		v = v * 10 + (unsigned long)(buf[i] - '0');
	}
	if (!digits || i >= len || buf[i] != '\n')
		return -EPROTO;
	*version = (unsigned)v;
	*hdr_len = i + 1;
	return 0;
}

int mpk__file_body(const char *path, const uint8_t *buf, size_t len, const char *kind,
		   const char *what, size_t body_len, const uint8_t **body, char *why,
		   size_t why_len)
{
	char k[MPK__HDR_MAX];
	unsigned v;
	size_t h;

	*body = NULL;
	if (mpk__hdr_split(buf, len, k, &v, &h) < 0) {
		mpk__why(why, why_len, "%s: not an mpklink %s (no \"mpklink-%s v1\" header)%s",
			 path, what, kind, len ? "" : ": the file is empty");
		return -EPROTO;
	}
	if (strcmp(k, kind)) {
		mpk__why(why, why_len, "%s: is an mpklink-%s file, not %s", path, k, what);
		return -EPROTO;
	}
	if (v != 1) {
		mpk__why(why, why_len, "%s: %s format version %u is not supported (this build reads v1)",
			 path, what, v);
		return -EPROTONOSUPPORT;
	}
	if (len - h < body_len) {
		mpk__why(why, why_len, "%s: truncated %s (%zu bytes, want %zu)", path, what, len,
			 h + body_len);
		return -EPROTO;
	}
	if (len - h > body_len) {
		mpk__why(why, why_len, "%s: oversized %s (%zu bytes or more, want %zu)", path, what,
			 len, h + body_len);
		return -EMSGSIZE;
	}
	*body = buf + h;
	return 0;
}

int mpk__read_file(const char *path, uint8_t *buf, size_t cap, size_t *len, int secret,
		   char *why, size_t why_len)
{
	struct stat st;
	size_t n = 0;
	int fd, r = 0;

	*len = 0;
	/* O_NONBLOCK: a FIFO (or a device) in a key's place would block the
	 * open until a writer came; it is refused below, at once. A regular
	 * file reads the same either way. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		mpk__why(why, why_len, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		mpk__why(why, why_len, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		mpk__why(why, why_len, "%s: not a regular file", path);
		goto out;
	}
	/* The check is on the open file, so a rename in between cannot
	 * swap in another one; and before the first byte is read. */
	if (secret && st.st_uid != geteuid()) {
		r = -EACCES;
		mpk__why(why, why_len, "%s: secret key owned by uid %u, not by us (uid %u); refusing it",
			 path, (unsigned)st.st_uid, (unsigned)geteuid());
		goto out;
	}
	if (secret && (st.st_mode & 077)) {
		r = -EACCES;
		mpk__why(why, why_len,
			 "%s: secret key is accessible by group or others (mode %04o); "
			 "refusing it. Fix: chmod 600 %s",
			 path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	while (n < cap) {
		ssize_t k = read(fd, buf + n, cap - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			mpk__why(why, why_len, "%s: %s", path, strerror(-r));
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*len = n;
out:
	close(fd);
	return r;
}

int mpk__write_file(const char *path, const void *buf, size_t len, unsigned mode, int force,
		    char *why, size_t why_len)
{
	size_t plen = strlen(path), off = 0;
	char *tmp = malloc(plen + sizeof(".tmp-XXXXXX"));
	int fd = -1, r = 0;

	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp-XXXXXX", sizeof(".tmp-XXXXXX"));
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		mpk__why(why, why_len, "%s: cannot create: %s", path, strerror(-r));
		goto out_free;
	}
	/* mkostemp made it 0600 whatever the umask; public files widen. */
	if (fchmod(fd, (mode_t)mode) < 0)
		goto fail_errno;
	while (off < len) {
		ssize_t k = write(fd, (const char *)buf + off, len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			goto fail_errno;
		off += (size_t)k;
	}
	if (fsync(fd) < 0)
		goto fail_errno;
	if (close(fd) < 0) {
		fd = -1;
		goto fail_errno;
	}
	fd = -1;
	/* link() refuses an existing target atomically; rename() replaces. */
	if (force ? rename(tmp, path) : link(tmp, path)) {
		r = -errno;
		if (r == -EEXIST)
			mpk__why(why, why_len, "%s: already exists; not overwriting it", path);
		else
			mpk__why(why, why_len, "%s: cannot write: %s", path, strerror(-r));
		goto out_unlink;
	}
	if (!force)
		unlink(tmp);
	goto out_free;
fail_errno:
	r = -errno;
	mpk__why(why, why_len, "%s: cannot write: %s", path, strerror(-r));
	if (fd >= 0)
		close(fd);
out_unlink:
	unlink(tmp);
out_free:
	free(tmp);
	return r;
}

char *mpk__path(const char *dir, const char *name, const char *suffix)
{
	size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(name) + strlen(suffix) + 1;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s%s%s", dir ? dir : "", dir ? "/" : "", name, suffix);
	return p;
}

/* -EEXIST naming the first of paths that exists (a dangling symlink
 * counts: link() would not replace it either). */
static int none_exists(char *const *paths, int n, char *why, size_t why_len)
{
	struct stat st;

	for (int i = 0; i < n; i++) {
		if (lstat(paths[i], &st) == 0) {
			mpk__why(why, why_len, "%s: already exists; not overwriting it", paths[i]);
			return -EEXIST;
		}
		if (errno != ENOENT) {
			int r = -errno;

			mpk__why(why, why_len, "%s: %s", paths[i], strerror(-r));
			return r;
		}
	}
	return 0;
}

static int make_dir(const char *dir, char *why, size_t why_len)
{
	struct stat st;
	int r;

	if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		mpk__why(why, why_len, "%s: exists and is not a directory", dir);
		return -ENOTDIR;
	}
	r = -errno;
	mpk__why(why, why_len, "%s: cannot create directory: %s", dir, strerror(-r));
	return r;
}

/* A fresh secret file image "mpklink-KIND v1\n" + seed, in guarded memory,
 * and the signer made from it. The caller sodium_frees *img. */
static int fresh_secret(const char *kind, uint8_t **img, size_t *img_len,
			struct mpk__signer **s, char *why, size_t why_len)
{
	char hdr[MPK__HDR_MAX + 8];
	int h = snprintf(hdr, sizeof(hdr), "mpklink-%s v1\n", kind);

	*img_len = (size_t)h + MPK__SEED_BYTES;
	*img = sodium_malloc(*img_len);
	if (!*img)
		return -ENOMEM;
	memcpy(*img, hdr, (size_t)h);
	randombytes_buf(*img + h, MPK__SEED_BYTES);
	return mpk__signer_from_seed(*img + h, s, why, why_len);
}

int mpk_keys_ca_create(const char *dir, int force, char *why, size_t why_len)
{
	char *paths[2] = {mpk__path(dir, "ca", ".key"), mpk__path(dir, "ca", ".pub")};
	uint8_t pub[sizeof("mpklink-ca-pub v1\n") - 1 + MPK_KEYS_PK_BYTES];
	struct mpk__signer *s = NULL;
	uint8_t *img = NULL;
	size_t img_len;
	int r;

	if (!paths[0] || !paths[1]) {
		r = -ENOMEM;
		goto out;
	}
	r = mpk__sodium();
	if (r < 0)
		goto out;
	r = make_dir(dir, why, why_len);
	if (r < 0)
		goto out;
	if (!force && (r = none_exists(paths, 2, why, why_len)) < 0)
		goto out;
	r = fresh_secret(MPK__KIND_CA_KEY, &img, &img_len, &s, why, why_len);
	if (r < 0)
		goto out;
	memcpy(pub, "mpklink-ca-pub v1\n", sizeof(pub) - MPK_KEYS_PK_BYTES);
	memcpy(pub + sizeof(pub) - MPK_KEYS_PK_BYTES, mpk__signer_pk(s), MPK_KEYS_PK_BYTES);
	r = mpk__write_file(paths[0], img, img_len, 0600, force, why, why_len);
	if (r < 0)
		goto out;
	r = mpk__write_file(paths[1], pub, sizeof(pub), 0644, force, why, why_len);
	if (r < 0)
		unlink(paths[0]); /* a CA key without its public half is no use */
out:
	if (img)
		sodium_free(img);
	mpk__signer_free(s);
	free(paths[0]);
	free(paths[1]);
	return r;
}

int mpk_keys_issue(const char *dir, const char *name, const char *binary, int64_t not_before,
		   int64_t not_after, int force, char *why, size_t why_len)
{
	char *paths[4] = {mpk__path(dir, name, ".key"), mpk__path(dir, name, ".cert"),
			  mpk__path(dir, "ca", ".key"), mpk__path(dir, "ca", ".pub")};
	uint8_t ca_pk[MPK_KEYS_PK_BYTES], digest[MPK_KEYS_DIGEST_BYTES];
	struct mpk__signer *ca = NULL, *s = NULL;
	struct mpk_keys_cert cert;
	uint8_t *img = NULL;
	size_t img_len;
	int r, fd;

	if (!paths[0] || !paths[1] || !paths[2] || !paths[3]) {
		r = -ENOMEM;
		goto out;
	}
	if (mpk_keys_name_check(name) < 0) {
		r = -EINVAL;
		mpk__why(why, why_len,
			 "bad identity name '%s': use 1 to %d characters of A-Z a-z 0-9 . _ - "
			 "(not '.', '..' or 'ca')",
			 name, MPK_KEYS_NAME_MAX);
		goto out;
	}
	if (not_before > not_after) {
		r = -EINVAL;
		mpk__why(why, why_len, "not-before is after not-after");
		goto out;
	}
	r = mpk__sodium();
	if (r < 0)
		goto out;
	if (!force && (r = none_exists(paths, 2, why, why_len)) < 0)
		goto out;
	r = mpk_keys_ca_load(paths[3], ca_pk, why, why_len);
	if (r < 0)
		goto out;
	r = mpk__signer_load(paths[2], MPK__KIND_CA_KEY, &ca, why, why_len);
	if (r < 0)
		goto out;
	if (memcmp(mpk__signer_pk(ca), ca_pk, MPK_KEYS_PK_BYTES)) {
		r = -EKEYREJECTED;
		mpk__why(why, why_len, "%s does not match %s", paths[2], paths[3]);
		goto out;
	}
	fd = open(binary, O_RDONLY | O_CLOEXEC);
	r = fd < 0 ? -errno : mpk_keys_digest_fd(fd, digest);
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		mpk__why(why, why_len, "%s: cannot hash the binary: %s", binary,
			 r == -EINVAL ? "not a regular file" : strerror(-r));
		goto out;
	}
	r = fresh_secret(MPK__KIND_KEY, &img, &img_len, &s, why, why_len);
	if (r < 0)
		goto out;
	r = mpk__cert_make(ca, name, mpk__signer_pk(s), digest, not_before, not_after, &cert);
	if (r < 0) {
		mpk__why(why, why_len, "cannot sign the certificate: %s", strerror(-r));
		goto out;
	}
	r = mpk__write_file(paths[0], img, img_len, 0600, force, why, why_len);
	if (r < 0)
		goto out;
	r = mpk__write_file(paths[1], cert.raw, sizeof(cert.raw), 0644, force, why, why_len);
	if (r < 0)
		unlink(paths[0]);
out:
	if (img)
		sodium_free(img);
	mpk__signer_free(s);
	mpk__signer_free(ca);
	for (int i = 0; i < 4; i++)
		free(paths[i]);
	return r;
}
