/*
 * evctl.h: what evctl's subcommands share. Each subcommand is one file,
 * evctl_NAME.c, with one entry point taking its own arguments.
 */
#ifndef EVSPOOL_EVCTL_H
#define EVSPOOL_EVCTL_H

#include <jansson.h>

#include "evspool.h"
#include "evspool_spool.h"

struct ctl {
	struct ev_bus *bus;
	const char *spool;
	int json;             /* --json: stable JSON for scripts */
};

typedef int (*ctl_cmd)(struct ctl *, int, char **);

int ctl_status(struct ctl *, int, char **);
int ctl_ls(struct ctl *, int, char **);
int ctl_show(struct ctl *, int, char **);
int ctl_dead(struct ctl *, int, char **);
int ctl_retry(struct ctl *, int, char **);
int ctl_purge(struct ctl *, int, char **);
int ctl_replay(struct ctl *, int, char **);
int ctl_trace(struct ctl *, int, char **);
int ctl_graph(struct ctl *, int, char **);
int ctl_gc(struct ctl *, int, char **);
int ctl_rm(struct ctl *, int, char **);

/* evctl_common.c */

/* Parse a subcommand's options: --json, --since DUR, --from ID, -e PATTERN,
 * as listed in ALLOWED (e.g. "json,since"); the rest are left in *argc/argv
 * as positional arguments. */
struct ctl_args {
	int json;
	int64_t since_ms;      /* -1: not given */
	const char *from, *pattern, *group;
};
void ctl_parse(struct ctl *ctl, int *argc, char ***argv, const char *allowed,
    struct ctl_args *a);

/* The subscription NAME (durable or ephemeral), or exit 66. The caller frees
 * with ev_spool_subs_free(list, n). */
const struct ev_spool_sub *ctl_find_sub(struct ctl *ctl, const char *name,
    struct ev_spool_sub **list, int *n);
/* Open DIR/PART of a subscription (queue, cur, retry, dead, state). */
int ctl_sub_dir(struct ctl *ctl, const struct ev_spool_sub *s, const char *part);

/* The valid keys in DIRFD, sorted (publish order); COUNT gets the number.
 * Names only, never the events. */
char **ctl_keys(int dirfd, size_t *count);
void ctl_keys_free(char **keys, size_t count);
/* Count the keys in DIRFD and find the smallest (oldest), without sorting. */
long ctl_count(int dirfd, char oldest[EV_KEY_LEN + 1]);

/* The envelope of the event stored as DIRFD/NAME (its fields, without the
 * payload, which is never parsed: see ev_envelope_parse), or NULL if it is
 * not an event. With RAW, *RAW gets the stored text, without its newline. */
json_t *ctl_read_event(int dirfd, const char *name, char **raw);
/* A JSON object stored as DIRFD/NAME (a state file), or NULL. */
json_t *ctl_read_json(int dirfd, const char *name);
/* Find the event with id or key ID in the log: its key, or exit 66. */
void ctl_find_event(struct ctl *ctl, const char *id, char key[EV_KEY_LEN + 1]);
/* Where event KEY stands in subscription S: "queued", "in flight",
 * "retrying", "dead", or NULL (not there: done, or never delivered). */
const char *ctl_where(struct ctl *ctl, const struct ev_spool_sub *s,
    const char *key, json_t **state);
/* Does TYPE match one of the subscription's patterns? */
int ctl_sub_matches(const struct ev_spool_sub *s, const char *type);

/* Output: JSON to stdout (compact with a newline), or exit 74. */
void ctl_print_json(json_t *value);
/* An age as "3m12s" (or "-" when MS < 0). */
const char *ctl_age(int64_t ms, char *buf, size_t len);

#endif
