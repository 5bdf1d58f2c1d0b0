/*
 * evrun_payload.c: what evrun's events say.
 *
 *   TYPE.started    {"command":[...]}
 *   TYPE.completed  {"command":[...],"exit":0,"signal":null,"duration_ms":12,
 *                    "output_truncated":false,"output":<stdout>}
 *   TYPE.failed     the same, with "stderr": the last 4 KiB of stderr (and
 *                   "stderr_truncated":true when some of it was left out),
 *                   and "error" when the command could not be run at all
 *
 * "output" is the captured stdout as JSON when it is one JSON text (so one
 * step's JSON result is the next step's input, spelled as printed), and as
 * a string otherwise, with any bytes that are not UTF-8 replaced by U+FFFD.
 *
 * The payload must fit the spool's payload_max, or the outcome of the
 * command would be lost because it printed a lot. So when it does not fit,
 * the captured text is cut, never the rest: the room the other members
 * leave is shared by stdout and stderr, half each, and what one does not
 * need goes to the other. Text is measured as JSON spells it (a control
 * byte can take six bytes, a byte that is not UTF-8 three), stdout keeps
 * its head and stderr its tail, as their captures do, every cut falls
 * between two characters, and output_truncated / stderr_truncated say
 * that something was left out. Only a payload that is too big with no
 * captured text at all (a huge command line, a tiny payload_max) is left
 * to the publisher to refuse.
 */
#include "config.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "capture.h"
#include "evspool.h"

/* One captured stream as the payload holds it: bytes [off, len) of TEXT. */
struct part {
	char *text;
	size_t off, len;
	int truncated;      /* something was left out */
};

/* Everything a TYPE.completed or TYPE.failed payload is made of. */
struct outcome {
	char **command;
	int status, spawn_errno;
	int64_t duration_ms;
	int ended;          /* 0: TYPE.started, the command alone */
	int captured;       /* 0: --no-output */
	int failed;         /* exited non-zero: stderr goes in */
	struct part out, err;
	char *json;         /* stdout as compact JSON, or NULL: a string */
};

/* Length of the valid UTF-8 sequence at P (at most N bytes), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are invalid. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* What the character at P (at most N bytes) costs in a JSON string as
 * text_value() and jansson write it; *step gets how many bytes it is. */
static size_t
json_cost(const char *p, size_t n, size_t *step)
{
	unsigned char c = (unsigned char)p[0];

	*step = utf8_seq((const unsigned char *)p, n);
	if (*step == 0) {
		*step = 1;
		return 3;               /* U+FFFD */
	}
	if (*step > 1)
		return *step;
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' ||
	    c == '\r' || c == '\t')
		return 2;
	return c < 0x20 ? 6 : 1;        /* \u00XX */
}

static size_t
part_cost(const struct part *p)
{
	size_t i, cost = 0, step;

	for (i = p->off; i < p->len; i += step)
		cost += json_cost(p->text + i, p->len - i, &step);
	return cost;
}

/* Keep the longest head of P that costs at most BUDGET. */
static void
keep_head(struct part *p, size_t budget)
{
	size_t i, c, cost = 0, step;

	for (i = p->off; i < p->len; i += step) {
		c = json_cost(p->text + i, p->len - i, &step);
		if (cost + c > budget)
			break;
		cost += c;
	}
	if (i < p->len) {
		p->len = i;
		p->truncated = 1;
	}
}

/* Keep the longest tail of P that costs at most BUDGET. */
static void
keep_tail(struct part *p, size_t budget)
{
	size_t cost = part_cost(p), step;

	while (p->off < p->len && cost > budget) {
		cost -= json_cost(p->text + p->off, p->len - p->off, &step);
		p->off += step;
		p->truncated = 1;
	}
}

/* A capture cut at its limit may have cut a character in two: leave out
 * the piece, at the end of a head... */
static void
drop_piece_at_end(struct part *p)
{
	const unsigned char *s = (const unsigned char *)p->text;
	size_t back = 0, need = 1;
	unsigned char lead;

	while (back < 3 && back < p->len && (s[p->len - 1 - back] & 0xc0) == 0x80)
		back++;
	if (back == p->len)
		return;
	lead = s[p->len - 1 - back];
	if ((lead & 0xe0) == 0xc0)
		need = 2;
	else if ((lead & 0xf0) == 0xe0)
		need = 3;
	else if ((lead & 0xf8) == 0xf0)
		need = 4;
	if (need > back + 1)
		p->len -= back + 1;
}

/* ... and at the start of a tail. */
static void
drop_piece_at_start(struct part *p)
{
	while (p->off < 3 && p->off < p->len &&
	    ((unsigned char)p->text[p->off] & 0xc0) == 0x80)
		p->off++;
}

/* TEXT as a JSON string value, invalid UTF-8 replaced by U+FFFD. */
static json_t *
text_value(const char *text, size_t len)
{
	char *clean = malloc(len * 3 + 1);
	size_t i = 0, o = 0, seq;
	json_t *v;

	if (clean == NULL)
		return NULL;
	while (i < len) {
		seq = utf8_seq((const unsigned char *)text + i, len - i);
		if (seq == 0) {
			/* U+FFFD into a counted buffer (json_stringn), not a string. */
			/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(clean + o, text + i, seq);
			o += seq;
			i += seq;
		}
	}
	v = json_stringn(clean, o);
	free(clean);
	return v;
}

/* The payload of O, freshly allocated, or NULL when memory ran out. With
 * BARE, the captured texts are empty and marked truncated: what the rest
 * of the payload takes. */
static char *
compose(const struct outcome *o, int bare)
{
	json_t *obj = json_object(), *argv = json_array(), *v;
	const char *json = bare ? NULL : o->json;
	char *head, *result;
	size_t len;
	int i, bad = obj == NULL || argv == NULL;

	for (i = 0; o->command[i] != NULL; i++)
		bad |= json_array_append_new(argv, text_value(o->command[i],
		    strlen(o->command[i])));
	bad |= json_object_set_new(obj, "command", argv);
	if (!o->ended)
		goto dump;
	bad |= json_object_set_new(obj, "exit", WIFEXITED(o->status) ?
	    json_integer(WEXITSTATUS(o->status)) : json_null());
	bad |= json_object_set_new(obj, "signal", WIFSIGNALED(o->status) ?
	    json_integer(WTERMSIG(o->status)) : json_null());
	bad |= json_object_set_new(obj, "duration_ms",
	    json_integer(o->duration_ms));
	if (o->spawn_errno != 0)
		bad |= json_object_set_new(obj, "error",
		    json_string(strerror(o->spawn_errno)));
	if (!o->captured)
		goto dump;
	/* Bare, false: its longer spelling. */
	bad |= json_object_set_new(obj, "output_truncated",
	    json_boolean(!bare && o->out.truncated));
	/* JSON output goes in as written; the key is added last, by hand, so
	 * its spelling survives. */
	if (json == NULL) {
		v = bare ? json_string("") : text_value(o->out.text + o->out.off,
		    o->out.len - o->out.off);
		bad |= json_object_set_new(obj, "output", v);
	}
	if (o->failed) {
		v = bare ? json_string("") : text_value(o->err.text + o->err.off,
		    o->err.len - o->err.off);
		bad |= json_object_set_new(obj, "stderr", v);
		if (bare || o->err.truncated)
			bad |= json_object_set_new(obj, "stderr_truncated",
			    json_true());
	}
dump:
	head = bad ? NULL : json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (head == NULL || json == NULL)
		return head;
	/* Splice ,"output":JSON before the closing brace. */
	len = strlen(head);
	result = malloc(len + strlen(json) + 16);
	if (result != NULL)
		sprintf(result, "%.*s,\"output\":%s}", (int)(len - 1), head, json);
	free(head);
	return result;
}

/* Cut the captured texts of O so that its payload fits MAX bytes; *PAYLOAD
 * gets it (or, when it is over MAX even with no text, that payload, for
 * the publisher to refuse). Returns 0, or -1 when memory ran out. */
static int
fit(struct outcome *o, size_t max, char **payload)
{
	size_t room, base, want_out, want_err, out_budget, err_budget;
	size_t slack = 0, len;
	char *bare;
	int tries;

	if ((bare = compose(o, 1)) == NULL)
		return -1;
	base = strlen(bare);
	/* The estimate of a text's cost is exact for jansson as we know it;
	 * should it be off, the next try takes the excess off the room. */
	for (tries = 0; tries < 4 && base + slack < max; tries++) {
		room = max - base - slack;
		want_out = o->json != NULL ? strlen(o->json) : part_cost(&o->out);
		want_err = o->failed ? part_cost(&o->err) : 0;
		if (want_out + want_err <= room) {
			out_budget = want_out;
			err_budget = want_err;
		} else if (want_out <= room / 2) {
			out_budget = want_out;
			err_budget = room - want_out;
		} else if (want_err <= room - room / 2) {
			out_budget = room - want_err;
			err_budget = want_err;
		} else {
			out_budget = room / 2;
			err_budget = room - room / 2;
		}
		if (want_out > out_budget && o->json != NULL) {
			/* Cut JSON is no JSON: it goes in as a string. */
			free(o->json);
			o->json = NULL;
			o->out.truncated = 1;
		}
		if (o->json == NULL)
			keep_head(&o->out, out_budget);
		if (o->failed)
			keep_tail(&o->err, err_budget);
		if ((*payload = compose(o, 0)) == NULL) {
			free(bare);
			return -1;
		}
		if ((len = strlen(*payload)) <= max) {
			free(bare);
			return 0;
		}
		free(*payload);
		slack += len - max;
	}
	/* No room at all: no text, marked as cut where there was some. */
	free(bare);
	if (o->json != NULL) {
		free(o->json);
		o->json = NULL;
		o->out.truncated = 1;
	}
	keep_head(&o->out, 0);
	if (o->failed)
		keep_tail(&o->err, 0);
	return (*payload = compose(o, 0)) == NULL ? -1 : 0;
}

int
run_payload(char **command, const struct capture *cap, int status,
    int64_t duration_ms, int spawn_errno, size_t max, char **payload,
    struct ev_err *err)
{
	struct outcome o = { 0 };
	struct ev_err ignored;
	size_t len;
	int rc = 0;

	o.command = command;
	o.status = status;
	o.spawn_errno = spawn_errno;
	o.duration_ms = duration_ms;
	o.ended = cap != NULL;
	if (cap != NULL && cap->out.buf != NULL) {
		o.captured = 1;
		o.failed = status != 0;
		if ((o.out.text = capture_text(&cap->out, &o.out.len)) == NULL ||
		    (o.failed && (o.err.text = capture_text(&cap->err,
		    &o.err.len)) == NULL)) {
			rc = -1;
			goto out;
		}
		o.out.truncated = cap->out.truncated;
		o.err.truncated = cap->err.truncated;
		if (o.out.truncated)
			drop_piece_at_end(&o.out);
		if (o.err.truncated)
			drop_piece_at_start(&o.err);
		if (!o.out.truncated && o.out.len > 0 &&
		    ev_payload_parse(o.out.text, o.out.len, CAPTURE_OUT_MAX,
		    &o.json, &len, &ignored) != 0)
			o.json = NULL;
	}
	if ((*payload = compose(&o, 0)) == NULL)
		rc = -1;
	else if (o.captured && strlen(*payload) > max) {
		free(*payload);
		*payload = NULL;
		rc = fit(&o, max, payload);
	}
out:
	free(o.out.text);
	free(o.err.text);
	free(o.json);
	if (rc != 0)
		return ev_fail(err, EX_OSERR, "out of memory");
	return 0;
}
