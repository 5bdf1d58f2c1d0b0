/*
 * evctl_dead.c: dead letters: list them, put them back in the queue, drop
 * them. Retry and purge work by rename and unlink, which are atomic, so
 * they are safe while an evsub serves the subscription: a requeued event
 * arrives in queue/ like any other and its inotify wake-up follows.
 * Events are named by id or by key; no name means all of them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evctl.h"
#include "tool.h"

struct dead_dirs {
	struct ev_spool_sub *subs;
	int nsubs;
	int dead, state, queue;
};

static void
open_dirs(struct ctl *ctl, const char *name, struct dead_dirs *dd)
{
	const struct ev_spool_sub *s = ctl_find_sub(ctl, name, &dd->subs,
	    &dd->nsubs);

	dd->dead = ctl_sub_dir(ctl, s, "dead");
	dd->state = ctl_sub_dir(ctl, s, "state");
	dd->queue = ctl_sub_dir(ctl, s, "queue");
}

static void
close_dirs(struct dead_dirs *dd)
{
	close(dd->dead);
	close(dd->state);
	close(dd->queue);
	ev_spool_subs_free(dd->subs, dd->nsubs);
}

/* Is the dead letter KEY (event EV) one of the NAMES (ids or keys)? */
static int
named(const char *key, json_t *ev, int n, char **names, int *found)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	int i, hit = 0;

	if (n == 0)
		return 1;
	for (i = 0; i < n; i++) {
		if (strcmp(names[i], key) == 0 || (id && strcmp(names[i], id) == 0)) {
			found[i] = 1;
			hit = 1;
		}
	}
	return hit;
}

static void
check_found(int n, char **names, const int *found, const char *what)
{
	int i, missing = 0;

	for (i = 0; i < n; i++) {
		if (!found[i]) {
			tool_warn("no dead letter '%s' to %s", names[i], what);
			missing = 1;
		}
	}
	if (missing)
		exit(EX_NOINPUT);
}

int
ctl_dead(struct ctl *ctl, int argc, char **argv)
{
	struct dead_dirs dd;
	struct ctl_args a;
	json_t *ev, *state, *fail, *out = json_array();
	char **keys;
	size_t n, i;

	ctl_parse(ctl, &argc, &argv, "json", &a);
	if (argc != 1)
		tool_exit(EX_USAGE, "dead takes one subscription name");
	open_dirs(ctl, argv[0], &dd);
	keys = ctl_keys(dd.dead, &n);
	if (!a.json)
		printf("%-36s  %-24s  %8s  %-27s  %s\n", "ID", "TYPE", "ATTEMPTS",
		    "DIED", "LAST FAILURE");
	for (i = 0; i < n; i++) {
		ev = ctl_read_event(dd.dead, keys[i], NULL);
		state = ctl_read_json(dd.state, keys[i]);
		fail = json_object_get(state, "last_failure");
		if (a.json) {
			json_array_append_new(out, json_pack(
			    "{s:s, s:o, s:o, s:o, s:o, s:O}", "key", keys[i],
			    "id", json_copy(json_object_get(ev, "id")) ?: json_null(),
			    "type", json_copy(json_object_get(ev, "type")) ?: json_null(),
			    "attempts", json_copy(json_object_get(state,
			    "attempts")) ?: json_null(),
			    "dead_at", json_copy(json_object_get(state,
			    "dead_at")) ?: json_null(),
			    "last_failure", fail ? fail : json_null()));
		} else {
			printf("%-36s  %-24s  %8lld  %-27s  %s\n",
			    json_string_value(json_object_get(ev, "id")) ?: keys[i],
			    json_string_value(json_object_get(ev, "type")) ?: "?",
			    (long long)json_integer_value(json_object_get(state,
			    "attempts")), json_string_value(json_object_get(state,
			    "dead_at")) ?: "?", json_string_value(json_object_get(
			    fail, "reason")) ?: "?");
		}
		json_decref(ev);
		json_decref(state);
	}
	if (a.json)
		ctl_print_json(out);
	json_decref(out);
	ctl_keys_free(keys, n);
	close_dirs(&dd);
	return 0;
}

/* retry and purge: the same walk, a different move. */
static int
settle_dead(struct ctl *ctl, int argc, char **argv, int requeue)
{
	const char *what = requeue ? "retry" : "purge";
	struct dead_dirs dd;
	struct ctl_args a;
	char **keys;
	size_t n, i;
	long done = 0;
	int *found;
	json_t *ev;

	ctl_parse(ctl, &argc, &argv, "", &a);
	if (argc < 1)
		tool_exit(EX_USAGE, "%s takes a subscription name and ids", what);
	open_dirs(ctl, argv[0], &dd);
	if ((found = calloc((size_t)argc, sizeof *found)) == NULL)
		tool_exit(EX_OSERR, "out of memory");
	keys = ctl_keys(dd.dead, &n);
	for (i = 0; i < n; i++) {
		ev = ctl_read_event(dd.dead, keys[i], NULL);
		if (!named(keys[i], ev, argc - 1, argv + 1, found + 1)) {
			json_decref(ev);
			continue;
		}
		json_decref(ev);
		/* The record of failures goes first: a requeued event starts
		 * again at attempt 1. */
		unlinkat(dd.state, keys[i], 0);
		if (requeue ? renameat(dd.dead, keys[i], dd.queue, keys[i]) :
		    unlinkat(dd.dead, keys[i], 0)) {
			if (errno == ENOENT)
				continue;
			tool_exit(EX_IOERR, "cannot %s %s: %s", what, keys[i],
			    strerror(errno));
		}
		done++;
	}
	printf("%s %ld event%s\n", requeue ? "requeued" : "purged", done,
	    done == 1 ? "" : "s");
	check_found(argc - 1, argv + 1, found + 1, what);
	free(found);
	ctl_keys_free(keys, n);
	close_dirs(&dd);
	return 0;
}

int
ctl_retry(struct ctl *ctl, int argc, char **argv)
{
	return settle_dead(ctl, argc, argv, 1);
}

int
ctl_purge(struct ctl *ctl, int argc, char **argv)
{
	return settle_dead(ctl, argc, argv, 0);
}
