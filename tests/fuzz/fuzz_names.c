/*
 * fuzz_names.c: libFuzzer target for the naming rules (topic.c): types,
 * patterns, subscription names and event ids, and pattern matching.
 *
 * The input is split at its first NUL byte into A and B. Each is checked
 * with every validator; when A is a valid pattern and B a valid type, A is
 * matched against B and the answer compared with a plain memoised
 * recursive matcher written here from the AMQP rules. Cross-checks:
 * - a valid type is a valid pattern, matches itself and is matched by "#";
 * - a valid name is a valid id (the id alphabet is a superset);
 * - nothing valid holds '/', a control byte or a non-ASCII byte, and no
 *   valid type or pattern holds "..", starts or ends with '.'.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evspool.h"

#define MAXSEG (EV_TYPE_MAX / 2 + 1)

struct segs {
	const char *s[MAXSEG];
	size_t len[MAXSEG];
	int n;
};

static void
fail(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "%s: [%s] [%s]\n", what, a, b ? b : "");
	abort();
}

static void
split(const char *s, struct segs *g)
{
	const char *start = s;

	g->n = 0;
	for (;; s++) {
		if (*s == '.' || *s == '\0') {
			if (g->n == MAXSEG)
				abort();
			g->s[g->n] = start;
			g->len[g->n++] = (size_t)(s - start);
			if (*s == '\0')
				return;
			start = s + 1;
		}
	}
}

/* memo: 0 unknown, 1 no, 2 yes. */
static signed char memo[MAXSEG + 1][MAXSEG + 1];

static int
ref_match(const struct segs *p, int i, const struct segs *t, int j)
{
	int r;

	if (memo[i][j] != 0)
		return memo[i][j] == 2;
	if (i == p->n)
		r = j == t->n;
	else if (p->len[i] == 1 && p->s[i][0] == '#')
		r = ref_match(p, i + 1, t, j) ||
		    (j < t->n && ref_match(p, i, t, j + 1));
	else if (j == t->n)
		r = 0;
	else if (p->len[i] == 1 && p->s[i][0] == '*')
		r = ref_match(p, i + 1, t, j + 1);
	else
		r = p->len[i] == t->len[j] &&
		    memcmp(p->s[i], t->s[j], p->len[i]) == 0 &&
		    ref_match(p, i + 1, t, j + 1);
	memo[i][j] = r ? 2 : 1;
	return r;
}

static int
reference(const char *pattern, const char *type)
{
	struct segs p, t;

	split(pattern, &p);
	split(type, &t);
	memset(memo, 0, sizeof memo);
	return ref_match(&p, 0, &t, 0);
}

static void
check_bytes(const char *s, const char *what)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p == '/' || *p < 0x20 || *p >= 0x7f)
			fail(what, s, "forbidden byte accepted");
}

static void
check_one(const char *s)
{
	const char *why = NULL;
	int type, pattern, name, id;
	size_t len = strlen(s);

	type = ev_type_valid(s, &why) == 0;
	if (!type && why == NULL)
		fail("ev_type_valid: no reason", s, NULL);
	why = NULL;
	pattern = ev_pattern_valid(s, &why) == 0;
	if (!pattern && why == NULL)
		fail("ev_pattern_valid: no reason", s, NULL);
	why = NULL;
	name = ev_name_valid(s, &why) == 0;
	if (!name && why == NULL)
		fail("ev_name_valid: no reason", s, NULL);
	why = NULL;
	id = ev_id_valid(s, &why) == 0;
	if (!id && why == NULL)
		fail("ev_id_valid: no reason", s, NULL);

	if (type && !pattern)
		fail("valid type is not a valid pattern", s, NULL);
	if (name && !id)
		fail("valid name is not a valid id", s, NULL);
	if (pattern) {
		check_bytes(s, "pattern");
		if (len > EV_TYPE_MAX || s[0] == '.' || s[len - 1] == '.' ||
		    strstr(s, "..") != NULL)
			fail("bad pattern accepted", s, NULL);
	}
	if (name) {
		check_bytes(s, "name");
		if (len > EV_NAME_MAX || strcmp(s, ".") == 0 ||
		    strcmp(s, "..") == 0)
			fail("bad name accepted", s, NULL);
	}
	if (id) {
		check_bytes(s, "id");
		if (len > EV_ID_MAX || s[0] == '.')
			fail("bad id accepted", s, NULL);
	}
	if (type) {
		if (strchr(s, '*') != NULL || strchr(s, '#') != NULL)
			fail("type with a wildcard", s, NULL);
		if (!ev_pattern_match("#", s))
			fail("'#' does not match a valid type", s, NULL);
		if (!ev_pattern_match(s, s))
			fail("a type does not match itself", s, NULL);
		if (strchr(s, '.') == NULL && !ev_pattern_match("*", s))
			fail("'*' does not match a one-segment type", s, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *a, *b;
	const char *why;
	const uint8_t *nul;
	size_t alen;

	/* Exact-size heap copies, so ASan sees any read past the NUL. */
	nul = memchr(data, '\0', size);
	alen = nul ? (size_t)(nul - data) : size;
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	a = buf;
	b = nul ? buf + alen + 1 : buf + size;

	check_one(a);
	check_one(b);
	if (ev_pattern_valid(a, &why) == 0 && ev_type_valid(b, &why) == 0) {
		int got = ev_pattern_match(a, b);

		if (got != 0 && got != 1)
			fail("ev_pattern_match: not 0 or 1", a, b);
		if (got != reference(a, b))
			fail(got ? "matched, reference says no" :
			    "no match, reference says yes", a, b);
		/* A type as a pattern matches only itself. */
		if (ev_type_valid(a, &why) == 0 && got != (strcmp(a, b) == 0))
			fail("type-as-pattern match is not equality", a, b);
	}
	free(buf);
	return 0;
}
