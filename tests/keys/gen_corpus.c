/* SPDX-License-Identifier: MIT */
/*
 * Writes the fuzz seeds for fuzz_handshake (gen_corpus DIR), or checks
 * that DIR holds exactly what would be written (gen_corpus --check DIR):
 * the seeds carry signatures from the fixed keys, so a format change must
 * regenerate them or the fuzzer would only ever see invalid messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixed.h"

struct seed {
	const char *file;
	char tag;
	const void *body;
	size_t len;
};

static int one(const char *dir, const struct seed *s, int check)
{
	char path[4096];
	unsigned char want[2048], got[2048];
	size_t n = 1 + s->len, k = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, s->file);
	want[0] = (unsigned char)s->tag;
	memcpy(want + 1, s->body, s->len);
	if (!check) {
		fp = fopen(path, "wb");
		if (!fp || fwrite(want, 1, n, fp) != n || fclose(fp)) {
			fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
			return 1;
		}
		return 0;
	}
	fp = fopen(path, "rb");
	if (fp) {
		k = fread(got, 1, sizeof(got), fp);
		fclose(fp);
	}
	if (!fp || k != n || memcmp(got, want, n)) {
		fprintf(stderr,
			"gen_corpus: %s is %s; regenerate the seeds: gen_corpus %s\n", path,
			fp ? "out of date" : "missing", dir);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const char allow[] = "50051:greeter|alice,8080:*";
	static const char eps[] = "127.0.0.1:50051=greeter,[::1]:9000=db,localhost:8080";
	int check = argc == 3 && !strcmp(argv[1], "--check"), bad = 0;
	const char *dir = argv[argc - 1];
	struct fixed f;

	if (argc != 2 + check) {
		fprintf(stderr, "usage: gen_corpus [--check] DIR\n");
		return 2;
	}
	if (fixed_init(&f) < 0) {
		fprintf(stderr, "gen_corpus: fixed_init failed\n");
		return 1;
	}
	{
		const struct seed seeds[] = {
			{"hello", 'H', f.hello, sizeof(f.hello)},
			{"reply", 'R', f.reply, sizeof(f.reply)},
			{"refusal", 'R', f.refusal, sizeof(f.refusal)},
			{"resume", 'S', f.resume, sizeof(f.resume)},
			{"resumed", 'D', f.resumed, sizeof(f.resumed)},
			{"resumed_refusal", 'D', f.resumed_refusal, sizeof(f.resumed_refusal)},
			{"cert", 'C', mpk_keys_identity_cert(f.client)->raw, MPK_KEYS_CERT_BYTES},
			{"allow", 'A', allow, sizeof(allow) - 1},
			{"endpoints", 'E', eps, sizeof(eps) - 1},
		};

		for (size_t i = 0; i < sizeof(seeds) / sizeof(*seeds); i++)
			bad |= one(dir, &seeds[i], check);
	}
	fixed_free(&f);
	return bad;
}
