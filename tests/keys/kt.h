/* SPDX-License-Identifier: MIT */
/* Helpers for the keys tests: temporary directories, identities issued by
 * the library, files to corrupt, and running mpklink-keys. */
#ifndef MPK_KT_H
#define MPK_KT_H

#include <stddef.h>
#include <stdint.h>

#include "mpklink/keys.h"

/* A fresh directory under $TMPDIR (or /tmp); aborts the test on failure. */
void kt_tmpdir(char *out, size_t len);
/* rm -rf path. */
void kt_rmrf(const char *path);

/* Creates dir (if needed) as a CA. */
void kt_ca(const char *dir);
/* Issues NAME in the CA at dir, valid [now+nb_off, now+na_off], for
 * /bin/true, and loads it. */
struct mpk_keys_identity *kt_identity(const char *dir, const char *name, int64_t nb_off,
				      int64_t na_off);
/* ca.pub of dir. */
void kt_ca_pk(const char *dir, uint8_t pk[MPK_KEYS_PK_BYTES]);

/* Whole-file helpers: 0 or -errno. */
int kt_read(const char *path, uint8_t *buf, size_t cap, size_t *len);
int kt_write(const char *path, const void *buf, size_t len, unsigned mode);
/* "dir/name" into a static-per-call buffer the caller copies. */
const char *kt_join(char *buf, size_t len, const char *dir, const char *name);

/* Runs mpklink-keys (MPK_KEYS_BIN) with argv (NULL-terminated), captures
 * stdout and stderr (each cut at cap-1 bytes, NUL-terminated). Returns the
 * exit status, or 128 + signal. */
int kt_run(char *out, char *err, size_t cap, const char *const *argv);

#endif
