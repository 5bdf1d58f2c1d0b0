/*
 * evctl_ls.c: the log. `ls` lists events oldest first (names are sorted,
 * then each event is read, printed and dropped, so memory holds names,
 * never the events); `show` prints one event and where it stands in each
 * subscription. The JSON forms print events as stored, byte for byte, so
 * payloads keep their publisher's spelling.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evctl.h"
#include "tool.h"

int
ctl_ls(struct ctl *ctl, int argc, char **argv)
{
	int logfd = ev_spool_dirfd(ctl->bus, "log");
	const char *pattern = NULL, *why, *type;
	int64_t oldest = 0;
	struct ctl_args a;
	size_t n, i;
	char **keys;
	json_t *ev;
	char *raw;

	ctl_parse(ctl, &argc, &argv, "json,since", &a);
	if (argc > 1)
		tool_exit(EX_USAGE, "ls takes one PATTERN at most");
	if (argc == 1) {
		pattern = argv[0];
		if (ev_pattern_valid(pattern, &why) != 0)
			tool_exit(EX_USAGE, "invalid pattern '%s': %s", pattern,
			    why);
	}
	if (a.since_ms >= 0)
		oldest = ev_now_ms() - a.since_ms;
	keys = ctl_keys(logfd, &n);
	if (!a.json)
		printf("%-27s  %-36s  %s\n", "TIME", "ID", "TYPE");
	for (i = 0; i < n; i++) {
		if (ev_key_time_ms(keys[i]) < oldest ||
		    (ev = ctl_read_event(logfd, keys[i], &raw)) == NULL)
			continue;
		type = json_string_value(json_object_get(ev, "type"));
		if (type != NULL && (pattern == NULL ||
		    ev_pattern_match(pattern, type))) {
			if (a.json)
				puts(raw);
			else
				printf("%-27s  %-36s  %s\n",
				    json_string_value(json_object_get(ev, "time")),
				    json_string_value(json_object_get(ev, "id")),
				    type);
		}
		json_decref(ev);
		free(raw);
	}
	ctl_keys_free(keys, n);
	return 0;
}

int
ctl_show(struct ctl *ctl, int argc, char **argv)
{
	char key[EV_KEY_LEN + 1], age[32];
	struct ev_spool_sub *subs;
	struct ctl_args a;
	json_t *ev, *where, *state, *entry;
	const char *type, *at;
	char *raw;
	int n, i;
	struct ev_err err = { 0 };

	ctl_parse(ctl, &argc, &argv, "json", &a);
	if (argc != 1)
		tool_exit(EX_USAGE, "show takes one event id");
	ctl_find_event(ctl, argv[0], key);
	if ((ev = ctl_read_event(ev_spool_dirfd(ctl->bus, "log"), key,
	    &raw)) == NULL)
		tool_exit(EX_DATAERR, "event '%s' cannot be read", argv[0]);
	type = json_string_value(json_object_get(ev, "type"));
	if (ev_spool_subs(ctl->bus, &subs, &n, &err))
		tool_die(&err);
	where = json_object();
	for (i = 0; i < n; i++) {
		at = ctl_where(ctl, &subs[i], key, &state);
		if (at == NULL && (type == NULL || !ctl_sub_matches(&subs[i], type))) {
			json_decref(state);
			continue;
		}
		entry = json_pack("{s:s}", "state", at ? at : "done");
		if (state != NULL)
			json_object_update(entry, state);
		json_object_del(entry, "key");
		json_object_set_new(where, subs[i].name, entry);
		json_decref(state);
	}
	if (a.json) {
		/* The event goes in as stored, spelled as published. */
		char *subs_text = json_dumps(where, JSON_COMPACT |
		    JSON_PRESERVE_ORDER);

		printf("{\"key\":\"%s\",\"event\":%s,\"subscriptions\":%s}\n",
		    key, raw, subs_text ? subs_text : "{}");
		free(subs_text);
	} else {
		json_t *whole = json_loads(raw, JSON_ALLOW_NUL, NULL);
		char *pretty = whole ? json_dumps(whole, JSON_INDENT(2) |
		    JSON_PRESERVE_ORDER) : NULL;
		const char *name;
		json_t *e;

		/* Indented when jansson can hold it all; as stored if not. */
		printf("%s\n", pretty ? pretty : raw);
		free(pretty);
		json_decref(whole);
		printf("age: %s\n", ctl_age(ev_now_ms() - ev_key_time_ms(key), age,
		    sizeof age));
		json_object_foreach(where, name, e) {
			printf("%s: %s", name, json_string_value(json_object_get(e,
			    "state")));
			if (json_object_get(e, "attempts") != NULL)
				printf(", %lld attempt(s)", (long long)
				    json_integer_value(json_object_get(e, "attempts")));
			if (json_object_get(e, "last_failure") != NULL)
				printf(", last failure: %s", json_string_value(
				    json_object_get(json_object_get(e,
				    "last_failure"), "reason")));
			putchar('\n');
		}
	}
	json_decref(where);
	json_decref(ev);
	free(raw);
	ev_spool_subs_free(subs, n);
	return 0;
}
