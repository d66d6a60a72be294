/* SPDX-License-Identifier: MIT */
/*
 * mpklink keys: a CA, service identities, binary digests, the endpoint
 * policy, and the one-round-trip handshake between launchers. The byte
 * layouts of every file and message are in keys/FORMATS.md.
 *
 * Return values: every function returning int returns a non-negative value
 * on success and -errno on failure; errno is never read nor set. Functions
 * returning void cannot fail.
 *
 * Reasons: functions that read or write files take (char *why, size_t
 * why_len): on failure, when why is not NULL, it gets one line that names
 * the file (cut to fit; MPK_KEYS_WHY_MAX always suffices). Functions over
 * bytes take const char **why: a static string, or NULL on success. Either
 * why may be NULL.
 *
 * Untrusted input: whatever comes from a file or a peer is parsed strictly
 * (exact length, magic, version, reserved bytes zero, names valid) and used
 * only after it is checked. Every function that fills an output from such
 * input wipes that output on failure (libsodium's convention), so a caller
 * that ignores the return value still sees no half-verified data.
 *
 * Distinct errors, shared by the certificate and handshake functions:
 *   -EPROTO           malformed: truncated, garbage, bad magic, a field out
 *                     of range, reserved bytes set
 *   -EMSGSIZE         a message longer than its fixed size
 *   -EPROTONOSUPPORT  a well-formed header with a version we do not know
 *   -EKEYREJECTED     a certificate issued by another CA; a key that does
 *                     not match its certificate
 *   -EBADMSG          a signature that does not verify (a tampered
 *                     certificate or message)
 *   -EKEYEXPIRED      a certificate past its not-after
 *   -ETIME            a certificate before its not-before (not yet valid)
 *   -ESTALE           a HELLO whose timestamp is outside the freshness window
 *   -EALREADY         a replayed HELLO (its nonce was seen in the window), or
 *                     RESUME (its number was taken)
 *   -ENOBUFS          the replay cache is full of live nonces
 *   -EPERM            the server is not the identity the client expects; a
 *                     binary that does not match its certificate
 *   -EACCES           the policy does not allow this client on this port
 *   -ECONNREFUSED     the server refused (a refusal REPLY)
 *
 * Threads: the functions are thread-safe on distinct objects. An identity
 * and a replay cache may be shared by threads (each has its own lock);
 * client and server handshake states may not.
 *
 * libsodium is initialised on first use (sodium_init is idempotent).
 */
#ifndef MPKLINK_KEYS_H
#define MPKLINK_KEYS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPK_KEYS_NAME_MAX      63   /* identity names: [A-Za-z0-9._-]{1,63} */
#define MPK_KEYS_PK_BYTES      32   /* Ed25519 public key */
#define MPK_KEYS_DIGEST_BYTES  32   /* SHA-256 */
#define MPK_KEYS_SIG_BYTES     64   /* Ed25519 signature */
#define MPK_KEYS_CERT_BYTES    256  /* an encoded certificate (file and wire) */
#define MPK_KEYS_HELLO_BYTES   400
#define MPK_KEYS_REPLY_BYTES   392
#define MPK_KEYS_MSG_MAX       1024 /* a receive buffer this big tells "too long" */
#define MPK_KEYS_NONCE_BYTES   16
#define MPK_KEYS_TOKEN_BYTES   16
#define MPK_KEYS_SESSION_BYTES 32
#define MPK_KEYS_FRESH_WINDOW  30   /* seconds either side of now */
#define MPK_KEYS_WHY_MAX       512

/* ------------------------------------------------------------ names */

/* 0 when name is 1..63 characters of [A-Za-z0-9._-] and not "." or "..",
 * else -EINVAL. */
int mpk_keys_name_check(const char *name);

/* ------------------------------------------------------ certificates */

/* A parsed certificate. raw is the encoding, signature included: what the
 * file holds and what a HELLO or REPLY carries. Parsing does not verify. */
struct mpk_keys_cert {
	char name[MPK_KEYS_NAME_MAX + 1];
	uint8_t pk[MPK_KEYS_PK_BYTES];         /* the service's Ed25519 key */
	uint8_t digest[MPK_KEYS_DIGEST_BYTES]; /* SHA-256 of its binary */
	int64_t not_before, not_after;         /* Unix seconds, inclusive */
	uint8_t issuer[MPK_KEYS_PK_BYTES];     /* the CA key it claims */
	uint8_t raw[MPK_KEYS_CERT_BYTES];
};

/*
 * Parses an encoded certificate (structure only: see mpk_keys_cert_verify).
 * Returns 0, -EPROTO (truncated, garbage, bad name, not_before > not_after),
 * -EMSGSIZE (longer than MPK_KEYS_CERT_BYTES), -EPROTONOSUPPORT (unknown
 * version). *out is wiped on failure.
 */
int mpk_keys_cert_parse(const void *buf, size_t len, struct mpk_keys_cert *out,
			const char **why);

/* Reads and parses a .cert file. Returns as mpk_keys_cert_parse, or -errno
 * from open/read; why names the file (and an unknown version's number). */
int mpk_keys_cert_load(const char *path, struct mpk_keys_cert *out, char *why,
		       size_t why_len);

/* Reads a CA public key file (ca.pub). Returns 0, -EPROTO, -EMSGSIZE,
 * -EPROTONOSUPPORT, or -errno; ca_pk is wiped on failure. */
int mpk_keys_ca_load(const char *path, uint8_t ca_pk[MPK_KEYS_PK_BYTES], char *why,
		     size_t why_len);

/*
 * Verifies c against the CA key and the time now: issued by this CA, the
 * CA's signature, not_before <= now <= not_after. Returns 0,
 * -EKEYREJECTED (another CA), -EBADMSG (bad signature: tampered),
 * -EKEYEXPIRED, -ETIME (not yet valid). Thread-safe. The signature check of
 * the last 16 certificates that passed it is remembered, by their exact
 * bytes and CA key, and not repeated; every other check is.
 */
int mpk_keys_cert_verify(const struct mpk_keys_cert *c, const uint8_t ca_pk[MPK_KEYS_PK_BYTES],
			 int64_t now, const char **why);

/* SHA-256 of a file's contents, from an open fd (read with pread from
 * offset 0, so the launcher can hash the very fd it will fexecve).
 * Returns 0 or -errno (-EINVAL: not a regular file); digest wiped on
 * failure. */
int mpk_keys_digest_fd(int fd, uint8_t digest[MPK_KEYS_DIGEST_BYTES]);

/*
 * Whether the binary at path is the one c certifies. Returns 0, -EPERM
 * (readable, but its SHA-256 differs), or -errno from open/read (-ENOENT,
 * -EACCES, -EINVAL for not a regular file, ...): a mismatch is always
 * -EPERM and an unreadable binary never is.
 */
int mpk_keys_cert_check_binary(const struct mpk_keys_cert *c, const char *path, char *why,
			       size_t why_len);

/* ------------------------------------------------- making the files */

/*
 * Creates a CA in dir (created 0700 if missing): dir/ca.key (secret, 0600)
 * and dir/ca.pub. Files are written whole under a temporary name, then
 * linked in place. Returns 0, -EEXIST (either file exists and force is 0;
 * nothing is written), -ENOTDIR (dir is not a directory), or -errno.
 */
int mpk_keys_ca_create(const char *dir, int force, char *why, size_t why_len);

/*
 * Issues an identity signed by dir/ca.key: dir/NAME.key (secret, 0600) and
 * dir/NAME.cert for the binary at binary, valid for
 * [not_before, not_after]. Returns 0, -EINVAL (bad name, or not_before >
 * not_after), -EEXIST (without force), -EKEYREJECTED (ca.key does not
 * match ca.pub), -EACCES (ca.key readable by others, with the chmod hint),
 * or -errno.
 */
int mpk_keys_issue(const char *dir, const char *name, const char *binary, int64_t not_before,
		   int64_t not_after, int force, char *why, size_t why_len);

/*
 * Every secret file (.key) must be a regular file owned by us and give
 * nothing to group or others: anything else is -EACCES, and why says
 * "chmod 600 FILE". Secret bytes are read straight into guarded memory and
 * wiped after use; the fd is O_CLOEXEC.
 */

/* --------------------------------------------------------- identity */

struct mpk_keys_identity;

/*
 * Loads base.key and base.cert (base is "DIR/NAME"). Checks the key file's
 * mode, that the certificate is for NAME, and that the key is the one the
 * certificate names. Does not check the CA or the time: call
 * mpk_keys_cert_verify on mpk_keys_identity_cert before relying on it.
 *
 * The secret key lives in one page from sodium_malloc, mlocked, and
 * PROT_NONE except inside mpk_keys_identity_sign. When protection keys
 * are usable the page also carries a protection key of its own (not the
 * ring guard's), denied to every thread and opened, read-only, only by the
 * signing thread for the duration of crypto_sign.
 *
 * Returns 0, -EINVAL (NAME is not a valid identity name), -EACCES (key
 * file mode or owner), -EKEYREJECTED (key and certificate do not match,
 * or the certificate names someone else),
 * -EPROTO/-EMSGSIZE/-EPROTONOSUPPORT (a bad file), -ENOMEM (also when the
 * page cannot be mlocked: RLIMIT_MEMLOCK), or -errno.
 */
int mpk_keys_identity_load(const char *base, struct mpk_keys_identity **out, char *why,
			   size_t why_len);

/* Wipes and frees the key page, releases its protection key. NULL is fine. */
void mpk_keys_identity_free(struct mpk_keys_identity *id);

/*
 * Keeps the secret key's page out of every child this process forks
 * (MADV_DONTFORK): a launcher's program never has a copy, not even between
 * its fork and its exec. A child then faults (SEGV_MAPERR) on the page.
 * Returns 0 or -errno.
 */
int mpk_keys_identity_keep_from_children(struct mpk_keys_identity *id);

/* The identity's certificate (valid until mpk_keys_identity_free). */
const struct mpk_keys_cert *mpk_keys_identity_cert(const struct mpk_keys_identity *id);

/* Ed25519 signature of msg. Thread-safe (signing is serialised per
 * identity). Returns 0, or -errno when the page cannot be reprotected. */
int mpk_keys_identity_sign(struct mpk_keys_identity *id, const void *msg, size_t len,
			   uint8_t sig[MPK_KEYS_SIG_BYTES]);

/* The protection key over the secret page (1..15), or -ENOTSUP (no usable
 * PKU) / -ENOSPC (no key was left) with *why saying so. */
int mpk_keys_identity_pkey(const struct mpk_keys_identity *id, const char **why);

/* TEST ONLY: the page holding the secret key and its length, so a test
 * can show that touching it faults. Never read it outside a test. */
void *mpk_keys_identity_secret_page(const struct mpk_keys_identity *id, size_t *len);

/* -------------------------------------------------------- handshake */
/*
 * One round trip, pure functions over byte buffers. The client sends
 * HELLO; the server verifies it, applies its policy to the client's name
 * (mpk_keys_allow_check), and answers a REPLY or a refusal. Both sides end
 * with the same 32-byte session key:
 *
 *   key = BLAKE2b-256("mpklink-session v1" || X25519(e_c, E_s)
 *                     || BLAKE2b-256(HELLO) || BLAKE2b-256(REPLY))
 *
 * A refusal (status != 0) is unsigned: every byte after status is zero.
 * The client believes nothing in it but "refused" (-ECONNREFUSED), and
 * reports the status only as the server's claim.
 */

/* What a completed handshake gives each side. */
struct mpk_keys_session {
	uint8_t key[MPK_KEYS_SESSION_BYTES];
	uint8_t token[MPK_KEYS_TOKEN_BYTES];    /* the server's, opaque */
	uint64_t ring_bytes;                    /* what the server granted */
	char peer_name[MPK_KEYS_NAME_MAX + 1];  /* the other side's identity */
	int64_t peer_not_after;                 /* its certificate's */
};

/* The server's memory of nonces seen in the freshness window. */
struct mpk_keys_replay;

/*
 * A replay cache for HELLOs stamped within window_s seconds of now (0:
 * MPK_KEYS_FRESH_WINDOW), remembering up to capacity nonces (0: 4096).
 * When full of live nonces, new HELLOs are refused (-ENOBUFS) rather than
 * an old nonce forgotten. Returns 0, -EINVAL (window_s > 3600), -ENOMEM.
 */
int mpk_keys_replay_new(unsigned window_s, size_t capacity, struct mpk_keys_replay **out);
void mpk_keys_replay_free(struct mpk_keys_replay *rc);

/* The client's side. Keep it until the REPLY; its fields are private. */
struct mpk_keys_client {
	int state;
	uint8_t eph_sk[32];
	uint8_t hello_hash[32];
};

/*
 * Builds a HELLO for (server_port, client_port), asking for ring_bytes
 * (0: the server's default; else a power of two in [4 KiB, 1 GiB]),
 * stamped now, signed by id. Keeps the ephemeral secret in *st.
 * Returns 0, -EINVAL (a port is 0, bad ring_bytes), or -errno.
 */
int mpk_keys_client_hello(struct mpk_keys_client *st, struct mpk_keys_identity *id, int64_t now,
			  uint16_t server_port, uint16_t client_port, uint64_t ring_bytes,
			  uint8_t hello[MPK_KEYS_HELLO_BYTES]);

/*
 * Verifies the REPLY to st's HELLO: the server's certificate against ca_pk
 * and now, its name against expected_server (NULL: any name the CA
 * signed), its signature over our HELLO's hash and the REPLY, then derives
 * the session. *st is wiped whatever the outcome (one use).
 * Returns 0 and fills *out, or: -EINVAL (no HELLO pending in st), -EPROTO,
 * -EMSGSIZE, -EPROTONOSUPPORT, -EKEYREJECTED, -EBADMSG (tampered, or it
 * answers another HELLO), -EKEYEXPIRED, -ETIME, -EPERM (not the expected
 * server), -ECONNREFUSED (a refusal; *peer_status, if not NULL, gets the
 * server's claimed -errno, else 0). *out is wiped on failure.
 */
int mpk_keys_client_reply(struct mpk_keys_client *st, const void *reply, size_t len,
			  const uint8_t ca_pk[MPK_KEYS_PK_BYTES], int64_t now,
			  const char *expected_server, struct mpk_keys_session *out,
			  int *peer_status, const char **why);

/* Wipes a client state that will not see its REPLY. */
void mpk_keys_client_clear(struct mpk_keys_client *st);

/* The server's side. The public fields are the verified HELLO, for the
 * caller's policy decision; priv is private. */
struct mpk_keys_server {
	char client_name[MPK_KEYS_NAME_MAX + 1];
	uint16_t server_port, client_port;
	uint64_t ring_bytes; /* what the client asked for; 0: default */
	int64_t client_not_after; /* the client certificate's */
	struct {
		int state;
		uint8_t eph_sk[32], eph_pk[32], shared[32], hello_hash[32];
	} priv;
};

/*
 * Verifies a HELLO: structure, the client's certificate against ca_pk and
 * now, the signature, the timestamp within rc's window of now, and that
 * the nonce is new (then remembers it). On success fills the public fields
 * of *st; the caller then checks its policy and answers with
 * mpk_keys_server_reply or mpk_keys_refusal. Returns 0, -EINVAL (rc is
 * NULL), -EPROTO,
 * -EMSGSIZE, -EPROTONOSUPPORT, -EKEYREJECTED, -EBADMSG, -EKEYEXPIRED,
 * -ETIME, -ESTALE, -EALREADY (replay), -ENOBUFS (replay cache full).
 * *st is wiped on failure.
 */
int mpk_keys_server_hello(struct mpk_keys_server *st, const void *hello, size_t len,
			  const uint8_t ca_pk[MPK_KEYS_PK_BYTES], int64_t now,
			  struct mpk_keys_replay *rc, const char **why);

/*
 * Answers st's verified HELLO: a REPLY signed by id carrying token and
 * ring_bytes (a power of two in [4 KiB, 1 GiB]), and the session. *st is
 * wiped whatever the outcome. Returns 0, -EINVAL (no verified HELLO in st,
 * bad ring_bytes), or -errno.
 */
int mpk_keys_server_reply(struct mpk_keys_server *st, struct mpk_keys_identity *id,
			  const uint8_t token[MPK_KEYS_TOKEN_BYTES], uint64_t ring_bytes,
			  uint8_t reply[MPK_KEYS_REPLY_BYTES], struct mpk_keys_session *out);

/* A refusal REPLY with status (in [-4095, -1], e.g. -EACCES). Returns 0 or
 * -EINVAL. Needs no HELLO: also the answer to one that failed to verify. */
int mpk_keys_refusal(int status, uint8_t reply[MPK_KEYS_REPLY_BYTES]);

/* Wipes a server state that will not be answered with a REPLY. */
void mpk_keys_server_clear(struct mpk_keys_server *st);

/* ------------------------------------------------------- resumption */
/*
 * A handshake opens a session that both launchers keep as a ticket, so
 * that their later batches need no signature and no X25519: the client
 * sends a RESUME (the ticket's id, a number, a nonce, what it asks for)
 * and the server answers a RESUMED (status, the batch's token, ring
 * bytes), each authenticated by keyed BLAKE2b under the ticket's secret:
 *
 *   id     = BLAKE2b-128(key = session key, "mpklink-ticket-id v1")
 *   secret = BLAKE2b-256(key = session key, "mpklink-ticket v1")
 *   batch  = BLAKE2b-256(key = secret, "mpklink-resumed v1"
 *                        || BLAKE2b-256(RESUME) || BLAKE2b-256(RESUMED))
 *
 * The batch key is new for every batch (the client's nonce, the server's
 * token) and stands where a handshake's session key does. The RESUMED's
 * tag covers the RESUME's hash, so it answers that RESUME only. The
 * client numbers its RESUMEs from 1; the server takes each number once,
 * within the last MPK_KEYS_RESUME_WINDOW numbers (batches asked for at
 * once may arrive out of order), so a replayed RESUME is refused.
 * A ticket lives until the earlier of the two certificates' not-after and
 * the expiry its opener chose; past it, RESUMEs are refused both sides
 * and a handshake opens a new session.
 *
 * A refusal (status != 0) is unsigned, as a handshake's: every byte after
 * the status is zero. A server refuses a RESUME it cannot verify with the
 * check's error, or -ENOKEY for a ticket id it does not know; a client
 * takes any of those as "make a handshake" and drops its ticket. Other
 * statuses (the policy's) are the server's claim, as a handshake's
 * refusal.
 *
 * Tickets are plain values; a caller that shares one between threads
 * locks it (mpk_keys_resume changes its number; mpk_keys_resume_check its
 * window).
 */
#define MPK_KEYS_TICKET_ID_BYTES 16
#define MPK_KEYS_RESUME_BYTES    96
#define MPK_KEYS_RESUMED_BYTES   72
#define MPK_KEYS_RESUME_WINDOW   64

struct mpk_keys_ticket {
	uint8_t id[MPK_KEYS_TICKET_ID_BYTES];
	uint8_t secret[32];
	int64_t expires;   /* Unix seconds: usable while now <= expires */
	uint64_t number;   /* client: the last one sent; server: the highest taken */
	uint64_t seen;     /* server: bit i set when number - i was taken */
	char peer_name[MPK_KEYS_NAME_MAX + 1];
};

/*
 * The ticket of a session a handshake just made (either side), usable
 * until the earlier of expires and the peer certificate's not-after.
 * Returns 0, or -EINVAL (s has no peer: not a handshake's session).
 */
int mpk_keys_ticket_open(const struct mpk_keys_session *s, int64_t expires,
			 struct mpk_keys_ticket *out);

/* Wipes a ticket. */
void mpk_keys_ticket_clear(struct mpk_keys_ticket *t);

/*
 * Client: a RESUME under t asking for count links to server_port with
 * ring_bytes (as mpk_keys_client_hello's), taking t's next number. hash
 * gets BLAKE2b-256 of the RESUME, for mpk_keys_resumed_check.
 * Returns 0, -EINVAL (a port or count 0, bad ring_bytes), -EKEYEXPIRED
 * (t is past its expiry: make a handshake), -EOVERFLOW (numbers used up).
 */
int mpk_keys_resume(struct mpk_keys_ticket *t, int64_t now, uint16_t server_port,
		    uint16_t count, uint64_t ring_bytes, uint8_t msg[MPK_KEYS_RESUME_BYTES],
		    uint8_t hash[32]);

/*
 * Client: checks the RESUMED to the RESUME whose hash is given: framing,
 * then the tag. Returns 0 and *out (key: the batch key; token;
 * ring_bytes; peer_name, peer_not_after from t), or -EPROTO, -EMSGSIZE,
 * -EPROTONOSUPPORT, -EBADMSG (tag: tampered, or it answers another
 * RESUME), -ECONNREFUSED (a refusal: *peer_status, if not NULL, gets the
 * server's claimed status, else 0). *out is wiped on failure.
 */
int mpk_keys_resumed_check(const struct mpk_keys_ticket *t, const uint8_t hash[32],
			   const void *msg, size_t len, struct mpk_keys_session *out,
			   int *peer_status, const char **why);

/* Server: the ticket id a RESUME names (framing checked), to find the
 * ticket. Returns 0, -EPROTO, -EMSGSIZE, -EPROTONOSUPPORT. */
int mpk_keys_resume_id(const void *msg, size_t len, uint8_t id[MPK_KEYS_TICKET_ID_BYTES],
		       const char **why);

/* What a verified RESUME asks for. */
struct mpk_keys_resume_req {
	uint16_t server_port, count;
	uint64_t ring_bytes; /* 0: the server's default */
	uint8_t hash[32];    /* BLAKE2b-256 of the RESUME, for mpk_keys_resumed */
};

/*
 * Server: verifies a RESUME under t (the ticket its id names): framing,
 * ticket id, expiry, fields, tag, then that its number is new (then takes
 * it). Nothing is taken from a RESUME that failed. Returns 0 and *req, or
 * -EPROTO, -EMSGSIZE, -EPROTONOSUPPORT, -EKEYEXPIRED, -EBADMSG (tag, or
 * another ticket's id), -EALREADY (a number taken, or older than the
 * window). *req is wiped on failure.
 */
int mpk_keys_resume_check(struct mpk_keys_ticket *t, const void *msg, size_t len, int64_t now,
			  struct mpk_keys_resume_req *req, const char **why);

/*
 * Server: the RESUMED answering req with token and ring_bytes (a power of
 * two in [4 KiB, 1 GiB]), and the batch's session (key, token,
 * ring_bytes, and t's peer). Returns 0 or -EINVAL; msg and *out are wiped
 * on failure.
 */
int mpk_keys_resumed(const struct mpk_keys_ticket *t, const struct mpk_keys_resume_req *req,
		     const uint8_t token[MPK_KEYS_TOKEN_BYTES], uint64_t ring_bytes,
		     uint8_t msg[MPK_KEYS_RESUMED_BYTES], struct mpk_keys_session *out);

/* A refusal RESUMED with status in [-4095, -1]. Returns 0 or -EINVAL. */
int mpk_keys_resumed_refusal(int status, uint8_t msg[MPK_KEYS_RESUMED_BYTES]);

/* ------------------------------------------------------------ policy */

/* A parsed MPKLINK_ALLOW. */
struct mpk_keys_allow;

/*
 * Parses MPKLINK_ALLOW: comma-separated PORT:NAME[|NAME...], "*" for any
 * identity the CA signed (alone, not among names). No spaces, no empty
 * entries, one entry per port. NULL or "" is an empty policy.
 * Returns 0, -EINVAL (why quotes the bad entry), -ENOMEM.
 */
int mpk_keys_allow_parse(const char *s, struct mpk_keys_allow **out, char *why, size_t why_len);
void mpk_keys_allow_free(struct mpk_keys_allow *a);

/* Whether client name may use port: 0, or -EACCES (the port has no entry,
 * or the name is not in it: why says which). Deny by default. */
int mpk_keys_allow_check(const struct mpk_keys_allow *a, uint16_t port, const char *name,
			 const char **why);

/*
 * The expected server name for port, from MPKLINK_ENDPOINTS
 * (HOST:PORT[=NAME],...; the hosts are mpk_endpoints_parse's business).
 * Returns 1 with name filled, 0 when port has no "=NAME", or -EINVAL (a
 * bad port or name, or two different names for one port; why quotes the
 * entry).
 */
int mpk_keys_endpoint_name(const char *endpoints, uint16_t port,
			   char name[MPK_KEYS_NAME_MAX + 1], char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
