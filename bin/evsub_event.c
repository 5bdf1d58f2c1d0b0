/*
 * evsub_event.c: reading the event behind a delivery. The file is read with
 * pread(2), so the descriptor's offset stays at 0 and the same descriptor
 * can be a handler's stdin without being opened again. A file that is not
 * an event (tampered with, truncated by a disk error) is reported, and
 * evsub puts it with the dead letters rather than running a handler on it;
 * one that cannot be read for now (no memory, an I/O error) is a failed
 * attempt, retried later like a handler's failure.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evsub.h"

#define EVENT_FILE_MAX (64 * 1024 * 1024)

int
event_info_read(struct ev_delivery *d, struct event_info *ei, char *why,
    size_t whylen)
{
	struct ev_envelope env;
	struct ev_err err = { 0 };
	struct stat st;
	ssize_t n;

	memset(ei, 0, sizeof *ei);
	if (fstat(d->fd, &st) < 0) {
		snprintf(why, whylen, "cannot read event file: %s",
		    strerror(errno));
		return EVENT_UNREADABLE;
	}
	if (st.st_size > EVENT_FILE_MAX) {
		snprintf(why, whylen, "oversized event file");
		return EVENT_BAD;
	}
	if ((ei->text = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return EVENT_UNREADABLE;
	}
	do
		n = pread(d->fd, ei->text, (size_t)st.st_size, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		snprintf(why, whylen, "cannot read event file: %s",
		    strerror(errno));
		return EVENT_UNREADABLE;
	}
	if (n != st.st_size) {
		/* Event files never change once linked: a short read is a
		 * file someone else wrote or truncated. */
		snprintf(why, whylen, "not an event: short read");
		return EVENT_BAD;
	}
	ei->len = (size_t)n;
	ei->text[n] = '\0';
	if (ev_envelope_parse(ei->text, ei->len, &env, &err) != 0) {
		snprintf(why, whylen, "%s", err.msg);
		return err.status == EX_OSERR ? EVENT_UNREADABLE : EVENT_BAD;
	}
	ei->payload_off = env.payload_off;
	ei->payload_len = env.payload_len;
	if (strlen(env.id) >= sizeof ei->id || strlen(env.time) >=
	    sizeof ei->time) {
		snprintf(why, whylen, "not an event: id or time too long");
		ev_envelope_free(&env);
		return EVENT_BAD;
	}
	strcpy(ei->id, env.id);
	strcpy(ei->type, env.type);    /* checked: at most EV_TYPE_MAX */
	strcpy(ei->time, env.time);
	ei->source = strdup(env.source ? env.source : "");
	ei->correlation = strdup(env.correlationid ? env.correlationid :
	    env.id);
	ev_envelope_free(&env);
	if (ei->source == NULL || ei->correlation == NULL) {
		snprintf(why, whylen, "out of memory");
		return EVENT_UNREADABLE;
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
