/*
 * fuzz_payload.c: libFuzzer target for ev_payload_parse() and
 * ev_payload_from_words(), the two ways a payload gets into the spool.
 *
 * Properties checked beyond "no crash, no sanitizer report":
 * - on success the output is valid JSON again: parsing it succeeds and
 *   gives back exactly the same bytes (the output is a fixed point);
 * - on failure the error carries the returned status and a terminated
 *   message;
 * - words built from the input split on NUL bytes either fail or give an
 *   object payload that ev_payload_parse() accepts unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evspool.h"

#define MAXWORDS 64

static void
check_err(int rc, const struct ev_err *err)
{
	if (rc == 0)
		return;
	if (err->status != rc || memchr(err->msg, '\0', sizeof err->msg) ==
	    NULL) {
		fprintf(stderr, "bad ev_err for rc %d\n", rc);
		abort();
	}
}

/* TEXT came out of the library as a payload: it must parse to itself. */
static void
check_fixed_point(const char *text, size_t len, const char *what)
{
	struct ev_err err = { 0, "" };
	char *again;
	size_t againlen;
	int rc;

	if (strlen(text) != len) {
		fprintf(stderr, "%s: length %zu but strlen %zu\n", what, len,
		    strlen(text));
		abort();
	}
	rc = ev_payload_parse(text, len, EV_PAYLOAD_MAX_DEFAULT * 4, &again,
	    &againlen, &err);
	if (rc != 0) {
		fprintf(stderr, "%s output does not parse again: %s\n[%s]\n",
		    what, err.msg, text);
		abort();
	}
	if (againlen != len || memcmp(again, text, len) != 0) {
		fprintf(stderr, "%s output not a fixed point:\n[%s]\n[%s]\n",
		    what, text, again);
		abort();
	}
	free(again);
}

static void
fuzz_parse(const uint8_t *data, size_t size)
{
	struct ev_err err = { 0, "" };
	char *out = NULL, *copy;
	size_t outlen = 0;
	int rc;

	/* An exact-size heap copy, so ASan sees any read past LEN. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return;
	memcpy(copy, data, size);
	rc = ev_payload_parse(copy, size, EV_PAYLOAD_MAX_DEFAULT, &out,
	    &outlen, &err);
	check_err(rc, &err);
	if (rc == 0) {
		if (outlen > size) {
			fprintf(stderr, "output longer than input\n");
			abort();
		}
		check_fixed_point(out, outlen, "ev_payload_parse");
		free(out);
	}
	/* The size limit: one byte under the length must be refused. */
	if (size > 0) {
		memset(&err, 0, sizeof err);
		rc = ev_payload_parse(copy, size, size - 1, &out, &outlen, &err);
		if (rc == 0) {
			fprintf(stderr, "limit %zu not enforced\n", size - 1);
			abort();
		}
		check_err(rc, &err);
	}
	free(copy);
}

static void
fuzz_words(const uint8_t *data, size_t size)
{
	struct ev_err err = { 0, "" };
	char *buf, *words[MAXWORDS], *out = NULL;
	size_t i, outlen = 0;
	int n = 0, rc;

	if ((buf = malloc(size + 1)) == NULL)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	words[n++] = buf;
	for (i = 0; i < size && n < MAXWORDS; i++)
		if (buf[i] == '\0')
			words[n++] = buf + i + 1;
	/* A trailing NUL ends the last word rather than starting another. */
	if (size > 0 && buf[size - 1] == '\0' && n > 1 &&
	    words[n - 1] == buf + size)
		n--;
	rc = ev_payload_from_words(words, n, EV_PAYLOAD_MAX_DEFAULT, &out,
	    &outlen, &err);
	check_err(rc, &err);
	if (rc == 0) {
		if (outlen < 2 || out[0] != '{' || out[outlen - 1] != '}') {
			fprintf(stderr, "from_words: not an object: [%s]\n",
			    out);
			abort();
		}
		check_fixed_point(out, outlen, "ev_payload_from_words");
		free(out);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parse(data, size);
	fuzz_words(data, size);
	return 0;
}
