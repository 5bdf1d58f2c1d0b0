/*
 * evctl_status.c: one row per subscription: what is queued, in flight,
 * waiting to retry and dead, how old the oldest queued event is, and which
 * evsub serves it. Counting lists each directory once and reads no event,
 * so a queue of 100,000 events answers in a fraction of a second.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "evctl.h"
#include "tool.h"

struct row {
	long queued, inflight, retrying, dead, pid;
	int64_t oldest_age_ms;
};

static void
count_sub(struct ctl *ctl, const struct ev_spool_sub *s, struct row *r)
{
	char oldest[EV_KEY_LEN + 1], ignored[EV_KEY_LEN + 1];
	const char *parts[] = { "queue", "cur", "retry", "dead" };
	long *counts[] = { &r->queued, &r->inflight, &r->retrying, &r->dead };
	size_t i;
	int fd;

	r->oldest_age_ms = -1;
	for (i = 0; i < 4; i++) {
		fd = ctl_sub_dir(ctl, s, parts[i]);
		/* ctl_count() writes its second argument, never reads it. */
		/* cppcheck-suppress legacyUninitvar */
		*counts[i] = ctl_count(fd, i == 0 ? oldest : ignored);
		close(fd);
	}
	if (r->queued > 0)
		r->oldest_age_ms = ev_now_ms() - ev_key_time_ms(oldest);
	r->pid = ev_spool_sub_holder(ctl->bus, s->dir);
}

static void
print_table(struct ev_spool_sub *subs, struct row *rows, int n)
{
	char patterns[1024], age[32], pid[24];
	int i, j, wname = 4, wpat = 8;

	for (i = 0; i < n; i++) {
		int plen = 0;

		for (j = 0; j < subs[i].npatterns; j++)
			plen += (int)strlen(subs[i].patterns[j]) + (j ? 1 : 0);
		if ((int)strlen(subs[i].name) > wname)
			wname = (int)strlen(subs[i].name);
		if (plen > wpat)
			wpat = plen < 40 ? plen : 40;
	}
	printf("%-*s  %-*s  %7s  %9s  %8s  %6s  %8s  %s\n", wname, "NAME", wpat,
	    "PATTERNS", "QUEUED", "IN-FLIGHT", "RETRYING", "DEAD", "OLDEST",
	    "PID");
	for (i = 0; i < n; i++) {
		patterns[0] = '\0';
		for (j = 0; j < subs[i].npatterns; j++) {
			if (j > 0)
				strncat(patterns, ",", sizeof patterns -
				    strlen(patterns) - 1);
			strncat(patterns, subs[i].patterns[j], sizeof patterns -
			    strlen(patterns) - 1);
		}
		if (rows[i].pid > 0)
			snprintf(pid, sizeof pid, "%ld", rows[i].pid);
		else
			snprintf(pid, sizeof pid, "%s", rows[i].pid == 0 ? "none" :
			    "?");
		printf("%-*s  %-*s  %7ld  %9ld  %8ld  %6ld  %8s  %s\n", wname,
		    subs[i].name, wpat, patterns, rows[i].queued,
		    rows[i].inflight, rows[i].retrying, rows[i].dead,
		    ctl_age(rows[i].oldest_age_ms, age, sizeof age), pid);
	}
}

static json_t *
row_json(const struct ev_spool_sub *s, const struct row *r)
{
	json_t *patterns = json_array();
	char age[32];
	int j;

	for (j = 0; j < s->npatterns; j++)
		json_array_append_new(patterns, json_string(s->patterns[j]));
	return json_pack("{s:s, s:b, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
	    "name", s->name, "ephemeral", s->ephemeral, "patterns", patterns,
	    "queued", (json_int_t)r->queued,
	    "in_flight", (json_int_t)r->inflight,
	    "retrying", (json_int_t)r->retrying,
	    "dead", (json_int_t)r->dead,
	    "oldest_age_ms", r->oldest_age_ms >= 0 ?
	    json_integer(r->oldest_age_ms) : json_null(),
	    "oldest_age", r->oldest_age_ms >= 0 ?
	    json_string(ctl_age(r->oldest_age_ms, age, sizeof age)) : json_null(),
	    "pid", r->pid > 0 ? json_integer(r->pid) : json_null());
}

int
ctl_status(struct ctl *ctl, int argc, char **argv)
{
	struct ev_spool_sub *subs;
	struct ev_err err = { 0 };
	struct ctl_args a;
	struct row *rows;
	json_t *out;
	int n, i;

	ctl_parse(ctl, &argc, &argv, "json", &a);
	if (argc != 0)
		tool_exit(EX_USAGE, "status takes no arguments");
	if (ev_spool_subs(ctl->bus, &subs, &n, &err))
		tool_die(&err);
	if ((rows = calloc((size_t)n + 1, sizeof *rows)) == NULL)
		tool_exit(EX_OSERR, "out of memory");
	for (i = 0; i < n; i++)
		count_sub(ctl, &subs[i], &rows[i]);
	if (a.json) {
		out = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(out, row_json(&subs[i], &rows[i]));
		ctl_print_json(out);
		json_decref(out);
	} else {
		print_table(subs, rows, n);
	}
	free(rows);
	ev_spool_subs_free(subs, n);
	return 0;
}
