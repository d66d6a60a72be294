/* SPDX-License-Identifier: MIT */
/*
 * mpklink configuration: the MPKLINK_* settings, parsed in one place for
 * both readers of them, the launcher (env files and its environment, where
 * a bad value is an error naming file, line and value) and the preload
 * (its environment, which the launcher checked already).
 *
 * Every function is pure and thread-safe. Return values: a parsed value or
 * 0, else -errno; `why`, where taken, gets one line for the user.
 */
#ifndef MPKLINK_CONFIG_H
#define MPKLINK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPK_MAX_ENDPOINTS 64

/*
 * MPKLINK_ENDPOINTS: comma-separated HOST:PORT, HOST one of localhost, an
 * IPv4 loopback (127.0.0.0/8), 0.0.0.0, ::1, ::, ::ffff:127.x (IPv6 may be
 * bracketed). Every form matches by port. An optional "=NAME" suffix (the
 * expected server identity) is accepted and ignored here (keys/ reads it).
 * Returns the number of ports written to ports[] (at most max), or -EINVAL
 * (-E2BIG: more than max) with *bad pointing at the offending entry's start.
 * NULL or "" is 0 endpoints.
 */
int mpk_endpoints_parse(const char *s, uint16_t *ports, size_t max, const char **bad);

/*
 * MPKLINK_SPIN_US: how long a waiting call watches the rings of upgraded
 * fds before it sleeps on their doorbells (0: never). The default is the
 * measured knee on a 2-core machine (docs/PERFORMANCE.md).
 * MPKLINK_SPIN_MAX_US: how far a thread's spin may grow when its waits end
 * just after its spins run out (the wake-up would cost more than spinning
 * on); at or below MPKLINK_SPIN_US growth is off.
 */
#define MPK_SPIN_US_DEFAULT     50u
#define MPK_SPIN_MAX_US_DEFAULT 400u
#define MPK_SPIN_US_MAX         1000000u

/* A count of microseconds, 0..MPK_SPIN_US_MAX. Returns it, or -EINVAL. */
long mpk_us_parse(const char *s);

/* MPKLINK_LOG: "error" 0, "warn" 1 (also NULL or ""), "info" 2, "debug" 3.
 * Returns the level, or -EINVAL. */
int mpk_log_level_parse(const char *s);

/* MPKLINK_FALLBACK: "tcp" 0 (also NULL or ""), "deny" 1; else -EINVAL. */
int mpk_fallback_parse(const char *s);

/* MPKLINK_INTEGRITY: "off" 0 (also NULL or ""), "mac" 1; else -EINVAL. */
int mpk_integrity_parse(const char *s);

/*
 * MPKLINK_RING_BYTES: a power of two in [MPK_LINK_RING_MIN,
 * MPK_LINK_RING_MAX] (ring.h), with an optional K, M or G suffix.
 * Returns 0 and *out, or -EINVAL.
 */
int mpk_ring_bytes_parse(const char *s, size_t *out);

/*
 * Checks one MPKLINK_ setting as the launcher takes it. Returns 0 (valid),
 * -EINVAL (why says what is wrong with the value), or -ENOENT (no such
 * key). MPKLINK_ALLOW's syntax belongs to keys/ (mpk_keys_allow_parse):
 * here it is only a known key.
 */
int mpk_config_check(const char *key, const char *value, const char **why);

#ifdef __cplusplus
}
#endif
#endif
