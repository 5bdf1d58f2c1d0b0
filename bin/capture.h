/*
 * capture.h: evrun's view of its command's output: passed through to its
 * own stdout and stderr, and kept (the head of stdout, the tail of stderr)
 * for the event it publishes.
 */
#ifndef EVSPOOL_CAPTURE_H
#define EVSPOOL_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evspool.h"

#define CAPTURE_OUT_MAX (64 * 1024)    /* stdout kept: the first 64 KiB */
#define CAPTURE_ERR_MAX (4 * 1024)     /* stderr kept: the last 4 KiB */

struct stream {
	int pipe[2];        /* -1 when not captured */
	int passthrough;    /* evrun's own descriptor to copy to */
	char *buf;
	size_t len, max;
	int keep_tail;      /* 1: a ring of the last MAX bytes */
	size_t head;        /* ring start, when keep_tail */
	int truncated;
};

struct capture {
	struct stream out, err;
};

int capture_init(struct capture *cap, int disabled);
/* Copy and keep output until the command PID has exited and its pipes are
 * drained; forward TERM, INT and HUP to it. *STATUS gets its wait status. */
void capture_run(struct capture *cap, int sigfd, pid_t pid, int *status);
/* The kept bytes in order, in a fresh buffer (the ring unrolled). */
char *capture_text(const struct stream *s, size_t *len);
void capture_free(struct capture *cap);

/* evrun_payload.c: the payload of TYPE.started (CAP NULL), or of
 * TYPE.completed / TYPE.failed, into *PAYLOAD (freshly allocated). The
 * captured text is cut, and marked so, as far as the payload needs to fit
 * MAX bytes (the spool's payload_max). Returns 0, or EX_OSERR. */
int run_payload(char **command, const struct capture *cap, int status,
    int64_t duration_ms, int spawn_errno, size_t max, char **payload,
    struct ev_err *err);

#endif
