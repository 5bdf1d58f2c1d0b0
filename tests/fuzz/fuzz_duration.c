/*
 * fuzz_duration.c: libFuzzer target for ev_duration_parse() and
 * ev_duration_format().
 *
 * Checks: no crash; a parsed duration is never negative; the formatted
 * text is NUL-terminated, short, fits any buffer size given (an exact-size
 * heap buffer, so ASan sees an overrun) and parses back to at most the
 * original (the format keeps the two largest units, so it truncates).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evspool.h"

#define SHORT 48

static void
format_checked(int64_t ms)
{
	char buf[SHORT], *small;
	int64_t back;
	size_t n, len;

	memset(buf, 'x', sizeof buf);
	ev_duration_format(ms, buf, sizeof buf);
	if ((len = strnlen(buf, sizeof buf)) == sizeof buf) {
		fprintf(stderr, "format of %lld not terminated\n",
		    (long long)ms);
		abort();
	}
	if (len == 0 || len > 24) {
		fprintf(stderr, "format of %lld: [%s] too long or empty\n",
		    (long long)ms, buf);
		abort();
	}
	if (ev_duration_parse(buf, &back) != 0) {
		fprintf(stderr, "format of %lld: [%s] does not parse\n",
		    (long long)ms, buf);
		abort();
	}
	if (back < 0 || (ms >= 0 && back > ms) || (ms < 0 && back != 0)) {
		fprintf(stderr, "format of %lld: [%s] parses to %lld\n",
		    (long long)ms, buf, (long long)back);
		abort();
	}
	/* Every smaller buffer: truncated, still terminated, no overrun. */
	for (n = 1; n <= len + 1; n++) {
		if ((small = malloc(n)) == NULL)
			return;
		ev_duration_format(ms, small, n);
		if (strnlen(small, n) != (n <= len ? n - 1 : len) ||
		    memcmp(small, buf, strnlen(small, n)) != 0) {
			fprintf(stderr, "format of %lld into %zu bytes wrong\n",
			    (long long)ms, n);
			abort();
		}
		free(small);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	int64_t ms = -1, raw;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (ev_duration_parse(text, &ms) == 0) {
		if (ms < 0) {
			fprintf(stderr, "[%s] parsed to %lld\n", text,
			    (long long)ms);
			abort();
		}
		format_checked(ms);
	}
	free(text);
	/* Any 64-bit value, negative ones included, formats safely. */
	if (size >= sizeof raw) {
		memcpy(&raw, data, sizeof raw);
		format_checked(raw);
	}
	return 0;
}
