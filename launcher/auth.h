/* SPDX-License-Identifier: MIT */
/*
 * mpklink-run's identity: the service's certificate and secret key (keys/),
 * and the link handshake between launchers built on them (ctl.h's
 * struct mpk_ctl_auth). Private to the launcher.
 */
#ifndef MPK_LAUNCHER_AUTH_H
#define MPK_LAUNCHER_AUTH_H

#include <stddef.h>

#include "ctl_server.h"

struct mpk_auth;

/*
 * Loads MPKLINK_IDENTITY (D/NAME: D/NAME.key, D/NAME.cert) and
 * MPKLINK_TRUST (the CA's ca.pub), checks the certificate against the CA
 * and the clock, parses MPKLINK_ALLOW and MPKLINK_ENDPOINTS' expected
 * server names. Returns 0 and *out, or -errno with one line in why.
 */
int mpk_auth_load(const char *identity, const char *trust, const char *allow,
		  const char *endpoints, struct mpk_auth **out, char *why, size_t whylen);

/*
 * Whether the program in fd (opened by the caller, who then runs that very
 * file with fexecve) is the binary the certificate names. Returns 0,
 * -EPERM (another binary; why names both digests), or -errno.
 */
int mpk_auth_check_binary(const struct mpk_auth *a, int fd, const char *path, char *why,
			  size_t whylen);

/* The name in our certificate. */
const char *mpk_auth_name(const struct mpk_auth *a);

/* Whether MPKLINK_ALLOW was given (else: any identity the CA signed). */
int mpk_auth_has_allow(const struct mpk_auth *a);

/* The hooks for mpk_ctl_config.auth; valid while a lives. */
const struct mpk_ctl_auth *mpk_auth_ops(struct mpk_auth *a);

/* Wipes and frees. Safe on NULL. */
void mpk_auth_free(struct mpk_auth *a);

#endif
