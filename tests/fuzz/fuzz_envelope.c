/*
 * fuzz_envelope.c: libFuzzer target for reading a spool: ev_envelope_parse()
 * on the bytes of an event file, ev_json_member_span(), and ev_key_valid()
 * and ev_key_time_ms() on the first 36 bytes as a file name.
 *
 * Checks beyond "no crash, no sanitizer report":
 * - a parsed envelope has id, type and time, a valid type, and a payload
 *   span inside the text that is itself an acceptable payload;
 * - a member span found in text that ev_payload_parse() accepts lies
 *   inside the text and is valid JSON;
 * - a valid key's time fits in 48 bits, and ev_key_new() keys are valid.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evspool.h"

static const char *const names[] = {
	"payload", "id", "type", "time", "source", "", "a",
};

static void
fuzz_envelope(const char *text, size_t len)
{
	struct ev_envelope env;
	struct ev_err err = { 0, "" };
	const char *why;
	char *p;
	size_t plen;
	int rc;

	rc = ev_envelope_parse(text, len, &env, &err);
	if (rc != 0) {
		if (err.status != rc || env.id != NULL || env.type != NULL) {
			fprintf(stderr, "envelope failure not clean\n");
			abort();
		}
		return;
	}
	if (env.id == NULL || env.type == NULL || env.time == NULL ||
	    ev_type_valid(env.type, &why) != 0) {
		fprintf(stderr, "envelope accepted without id/type/time\n");
		abort();
	}
	if (env.payload_off > len || env.payload_len > len - env.payload_off ||
	    env.payload_len == 0) {
		fprintf(stderr, "payload span %zu+%zu outside %zu bytes\n",
		    env.payload_off, env.payload_len, len);
		abort();
	}
	if (ev_payload_parse(text + env.payload_off, env.payload_len,
	    SIZE_MAX, &p, &plen, &err) != 0) {
		fprintf(stderr, "accepted envelope, bad payload span: %s\n",
		    err.msg);
		abort();
	}
	free(p);
	ev_envelope_free(&env);
}

static void
fuzz_span(const char *text, size_t len)
{
	struct ev_err err = { 0, "" };
	size_t i, off, vlen, plen;
	char *p;
	int valid;

	valid = ev_payload_parse(text, len, SIZE_MAX, &p, &plen, &err) == 0;
	if (valid)
		free(p);
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (ev_json_member_span(text, len, names[i], &off, &vlen) != 0)
			continue;
		if (off > len || vlen > len - off) {
			fprintf(stderr, "span %zu+%zu outside %zu bytes\n", off,
			    vlen, len);
			abort();
		}
		if (valid && ev_payload_parse(text + off, vlen, SIZE_MAX, &p,
		    &plen, &err) != 0) {
			fprintf(stderr, "member '%s' of valid JSON: span "
			    "%zu+%zu is not JSON: %s\n", names[i], off, vlen,
			    err.msg);
			abort();
		}
		if (valid)
			free(p);
	}
}

static void
fuzz_key(const uint8_t *data, size_t size)
{
	size_t n = size < EV_KEY_LEN ? size : EV_KEY_LEN;
	char *name;
	int64_t ms;

	/* A file name of up to 36 bytes, in an exact-size buffer: a short
	 * name must not be read past its NUL. */
	if ((name = malloc(n + 1)) == NULL)
		return;
	memcpy(name, data, n);
	name[n] = '\0';
	if (ev_key_valid(name)) {
		if (strlen(name) != EV_KEY_LEN) {
			fprintf(stderr, "short key accepted\n");
			abort();
		}
		ms = ev_key_time_ms(name);
		if (ms < 0 || ms >= (int64_t)1 << 48) {
			fprintf(stderr, "key %s: time %lld\n", name,
			    (long long)ms);
			abort();
		}
	}
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int checked_new;
	char key[EV_KEY_LEN + 1], *text;

	if (!checked_new) {
		checked_new = 1;
		ev_key_new(key);
		if (!ev_key_valid(key) ||
		    llabs(ev_key_time_ms(key) - ev_now_ms()) > 2000) {
			fprintf(stderr, "ev_key_new: %s\n", key);
			abort();
		}
	}
	/* An exact-size copy, not NUL-terminated, as a file's bytes are
	 * handed over with a length. */
	if ((text = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	fuzz_envelope(text, size);
	fuzz_span(text, size);
	free(text);
	fuzz_key(data, size);
	return 0;
}
