/*
 * topic.c: event types, type patterns and the other names that become file
 * names in the spool.
 *
 * A type is dot-separated segments of [A-Za-z0-9_-], 1-200 bytes in all. A
 * pattern may also use '*' for exactly one segment and '#' for zero or more,
 * as AMQP topic exchanges do; a wildcard is always a whole segment. Because
 * these strings end up in paths, validation is strict and allow-listed: no
 * '/', no "..", no control or non-ASCII bytes can get through.
 */
#include "config.h"

#include <string.h>

#include "internal.h"

static int
is_segment_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Shared by types and patterns: WILDCARDS says whether '*' and '#' may stand
 * as whole segments. */
static int
check_dotted(const char *s, int wildcards, const char **why)
{
	size_t len, seglen = 0;
	const char *p;
	int wild = 0;

	len = strnlen(s, EV_TYPE_MAX + 1);
	if (len == 0) {
		*why = "empty";
		return -1;
	}
	if (len > EV_TYPE_MAX) {
		*why = "longer than 200 bytes";
		return -1;
	}
	for (p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (seglen == 0) {
				*why = "empty segment";
				return -1;
			}
			if (wild && seglen != 1) {
				*why = "a wildcard must be a whole segment";
				return -1;
			}
			if (*p == '\0')
				return 0;
			seglen = 0;
			wild = 0;
			continue;
		}
		if (*p == '*' || *p == '#') {
			if (!wildcards) {
				*why = "wildcards are for patterns, not types";
				return -1;
			}
			wild = 1;
		} else if (!is_segment_char((unsigned char)*p)) {
			*why = (unsigned char)*p >= 0x80 ? "non-ASCII byte" :
			    "a segment may hold only letters, digits, '_' and '-'";
			return -1;
		} else if (wild) {
			*why = "a wildcard must be a whole segment";
			return -1;
		}
		seglen++;
	}
}

int
ev_type_valid(const char *type, const char **why)
{
	return check_dotted(type, 0, why);
}

int
ev_pattern_valid(const char *pattern, const char **why)
{
	return check_dotted(pattern, 1, why);
}

/* Split a valid dotted string into segment starts and lengths. */
static int
split(const char *s, const char *seg[], size_t len[], int max)
{
	int n = 0;
	const char *start = s;

	for (;; s++) {
		if (*s == '.' || *s == '\0') {
			if (n == max)
				return -1;
			seg[n] = start;
			len[n] = (size_t)(s - start);
			n++;
			if (*s == '\0')
				return n;
			start = s + 1;
		}
	}
}

/*
 * Matching is dynamic programming over segments rather than backtracking, so
 * a pattern full of '#' cannot make it exponential: ok[j] says whether the
 * pattern's first i segments match the type's first j segments.
 */
int
ev_pattern_match(const char *pattern, const char *type)
{
	enum { MAXSEG = EV_TYPE_MAX / 2 + 1 };
	const char *pseg[MAXSEG], *tseg[MAXSEG];
	size_t plen[MAXSEG], tlen[MAXSEG];
	unsigned char ok[MAXSEG + 1], next[MAXSEG + 1];
	int np, nt, i, j;

	np = split(pattern, pseg, plen, MAXSEG);
	nt = split(type, tseg, tlen, MAXSEG);
	if (np < 0 || nt < 0)
		return 0;
	memset(ok, 0, sizeof ok);
	ok[0] = 1;
	for (i = 0; i < np; i++) {
		int hash = plen[i] == 1 && pseg[i][0] == '#';
		int star = plen[i] == 1 && pseg[i][0] == '*';

		memset(next, 0, sizeof next);
		for (j = 0; j <= nt; j++) {
			if (hash) {
				/* '#' eats zero segments, or one more than before. */
				next[j] = ok[j] || (j > 0 && next[j - 1]);
			} else if (j > 0 && ok[j - 1]) {
				next[j] = star || (plen[i] == tlen[j - 1] &&
				    memcmp(pseg[i], tseg[j - 1], plen[i]) == 0);
			}
		}
		memcpy(ok, next, sizeof ok);
	}
	return ok[nt];
}

static int
check_charset(const char *s, size_t max, const char *extra, const char *what,
    const char **why)
{
	size_t len = strnlen(s, max + 1), i;
	unsigned char c;

	if (len == 0) {
		*why = "empty";
		return -1;
	}
	if (len > max) {
		*why = what;
		return -1;
	}
	c = (unsigned char)s[0];
	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_')) {
		*why = "must start with a letter, a digit or '_'";
		return -1;
	}
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (!is_segment_char(c) && (c == '\0' || strchr(extra, c) == NULL)) {
			*why = c >= 0x80 ? "non-ASCII byte" : "character not allowed";
			return -1;
		}
	}
	return 0;
}

int
ev_name_valid(const char *name, const char **why)
{
	return check_charset(name, EV_NAME_MAX, ".", "longer than 64 bytes", why);
}

int
ev_id_valid(const char *id, const char **why)
{
	return check_charset(id, EV_ID_MAX, ".:", "longer than 200 bytes", why);
}
