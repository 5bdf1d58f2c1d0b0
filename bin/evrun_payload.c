/*
 * evrun_payload.c: what evrun's events say.
 *
 *   TYPE.started    {"command":[...]}
 *   TYPE.completed  {"command":[...],"exit":0,"signal":null,"duration_ms":12,
 *                    "output":<stdout>,"output_truncated":false}
 *   TYPE.failed     the same, with "stderr": the last 4 KiB of stderr, and
 *                   "error" when the command could not be run at all
 *
 * "output" is the captured stdout as JSON when it is one JSON text (so one
 * step's JSON result is the next step's input, spelled as printed), and as
 * a string otherwise, with any bytes that are not UTF-8 replaced by U+FFFD.
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

char *
run_payload(char **command, const struct capture *cap, int status,
    int64_t duration_ms, int spawn_errno)
{
	json_t *obj = json_object(), *argv = json_array(), *output = NULL;
	char *raw = NULL, *minified = NULL, *head, *result;
	size_t len, rawlen = 0;
	struct ev_err err;
	int i;

	for (i = 0; command[i] != NULL; i++)
		json_array_append_new(argv, text_value(command[i],
		    strlen(command[i])));
	json_object_set_new(obj, "command", argv);
	if (cap == NULL)
		goto dump;
	json_object_set_new(obj, "exit", WIFEXITED(status) ?
	    json_integer(WEXITSTATUS(status)) : json_null());
	json_object_set_new(obj, "signal", WIFSIGNALED(status) ?
	    json_integer(WTERMSIG(status)) : json_null());
	json_object_set_new(obj, "duration_ms", json_integer(duration_ms));
	if (spawn_errno != 0)
		json_object_set_new(obj, "error",
		    json_string(strerror(spawn_errno)));
	if (cap->out.buf != NULL) {
		raw = capture_text(&cap->out, &rawlen);
		/* JSON output goes in as written; the key is added last, by
		 * hand, so its spelling survives. */
		if (raw != NULL && !cap->out.truncated && rawlen > 0 &&
		    ev_payload_parse(raw, rawlen, CAPTURE_OUT_MAX, &minified,
		    &len, &err) == 0)
			output = NULL;
		else if (raw != NULL)
			output = text_value(raw, rawlen);
		json_object_set_new(obj, "output_truncated",
		    json_boolean(cap->out.truncated));
		if (output != NULL)
			json_object_set_new(obj, "output", output);
		if (status != 0) {
			char *tail = capture_text(&cap->err, &len);

			if (tail != NULL)
				json_object_set_new(obj, "stderr",
				    text_value(tail, len));
			free(tail);
		}
	}
dump:
	head = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	free(raw);
	if (head == NULL || minified == NULL) {
		free(minified);
		return head;
	}
	/* Splice ,"output":RAW before the closing brace. */
	len = strlen(head);
	result = malloc(len + strlen(minified) + 16);
	if (result != NULL)
		sprintf(result, "%.*s,\"output\":%s}", (int)(len - 1), head,
		    minified);
	free(head);
	free(minified);
	return result;
}
