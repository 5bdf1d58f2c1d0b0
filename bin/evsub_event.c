/*
 * evsub_event.c: reading the event behind a delivery. The file is read with
 * pread(2), so the descriptor's offset stays at 0 and the same descriptor
 * can be a handler's stdin without being opened again. A file that is not
 * an event (tampered with, truncated by a disk error) is reported, and
 * evsub puts it with the dead letters rather than running a handler on it.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evsub.h"

#define EVENT_FILE_MAX (64 * 1024 * 1024)

static int
copy_field(json_t *ev, const char *name, char *out, size_t len)
{
	const char *v = json_string_value(json_object_get(ev, name));

	if (v == NULL || strlen(v) >= len)
		return -1;
	strcpy(out, v);
	return 0;
}

int
event_info_read(struct ev_delivery *d, struct event_info *ei, char *why,
    size_t whylen)
{
	json_error_t jerr;
	struct stat st;
	const char *v;
	json_t *ev;
	ssize_t n;

	memset(ei, 0, sizeof *ei);
	if (fstat(d->fd, &st) < 0 || st.st_size > EVENT_FILE_MAX) {
		snprintf(why, whylen, "unreadable or oversized event file");
		return -1;
	}
	if ((ei->text = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	do
		n = pread(d->fd, ei->text, (size_t)st.st_size, 0);
	while (n < 0 && errno == EINTR);
	if (n != st.st_size) {
		snprintf(why, whylen, "cannot read event file: %s",
		    n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	ei->len = (size_t)n;
	ei->text[n] = '\0';
	ev = json_loadb(ei->text, ei->len, JSON_REJECT_DUPLICATES |
	    JSON_ALLOW_NUL, &jerr);
	if (ev == NULL || !json_is_object(ev)) {
		snprintf(why, whylen, "not an event: %s", ev ? "not an object" :
		    jerr.text);
		json_decref(ev);
		return -1;
	}
	if (copy_field(ev, "id", ei->id, sizeof ei->id) < 0 ||
	    copy_field(ev, "type", ei->type, sizeof ei->type) < 0 ||
	    copy_field(ev, "time", ei->time, sizeof ei->time) < 0 ||
	    json_object_get(ev, "payload") == NULL ||
	    ev_json_member_span(ei->text, ei->len, "payload", &ei->payload_off,
	    &ei->payload_len) < 0) {
		snprintf(why, whylen, "not an event: id, type, time or payload "
		    "missing");
		json_decref(ev);
		return -1;
	}
	v = json_string_value(json_object_get(ev, "source"));
	ei->source = strdup(v ? v : "");
	v = json_string_value(json_object_get(ev, "correlationid"));
	ei->correlation = strdup(v ? v : ei->id);
	json_decref(ev);
	if (ei->source == NULL || ei->correlation == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	/* Files are one line; strip the newline so printing adds its own. */
	while (ei->len > 0 && (ei->text[ei->len - 1] == '\n' ||
	    ei->text[ei->len - 1] == '\r'))
		ei->text[--ei->len] = '\0';
	return 0;
}

void
event_info_free(struct event_info *ei)
{
	free(ei->text);
	free(ei->source);
	free(ei->correlation);
	memset(ei, 0, sizeof *ei);
}
