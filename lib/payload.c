/*
 * payload.c: checking payloads and building them from KEY=VALUE words.
 *
 * jansson does the checking (one value, nothing after it, valid UTF-8, no
 * duplicate keys, bounded nesting depth), but the payload that is stored is
 * the publisher's own text with the white space between tokens removed: the
 * spelling of numbers and strings is kept exactly, where a round trip
 * through jansson would print 0.1 as 0.10000000000000001 and lose big
 * integers. Removing white space is safe once jansson has accepted the text,
 * because outside strings a valid document holds only tokens and blanks.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int
too_big(struct ev_err *err, size_t len, size_t max)
{
	return ev_fail(err, EX_DATAERR,
	    "payload is %zu bytes, over the limit of %zu", len, max);
}

/* Copy TEXT without the blanks between tokens; returns the new length. */
static size_t
minify(const char *text, size_t len, char *out)
{
	size_t i, o = 0;
	int in_string = 0, escaped = 0;

	for (i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (escaped)
				escaped = 0;
			else if (c == '\\')
				escaped = 1;
			else if (c == '"')
				in_string = 0;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			continue;
		} else if (c == '"') {
			in_string = 1;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

/* Is TEXT (LEN bytes) exactly one JSON number? */
static int
is_number(const char *text, size_t len)
{
	size_t i = 0, digits;

	if (i < len && text[i] == '-')
		i++;
	if (i < len && text[i] == '0')
		i++;
	else if (i < len && text[i] >= '1' && text[i] <= '9')
		while (i < len && text[i] >= '0' && text[i] <= '9')
			i++;
	else
		return 0;
	if (i < len && text[i] == '.') {
		for (i++, digits = 0; i < len && text[i] >= '0' &&
		    text[i] <= '9'; i++)
			digits++;
		if (digits == 0)
			return 0;
	}
	if (i < len && (text[i] == 'e' || text[i] == 'E')) {
		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			i++;
		for (digits = 0; i < len && text[i] >= '0' && text[i] <= '9';
		    i++)
			digits++;
		if (digits == 0)
			return 0;
	}
	return i == len;
}

/*
 * jansson refuses some valid JSON: a number beyond a double or a 64-bit
 * integer (1e400, 100000000000000000000), and \u0000 in an object key. The
 * payload is stored as text, so such values need only be checked, not held:
 * this copy of TEXT has every well-formed number replaced by 0 (padded with
 * blanks) and every \u0000 by \uffff, which changes no token's kind, so the
 * copy is valid JSON exactly when TEXT is. The one cost: an object with keys
 * differing only in \u0000 against \uffff is refused as having a duplicate.
 */
static char *
scrub(const char *text, size_t len)
{
	static const char numchars[] = "0123456789+-.eE";
	char *copy;
	size_t i, j;
	int in_string = 0;

	if ((copy = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(copy, text, len);
	copy[len] = '\0';
	for (i = 0; i < len; i++) {
		if (in_string) {
			if (copy[i] == '\\') {
				if (len - i >= 6 && memcmp(copy + i, "\\u0000", 6) == 0)
					memcpy(copy + i, "\\uffff", 6);
				i++;
			} else if (copy[i] == '"') {
				in_string = 0;
			}
		} else if (copy[i] == '"') {
			in_string = 1;
		} else if (copy[i] == '-' || (copy[i] >= '0' && copy[i] <= '9')) {
			for (j = i; j < len && copy[j] != '\0' &&
			    strchr(numchars, copy[j]) != NULL; j++)
				continue;
			if (is_number(copy + i, j - i)) {
				copy[i] = '0';
				memset(copy + i + 1, ' ', j - i - 1);
			}
			i = j - 1;
		}
	}
	return copy;
}

int
ev_payload_parse(const char *text, size_t len, size_t max, char **out,
    size_t *outlen, struct ev_err *err)
{
	const size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
	    JSON_ALLOW_NUL;
	json_error_t jerr;
	json_t *value;
	char *copy, *nul;

	if (len > max)
		return too_big(err, len, max);
	/* A raw NUL is never valid JSON, but jansson takes one after a
	 * number for the end of the text ("123\0" passes). */
	if ((nul = memchr(text, '\0', len)) != NULL)
		return ev_fail(err, EX_DATAERR,
		    "invalid JSON payload: NUL byte at offset %zu",
		    (size_t)(nul - text));
	value = json_loadb(text, len, flags, &jerr);
	if (value == NULL &&
	    (json_error_code(&jerr) == json_error_numeric_overflow ||
	    json_error_code(&jerr) == json_error_null_byte_in_key)) {
		if ((copy = scrub(text, len)) == NULL)
			return ev_fail_errno(err, EX_OSERR, "out of memory");
		value = json_loadb(copy, len, flags, &jerr);
		free(copy);
	}
	if (value == NULL)
		return ev_fail(err, EX_DATAERR,
		    "invalid JSON payload at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
	json_decref(value);
	if ((copy = malloc(len + 1)) == NULL)
		return ev_fail_errno(err, EX_OSERR, "out of memory");
	*outlen = minify(text, len, copy);
	*out = copy;
	return 0;
}

char *
ev_json_quote(const char *s)
{
	json_t *str = json_string(s);
	char *quoted;

	if (str == NULL)
		return NULL;
	quoted = json_dumps(str, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(str);
	return quoted;
}

/* A growing buffer for building the object text. */
struct textbuf {
	char *p;
	size_t len, cap;
};

static int
append(struct textbuf *b, const char *s, size_t n)
{
	char *bigger;

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((bigger = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = bigger;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
ev_payload_from_words(char *const words[], int nwords, size_t max,
    char **out, size_t *outlen, struct ev_err *err)
{
	struct textbuf b = { NULL, 0, 0 };
	json_t *seen = json_object();
	char *key = NULL, *qkey = NULL, *qval = NULL, *raw = NULL;
	size_t rawlen;
	int i, rc = 0;

	if (seen == NULL || append(&b, "{", 1) < 0) {
		rc = ev_fail_errno(err, EX_OSERR, "out of memory");
		goto done;
	}
	for (i = 0; i < nwords && rc == 0; i++) {
		const char *eq = strchr(words[i], '=');
		int is_raw;
		size_t keylen;

		if (eq == NULL || eq == words[i] ||
		    (eq == words[i] + 1 && words[i][0] == ':')) {
			rc = ev_fail(err, EX_USAGE,
			    "'%s' is not KEY=VALUE or KEY:=JSON", words[i]);
			break;
		}
		is_raw = eq[-1] == ':';
		keylen = (size_t)(eq - words[i]) - (is_raw ? 1 : 0);
		free(key);
		key = strndup(words[i], keylen);
		free(qkey);
		qkey = key ? ev_json_quote(key) : NULL;
		if (qkey == NULL) {
			rc = ev_fail(err, EX_DATAERR,
			    "key of '%s' is not valid UTF-8", words[i]);
			break;
		}
		if (json_object_get(seen, key) != NULL) {
			/* The payload would hold the key twice: a bad
			 * payload, like a duplicate in JSON text. */
			rc = ev_fail(err, EX_DATAERR, "duplicate key '%s'", key);
			break;
		}
		json_object_set_new(seen, key, json_true());
		if (is_raw) {
			free(raw);
			raw = NULL;
			rc = ev_payload_parse(eq + 1, strlen(eq + 1), max, &raw,
			    &rawlen, err);
			if (rc != 0)
				break;
		} else {
			free(qval);
			if ((qval = ev_json_quote(eq + 1)) == NULL) {
				rc = ev_fail(err, EX_DATAERR,
				    "value of '%s' is not valid UTF-8", key);
				break;
			}
		}
		if ((i > 0 && append(&b, ",", 1) < 0) ||
		    append(&b, qkey, strlen(qkey)) < 0 || append(&b, ":", 1) < 0 ||
		    (is_raw ? append(&b, raw, rawlen) :
		    append(&b, qval, strlen(qval))) < 0) {
			rc = ev_fail_errno(err, EX_OSERR, "out of memory");
			break;
		}
	}
	if (rc == 0 && append(&b, "}", 1) < 0)
		rc = ev_fail_errno(err, EX_OSERR, "out of memory");
	if (rc == 0 && b.len > max)
		rc = too_big(err, b.len, max);
done:
	json_decref(seen);
	free(key);
	free(qkey);
	free(qval);
	free(raw);
	if (rc != 0) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*outlen = b.len;
	return 0;
}

/* Skip a JSON string starting at text[i] == '"'; returns the index after
 * its closing quote. The text is known to be valid JSON. */
static size_t
skip_string(const char *text, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (text[i] == '\\')
			i++;
		else if (text[i] == '"')
			return i + 1;
	}
	return len;
}

static size_t
skip_blanks(const char *text, size_t len, size_t i)
{
	while (i < len && (text[i] == ' ' || text[i] == '\t' ||
	    text[i] == '\n' || text[i] == '\r'))
		i++;
	return i;
}

/* Skip one JSON value starting at text[i]; returns the index after it. */
static size_t
skip_value(const char *text, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		char c = text[i];

		if (c == '"') {
			i = skip_string(text, len, i) - 1;
			if (depth == 0)
				return i + 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return i;
			if (--depth == 0)
				return i + 1;
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' ||
		    c == '\n' || c == '\r')) {
			return i;
		}
	}
	return len;
}

int
ev_json_member_span(const char *text, size_t len, const char *name,
    size_t *off, size_t *vlen)
{
	size_t i, keystart, keyend, namelen = strlen(name);

	i = skip_blanks(text, len, 0);
	if (i >= len || text[i] != '{')
		return -1;
	i = skip_blanks(text, len, i + 1);
	while (i < len && text[i] == '"') {
		keystart = i;
		keyend = skip_string(text, len, i);
		i = skip_blanks(text, len, keyend);
		if (i >= len || text[i] != ':')
			return -1;
		i = skip_blanks(text, len, i + 1);
		if (keyend - keystart - 2 == namelen &&
		    memcmp(text + keystart + 1, name, namelen) == 0) {
			*off = i;
			*vlen = skip_value(text, len, i) - i;
			return 0;
		}
		i = skip_blanks(text, len, skip_value(text, len, i));
		if (i < len && text[i] == ',')
			i = skip_blanks(text, len, i + 1);
	}
	return -1;
}
