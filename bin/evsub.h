/*
 * evsub.h: what evsub's files share: its options, one running handler, and
 * the event fields a handler sees in its environment.
 */
#ifndef EVSPOOL_EVSUB_H
#define EVSPOOL_EVSUB_H

#include <sys/types.h>

#include "evspool.h"

struct evsub_opts {
	const char *spool, *name, *format;
	char **patterns;
	int npatterns;
	char **command;            /* NULL: print events (streaming mode) */
	int jobs, retries, ordered, once, payload_only, nul, quiet, verbose;
	long count;                /* 0: no limit */
	int64_t timeout_ms;        /* 0: none */
	int64_t backoff_min_ms, backoff_max_ms;
	int64_t wait_ms;           /* -w; 0: none */
	int64_t grace_ms;          /* on SIGTERM, and before KILL on timeout */
	int64_t since_ms;          /* --since; -1: none */
	int since_all;
};

/* The envelope fields of one event, read from its file. */
struct event_info {
	char *text;                /* the whole file */
	size_t len;
	char id[EV_ID_MAX + 1], type[EV_TYPE_MAX + 1], time[64];
	char *source, *correlation;
	size_t payload_off, payload_len;
};

/* Read and check the event behind D (whose descriptor keeps its offset):
 * 0, or EVENT_BAD (the file is not an event: the dead letters) or
 * EVENT_UNREADABLE (it cannot be read for now: a failed attempt), with WHY
 * saying what went wrong. */
enum { EVENT_BAD = -1, EVENT_UNREADABLE = -2 };
int event_info_read(struct ev_delivery *d, struct event_info *ei,
    char *why, size_t whylen);
void event_info_free(struct event_info *ei);

/* One handler process. */
struct job {
	pid_t pid;                 /* 0: slot free */
	struct ev_delivery d;
	int64_t started_ms, deadline_ms, kill_at_ms;
	int timed_out;
	int stopped;               /* killed because evsub is stopping */
	char id[EV_ID_MAX + 1], type[EV_TYPE_MAX + 1];
};

/* evsub_run.c */
int run_prepare(const struct evsub_opts *o, const char *spool);
/* Start the handler for D; on failure, *why says what went wrong and the
 * caller treats it as a failed attempt. */
int run_start(const struct evsub_opts *o, struct job *job,
    const struct event_info *ei, const char *subname, char *why,
    size_t whylen);

/* evsub_print.c: write one event to stdout; -1 with errno on a write error
 * (EPIPE when the reader went away). */
int print_event(const struct evsub_opts *o, const struct event_info *ei);

#endif
