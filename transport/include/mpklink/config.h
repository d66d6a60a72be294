/* SPDX-License-Identifier: MIT */
/*
 * mpklink configuration: the MPKLINK_* settings, parsed in one place for
 * both readers of them, the launcher (env files and its environment, where
 * a bad value is an error naming file, line and value, or the variable)
 * and the preload (its environment, which the launcher checked already).
 * One parser, one set of rules: a file's line and an environment variable
 * are held to the same checks, an unknown MPKLINK_ key is an error in
 * both, and a name that looks like a key but is not one (MPKLNK_LOG,
 * mpklink_log) is warned about in both.
 *
 * Every function is pure and thread-safe (no file or system call: the
 * launcher reads the files, the parsers take their text). Return values: a
 * parsed value or 0, else -errno; `why`, where taken, gets one line for
 * the user.
 */
#ifndef MPKLINK_CONFIG_H
#define MPKLINK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPK_MAX_ENDPOINTS 64

/* One MPKLINK_ENDPOINTS entry. */
struct mpk_endpoint {
	uint16_t port;
	/* 0: a loopback or wildcard host (localhost, 127.x, 0.0.0.0, ::1, ::,
	 * ::ffff:127.x): connects to any loopback address and the port are
	 * upgraded, and the rendezvous is tcp-PORT.sock.
	 * 1: any other unicast address, one of the server's in its own
	 * network namespace (a container's, reached over veth, a bridge):
	 * connects to exactly that address and port are upgraded, and the
	 * rendezvous is tcp-ADDR-PORT.sock (mpk_endpoint_rdv_name). */
	uint8_t remote;
	uint8_t addr[16]; /* remote: the address, IPv4 as ::ffff:a.b.c.d */
};

/*
 * MPKLINK_ENDPOINTS: comma-separated HOST:PORT[=NAME]. HOST is localhost,
 * an IPv4 or IPv6 address (IPv6 may be bracketed), never a host name (they
 * are not resolved) nor a multicast or broadcast address. PORT is 1 to 5
 * digits, 1..65535 (no sign, no space); NAME, the server identity a client
 * expects there, is 1 to 63 of A-Z a-z 0-9 . _ - (keys/FORMATS.md; keys/
 * reads it). No empty entry (a trailing comma is one), and no port twice,
 * whatever the hosts or names: one port, one expectation (a server listens
 * on a port, whatever address it is reached at).
 * Returns the number of entries written to eps[] (at most max), or -EINVAL
 * (-E2BIG: more than max) with *bad pointing at the offending entry's start
 * and *why (when why is not NULL) saying what is wrong with it.
 * NULL or "" is 0 endpoints.
 */
int mpk_endpoints_parse(const char *s, struct mpk_endpoint *eps, size_t max, const char **bad);
int mpk_endpoints_parse_why(const char *s, struct mpk_endpoint *eps, size_t max,
			    const char **bad, const char **why);

/* The entry of eps (n of them) for port, or NULL. */
const struct mpk_endpoint *mpk_endpoint_find(const struct mpk_endpoint *eps, size_t n,
					     unsigned port);

/* The file name of e's rendezvous socket in the run directory:
 * "tcp-PORT.sock", or for a remote entry "tcp-ADDR-PORT.sock" (ADDR as
 * inet_ntop writes it, IPv4 dotted). Both launchers name it alike from
 * their own env files. Returns 0, or -ENAMETOOLONG (len too small; 64 is
 * enough for any). */
int mpk_endpoint_rdv_name(const struct mpk_endpoint *e, char *buf, size_t len);

/* The entry's host as text (for messages): "loopback" or the address. */
const char *mpk_endpoint_host(const struct mpk_endpoint *e, char *buf, size_t len);

/* Whether MPKLINK_ENDPOINTS (already parsed without error) names a server
 * identity for any port (an "=NAME"). */
int mpk_endpoints_named(const char *s);

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
 * MPK_LINK_RING_MAX] (ring.h), digits with an optional K, M or G suffix
 * (no sign, no space); a value that overflows is out of range, never
 * wrapped. Returns 0 and *out, or -EINVAL.
 */
int mpk_ring_bytes_parse(const char *s, size_t *out);

/*
 * Checks one MPKLINK_ setting as the launcher takes it. Returns 0 (valid),
 * -EINVAL (why says what is wrong with the value), or -ENOENT (no such
 * key, or one of mpklink-run's own: see mpk_config_key). MPKLINK_ALLOW's
 * syntax belongs to keys/ (mpk_keys_allow_parse): here it is only a known
 * key, and the launcher checks it through mpk_config_hooks.check.
 */
int mpk_config_check(const char *key, const char *value, const char **why);

/* What a name is: a setting, one of the variables mpklink-run sets for
 * its program (MPKLINK_CTL, ...: a launcher started under another one
 * finds them in its environment, and replaces them; a file may not set
 * them), or neither. */
enum mpk_config_key_kind { MPK_KEY_NONE = 0, MPK_KEY_SETTING, MPK_KEY_INTERNAL };
enum mpk_config_key_kind mpk_config_key(const char *name, size_t len);

/*
 * A name that is not a key but looks like one: a key in other case
 * (mpklink_log), or at most two letters inserted, dropped or changed
 * (MPKLNK_ENDPOINTS, MPKLINK_ENDPIONTS), compared without case. Returns
 * the key it resembles, or NULL.
 */
const char *mpk_config_near_miss(const char *name, size_t len);

/* What the parsers report besides their result. Every member may be NULL. */
struct mpk_config_hooks {
	void *ctx;
	/* A further check of a value mpk_config_check accepted (MPKLINK_ALLOW:
	 * keys/' syntax): 0, or -EINVAL with one line in why. */
	int (*check)(void *ctx, const char *key, const char *value, char *why, size_t whylen);
	/* One line (no newline) that does not stop anything: a near miss. */
	void (*warn)(void *ctx, const char *line);
};

/*
 * An env file's text (len bytes; a NUL byte in it is an error, not the end
 * of a line) as `mpklink-run -e FILE` takes it: KEY=VALUE lines, KEY a C
 * identifier; blank lines and lines whose first non-blank is # skipped;
 * blanks before KEY dropped; one pair of matching quotes around VALUE
 * removed (systemd's EnvironmentFile); LF or CR LF ends a line. MPKLINK_
 * keys are checked (unknown, internal or a bad value: an error); other
 * keys are the program's, with a warning for a near miss. put(ctx, key,
 * value, line) is called for each KEY=VALUE line, in order, and may fail
 * (-errno). file names the text in messages.
 * Returns 0, or -EINVAL (or put's -errno) with err = "FILE:LINE: what",
 * naming the key and value: the first error stops the parse.
 */
int mpk_config_parse_file(const char *file, const char *text, size_t len,
			  int (*put)(void *ctx, const char *key, const char *value, unsigned line),
			  const struct mpk_config_hooks *hooks, char *err, size_t errlen);

/*
 * The environment (NULL-terminated "NAME=VALUE" strings), by the same
 * rules: an MPKLINK_ variable that is no setting is an error (mpklink-run's
 * own are accepted), a bad value an error, a near miss a warning.
 * Returns 0, or -EINVAL with err = "environment: NAME=VALUE: what".
 */
int mpk_config_check_environ(char *const *envp, const struct mpk_config_hooks *hooks, char *err,
			     size_t errlen);

/*
 * The settings together, once files and environment are merged (get(key)
 * returns a value or NULL): what one setting needs of another. Without
 * MPKLINK_IDENTITY nothing can tell peers apart, so MPKLINK_ALLOW, a
 * server name in MPKLINK_ENDPOINTS, MPKLINK_TRUST and
 * MPKLINK_INTEGRITY=mac would be silently ignored: each is an error; an
 * identity needs MPKLINK_TRUST. Returns 0, or -EINVAL with *key the
 * setting at fault and *why the reason.
 */
int mpk_config_check_together(const char *(*get)(const char *key), const char **key,
			      const char **why);

#ifdef __cplusplus
}
#endif
#endif
