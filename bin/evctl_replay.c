/*
 * evctl_replay.c: queue logged events again for a subscription, by linking
 * log/KEY into its queue (the same file, no copy). An event still queued is
 * left as it is. Safe while evsub runs: a link is atomic and wakes it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "evctl.h"
#include "tool.h"

int
ctl_replay(struct ctl *ctl, int argc, char **argv)
{
	int logfd = ev_spool_dirfd(ctl->bus, "log"), queue;
	const struct ev_spool_sub *s;
	struct ev_spool_sub *subs;
	char from[EV_KEY_LEN + 1] = "";
	struct ctl_args a;
	const char *type;
	int64_t oldest = 0;
	size_t n, i;
	long done = 0;
	char **keys;
	json_t *ev;
	int nsubs, match;

	ctl_parse(ctl, &argc, &argv, "since,from,e", &a);
	if (argc != 1)
		tool_exit(EX_USAGE, "replay takes one subscription name");
	if (a.since_ms >= 0 && a.from != NULL)
		tool_exit(EX_USAGE, "give --since or --from, not both");
	s = ctl_find_sub(ctl, argv[0], &subs, &nsubs);
	if (a.from != NULL)
		ctl_find_event(ctl, a.from, from);
	if (a.since_ms >= 0)
		oldest = ev_now_ms() - a.since_ms;
	queue = ctl_sub_dir(ctl, s, "queue");
	keys = ctl_keys(logfd, &n);
	for (i = 0; i < n; i++) {
		if (ev_key_time_ms(keys[i]) < oldest || strcmp(keys[i], from) < 0 ||
		    (ev = ctl_read_event(logfd, keys[i], NULL)) == NULL)
			continue;
		type = json_string_value(json_object_get(ev, "type"));
		/* -e narrows, never widens: a replay is a second delivery,
		 * and a handler must not get a type it never subscribed to. */
		match = type != NULL && ctl_sub_matches(s, type) &&
		    (a.pattern == NULL || ev_pattern_match(a.pattern, type));
		json_decref(ev);
		/* An event the subscription still holds (in flight, waiting
		 * for a retry, dead) is not queued a second time beside it. */
		if (!match || ctl_where(ctl, s, keys[i], NULL) != NULL)
			continue;
		if (linkat(logfd, keys[i], queue, keys[i], 0) < 0) {
			if (errno == EEXIST || errno == ENOENT)
				continue;
			tool_exit(EX_IOERR, "cannot queue %s: %s", keys[i],
			    strerror(errno));
		}
		done++;
	}
	if (done > 0 && fsync(queue) < 0)
		tool_exit(EX_IOERR, "cannot flush the queue: %s", strerror(errno));
	printf("requeued %ld event%s\n", done, done == 1 ? "" : "s");
	ctl_keys_free(keys, n);
	close(queue);
	ev_spool_subs_free(subs, nsubs);
	return 0;
}
