/*
 * evspool.h: the public interface of libevspool.
 *
 * The library is what evpub, evsub, evrun and evctl share: naming rules for
 * event types and patterns, the event envelope, and a bus (publish, subscribe,
 * acknowledge) behind a small table of operations so that a second backend
 * (NATS JetStream) can sit beside the file spool later.
 *
 * One error pattern is used everywhere: a library function returns 0 on
 * success, or a sysexits(3) status (EX_USAGE, EX_DATAERR, EX_CANTCREAT,
 * EX_IOERR, EX_TEMPFAIL, ...) on failure, after writing one line of text into
 * the caller's struct ev_err. The library never prints and never exits; the
 * tools print "tool: message" and exit with the status.
 */
#ifndef EVSPOOL_H
#define EVSPOOL_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sysexits.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---------------------------------------------------------- */

struct ev_err {
	int status;           /* a sysexits(3) code, 0 when nothing failed */
	char msg[512];        /* one line, no trailing newline, no tool name */
};

/* Record a failure and return its status, so callers can write
 * "return ev_fail(err, EX_DATAERR, "...", ...);". */
int ev_fail(struct ev_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, with ": strerror(errno)" appended (errno as it was on entry). */
int ev_fail_errno(struct ev_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The sysexits status that fits an errno from writing into the spool:
 * ENOSPC, EIO, EDQUOT... are EX_IOERR; EACCES, EROFS, ENOENT are EX_CANTCREAT. */
int ev_status_for_errno(int errnum);

/* ---- names: types, patterns, subscription names, ids ------------------ */

#define EV_TYPE_MAX 200
#define EV_NAME_MAX 64
#define EV_ID_MAX 200

/* A type is 1-200 bytes of dot-separated, non-empty segments of
 * [A-Za-z0-9_-]. On failure *why says what is wrong (static text). */
int ev_type_valid(const char *type, const char **why);
/* A pattern is a type whose segments may also be '*' (exactly one segment)
 * or '#' (zero or more segments); a wildcard is always a whole segment. */
int ev_pattern_valid(const char *pattern, const char **why);
/* Does TYPE match PATTERN (both already valid)? AMQP topic semantics. */
int ev_pattern_match(const char *pattern, const char *type);
/* A subscription name: 1-64 bytes of [A-Za-z0-9_.-], starting with a
 * letter, a digit or '_'. */
int ev_name_valid(const char *name, const char **why);
/* An event id chosen by a caller: 1-200 bytes of [A-Za-z0-9_.:-], starting
 * with a letter, a digit or '_'. */
int ev_id_valid(const char *id, const char **why);

/* ---- durations ------------------------------------------------------- */

/* "250ms", "30s", "5m", "1h", "2d", or a sum such as "1h30m"; a bare number
 * is seconds. Stores milliseconds. Returns 0, or -1 for a malformed or
 * overflowing text. */
int ev_duration_parse(const char *text, int64_t *ms);
/* "3m12s", "450ms", "2d4h": the two largest units. */
void ev_duration_format(int64_t ms, char *buf, size_t len);

/* ---- ids and order keys ---------------------------------------------- */

/* A key is a UUIDv7 in its 36-character text form. Every event in a spool has
 * one: it names the event's files and orders the queues, and it is the event
 * id unless the publisher chose one with --id. Keys made by one process are
 * strictly increasing, even when the clock steps back. */
#define EV_KEY_LEN 36
void ev_key_new(char out[EV_KEY_LEN + 1]);
/* Is NAME exactly a key as ev_key_new writes it (lower-case hex)? */
int ev_key_valid(const char *name);
/* Milliseconds since the epoch carried in a valid key. */
int64_t ev_key_time_ms(const char *key);

/* ---- time ------------------------------------------------------------ */

int64_t ev_now_ms(void);            /* CLOCK_REALTIME, milliseconds */
int64_t ev_monotonic_ms(void);      /* CLOCK_MONOTONIC, milliseconds */
/* RFC 3339 UTC with microseconds: 2026-11-23T13:15:30.123456Z (or with
 * milliseconds, from a time in ms). */
#define EV_TIMEBUF 48
void ev_time_rfc3339(char out[EV_TIMEBUF]);
void ev_time_rfc3339_ms(int64_t ms, char out[EV_TIMEBUF]);

/* ---- small helpers the tools share ---------------------------------- */

/* Write all LEN bytes, retrying on EINTR and short writes: 0 or -1. */
int ev_writeall(int fd, const void *buf, size_t len);
/* Read until EOF or LEN bytes; returns the count or -1. */
ssize_t ev_readall(int fd, void *buf, size_t len);
/* A directory stream over DIRFD, from its start, leaving DIRFD open for
 * the caller (closedir() closes only the stream's own copy); NULL and
 * errno on failure. */
DIR *ev_opendir_at(int dirfd);

/* Read everything from FD (at most MAX bytes; errno EFBIG beyond) into a
 * fresh NUL-terminated buffer. Returns 0, or -1 with errno set. */
int ev_read_fd(int fd, size_t max, char **out, size_t *outlen);
/* S as a JSON string with its quotes, freshly allocated; NULL if S is not
 * valid UTF-8. */
char *ev_json_quote(const char *s);

/* ---- payloads and envelopes ------------------------------------------ */

#define EV_PAYLOAD_MAX_DEFAULT (1024 * 1024)

/* Check that TEXT (LEN bytes) is one JSON value (any type) with nothing
 * after it, valid UTF-8, no duplicate keys, at most MAX bytes; on success
 * *out is a freshly allocated compact copy with the original spelling of
 * numbers and strings kept. Fails with EX_DATAERR. */
int ev_payload_parse(const char *text, size_t len, size_t max, char **out,
    size_t *outlen, struct ev_err *err);
/* Build an object payload from KEY=VALUE (string) and KEY:=JSON (raw) words.
 * A malformed word is EX_USAGE; bad JSON after := is EX_DATAERR. */
int ev_payload_from_words(char *const words[], int nwords, size_t max,
    char **out, size_t *outlen, struct ev_err *err);

/* Find the raw text of member NAME of the JSON object TEXT (already known to
 * be valid JSON): *off and *vlen give its value's span. A key written with
 * escapes is not recognised. Returns 0, or -1 when not found. */
int ev_json_member_span(const char *text, size_t len, const char *name,
    size_t *off, size_t *vlen);

/* A stored event as a reader sees it: the envelope's fields (fresh strings;
 * NULL when an optional one is absent) and the span of the payload's text,
 * which is located but not parsed (see envelope.c). */
struct ev_envelope {
	char *id, *type, *time, *source;
	char *causationid, *correlationid, *subscription;
	size_t payload_off, payload_len;
};

/* Parse the text of an event file; EX_DATAERR when it is not an event. */
int ev_envelope_parse(const char *text, size_t len, struct ev_envelope *env,
    struct ev_err *err);
void ev_envelope_free(struct ev_envelope *env);

/* What a publisher says about one event. Strings are borrowed. */
struct ev_event {
	const char *id;            /* NULL: the key is the id */
	const char *type;
	const char *source;        /* NULL: the host name */
	const char *causationid;   /* NULL: none */
	const char *correlationid; /* NULL: none */
	const char *subscription;  /* NULL: none; the subscription whose handler
	                            * published this event */
	const char *payload;       /* compact JSON, from ev_payload_parse */
	size_t payload_len;
};

/* Set causationid, correlationid and subscription from EV_ID,
 * EV_CORRELATION (or EV_ID when there is none) and EV_SUBSCRIPTION, as evsub
 * gives them to handlers. */
void ev_event_inherit_cause(struct ev_event *ev);

/* ---- the bus --------------------------------------------------------- */

struct ev_bus;                /* an open spool (or, later, another backend) */
struct ev_sub;                /* an open subscription */

struct ev_bus_opts {
	const char *location;  /* spool directory; NULL: ev_default_spool() */
	int sync;              /* 1: durable before returning (default) */
	int create;            /* 1: create the spool if missing */
};

/* The spool directory when none is given: $EV_SPOOL, else
 * /var/spool/evspool for root, else ${XDG_STATE_HOME:-$HOME/.local/state}/evspool.
 * Writes into BUF. */
int ev_default_spool(char *buf, size_t len, struct ev_err *err);

int ev_bus_open(const struct ev_bus_opts *opts, struct ev_bus **bus,
    struct ev_err *err);
void ev_bus_close(struct ev_bus *bus);
const char *ev_bus_location(const struct ev_bus *bus);
/* The payload size limit in force for this bus (spool config or default). */
size_t ev_bus_payload_max(const struct ev_bus *bus);

/* Housekeeping: for the spool, the leftovers of crashed publishers, dead
 * ephemeral subscriptions, and the log's retention. It costs time in
 * proportion to the log, so it belongs off any hot path:
 * ev_bus_maintenance_due() is cheap (one stat) and, when a minute has passed
 * since the last run by any process, claims this turn and returns 1; then
 * ev_bus_maintain() does the work. */
int ev_bus_maintenance_due(struct ev_bus *bus);
int ev_bus_maintain(struct ev_bus *bus, struct ev_err *err);

/* Publishing is done in batches: add events, then commit. Nothing of a batch
 * is visible to a subscriber before it is committed... except that a spool
 * makes an event visible in the queues before its final flush; what commit
 * promises is durability: when it returns 0, every event of the batch
 * survives a crash. */
struct ev_batch;
int ev_batch_new(struct ev_bus *bus, struct ev_batch **batch, struct ev_err *err);
/* Add one event. *id receives the id the event has (the key, or the caller's
 * id); *dup is set to 1 when an event with the caller's id was already
 * published (then nothing is added). ID must hold EV_ID_MAX + 1 bytes. */
int ev_batch_add(struct ev_batch *batch, const struct ev_event *ev, char *id,
    int *dup, struct ev_err *err);
/* Make everything added so far durable (one flush for the batch). */
int ev_batch_commit(struct ev_batch *batch, struct ev_err *err);
/* Undo everything added since the last commit and free the batch. */
void ev_batch_free(struct ev_batch *batch);

/* One delivery handed to a subscriber. */
struct ev_delivery {
	char key[EV_KEY_LEN + 1];
	int fd;                 /* the event file, open for reading, at offset 0 */
	int attempt;            /* 1 on first delivery */
	void *backend;          /* the backend's own bookkeeping */
};

/* Why a delivery failed, as the dead letters record it. */
struct ev_failure {
	int exit_status;        /* -1 when there is none */
	int signal;             /* 0 when none */
	int timed_out;          /* 1: stopped by the timeout */
	char reason[200];       /* free text: "exec failed: No such file" */
};

struct ev_sub_opts {
	const char *name;          /* NULL: ephemeral, lives with the process */
	char *const *patterns;
	int npatterns;
	int64_t since_ms;          /* replay logged events younger than this; -1 none */
	int replay_all;            /* replay everything in the log */
	int ordered;               /* a retrying event holds back later ones */
	int peek;                  /* take events in place, for a consumer that
	                            * acknowledges each at once (streaming) */
};

int ev_sub_open(struct ev_bus *bus, const struct ev_sub_opts *opts,
    struct ev_sub **sub, struct ev_err *err);
void ev_sub_close(struct ev_sub *sub);
/* A descriptor that becomes readable when events may have arrived; call
 * ev_sub_refresh() then. */
int ev_sub_fd(const struct ev_sub *sub);
int ev_sub_refresh(struct ev_sub *sub, struct ev_err *err);
/* Take the next event that is due. Returns 0 and fills *d, or returns 0 with
 * d->fd == -1 when nothing is due now; *wait_ms then says how long until a
 * retry becomes due (-1: none pending). */
int ev_sub_take(struct ev_sub *sub, struct ev_delivery *d, int64_t *wait_ms,
    struct ev_err *err);
/* Done: the event leaves the subscription. */
int ev_sub_ack(struct ev_sub *sub, struct ev_delivery *d, struct ev_err *err);
/* Failed for now: try again after DELAY_MS. */
int ev_sub_retry(struct ev_sub *sub, struct ev_delivery *d, int64_t delay_ms,
    const struct ev_failure *why, struct ev_err *err);
/* Failed for good: into the dead letters, with the reason. */
int ev_sub_dead(struct ev_sub *sub, struct ev_delivery *d,
    const struct ev_failure *why, struct ev_err *err);
/* Give the event back untouched, as if never taken (on shutdown). */
int ev_sub_release(struct ev_sub *sub, struct ev_delivery *d, struct ev_err *err);
const char *ev_sub_name(const struct ev_sub *sub);

/* ---- backends -------------------------------------------------------- */

/* The operations a backend provides; the ev_bus_* / ev_batch_* / ev_sub_*
 * functions above dispatch through this table. */
struct ev_backend_ops {
	const char *name;
	int (*open)(const struct ev_bus_opts *, struct ev_bus **, struct ev_err *);
	void (*close)(struct ev_bus *);
	int (*maintenance_due)(struct ev_bus *);
	int (*maintain)(struct ev_bus *, struct ev_err *);
	int (*batch_new)(struct ev_bus *, struct ev_batch **, struct ev_err *);
	int (*batch_add)(struct ev_batch *, const struct ev_event *, char *, int *,
	    struct ev_err *);
	int (*batch_commit)(struct ev_batch *, struct ev_err *);
	void (*batch_free)(struct ev_batch *);
	int (*sub_open)(struct ev_bus *, const struct ev_sub_opts *,
	    struct ev_sub **, struct ev_err *);
	void (*sub_close)(struct ev_sub *);
	int (*sub_fd)(const struct ev_sub *);
	int (*sub_refresh)(struct ev_sub *, struct ev_err *);
	int (*sub_take)(struct ev_sub *, struct ev_delivery *, int64_t *,
	    struct ev_err *);
	int (*sub_ack)(struct ev_sub *, struct ev_delivery *, struct ev_err *);
	int (*sub_retry)(struct ev_sub *, struct ev_delivery *, int64_t,
	    const struct ev_failure *, struct ev_err *);
	int (*sub_dead)(struct ev_sub *, struct ev_delivery *,
	    const struct ev_failure *, struct ev_err *);
	int (*sub_release)(struct ev_sub *, struct ev_delivery *, struct ev_err *);
};

extern const struct ev_backend_ops ev_spool_backend;

const char *ev_version(void);

#ifdef __cplusplus
}
#endif
#endif
