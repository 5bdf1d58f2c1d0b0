/*
 * evctl_trace.c: chains. `trace` gathers the events of one correlation
 * from the log and prints them as a tree, cause above effects, with what
 * each matching subscription made of each event; `graph` draws every flow
 * the log shows as Graphviz DOT: event type -> subscription -> event type.
 *
 * Events published by a handler carry causationid (the event handled),
 * correlationid (the first event of the chain) and subscription (whose
 * handler published it); see evspool(7).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evctl.h"
#include "tool.h"

struct node {
	char key[EV_KEY_LEN + 1];
	json_t *ev;
	int done;       /* printed */
};

static const char *
field(json_t *ev, const char *name)
{
	return json_string_value(json_object_get(ev, name));
}

/* What the matching subscriptions made of KEY: {"name": "done", ...}. */
static json_t *
outcomes(struct ctl *ctl, struct ev_spool_sub *subs, int nsubs,
    const char *key, const char *type)
{
	json_t *out = json_object(), *state;
	const char *at;
	char buf[256];
	int i;

	for (i = 0; i < nsubs; i++) {
		if (subs[i].ephemeral)
			continue;
		at = ctl_where(ctl, &subs[i], key, &state);
		if (at == NULL && !ctl_sub_matches(&subs[i], type)) {
			json_decref(state);
			continue;
		}
		if (at != NULL && strcmp(at, "dead") == 0 && state != NULL)
			snprintf(buf, sizeof buf, "dead (%s)", json_string_value(
			    json_object_get(json_object_get(state,
			    "last_failure"), "reason")) ?: "?");
		else
			snprintf(buf, sizeof buf, "%s", at ? at : "done");
		json_object_set_new(out, subs[i].name, json_string(buf));
		json_decref(state);
	}
	return out;
}

static json_t *
build(struct ctl *ctl, struct node *nodes, size_t n, size_t at,
    struct ev_spool_sub *subs, int nsubs)
{
	json_t *effects = json_array(), *node;
	const char *id = field(nodes[at].ev, "id");
	size_t i;

	nodes[at].done = 1;
	for (i = 0; i < n; i++) {
		const char *cause = field(nodes[i].ev, "causationid");

		if (!nodes[i].done && cause != NULL && strcmp(cause, id) == 0)
			json_array_append_new(effects, build(ctl, nodes, n, i,
			    subs, nsubs));
	}
	node = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "key", nodes[at].key,
	    "type", field(nodes[at].ev, "type"), "time",
	    field(nodes[at].ev, "time"));
	if (field(nodes[at].ev, "subscription") != NULL)
		json_object_set_new(node, "published_by",
		    json_string(field(nodes[at].ev, "subscription")));
	json_object_set_new(node, "handled", outcomes(ctl, subs, nsubs,
	    nodes[at].key, field(nodes[at].ev, "type")));
	json_object_set_new(node, "effects", effects);
	return node;
}

static void
print_tree(json_t *node, int depth)
{
	const char *name;
	json_t *v, *effect;
	size_t i;
	int first = 1;

	printf("%*s%s%s  %s  %s", depth * 3, "", depth ? "└─ " : "",
	    field(node, "type"), field(node, "id"), field(node, "time"));
	if (field(node, "published_by") != NULL)
		printf("  (from %s)", field(node, "published_by"));
	json_object_foreach(json_object_get(node, "handled"), name, v) {
		printf("%s%s: %s", first ? "  [" : ", ", name, json_string_value(v));
		first = 0;
	}
	printf("%s\n", first ? "" : "]");
	json_array_foreach(json_object_get(node, "effects"), i, effect)
		print_tree(effect, depth + 1);
}

int
ctl_trace(struct ctl *ctl, int argc, char **argv)
{
	int logfd = ev_spool_dirfd(ctl->bus, "log");
	char key[EV_KEY_LEN + 1], *corr;
	struct ev_spool_sub *subs;
	struct ev_err err = { 0 };
	struct node *nodes;
	struct ctl_args a;
	json_t *ev, *roots;
	size_t nkeys, n = 0, i;
	char **keys;
	int nsubs;

	ctl_parse(ctl, &argc, &argv, "json", &a);
	if (argc != 1)
		tool_exit(EX_USAGE, "trace takes one event id");
	ctl_find_event(ctl, argv[0], key);
	if ((ev = ctl_read_event(logfd, key, NULL)) == NULL)
		tool_exit(EX_DATAERR, "event '%s' cannot be read", argv[0]);
	corr = strdup(field(ev, "correlationid") ?: field(ev, "id"));
	json_decref(ev);
	keys = ctl_keys(logfd, &nkeys);
	if ((nodes = calloc(nkeys + 1, sizeof *nodes)) == NULL || corr == NULL)
		tool_exit(EX_OSERR, "out of memory");
	for (i = 0; i < nkeys; i++) {
		if ((ev = ctl_read_event(logfd, keys[i], NULL)) == NULL)
			continue;
		if ((field(ev, "correlationid") != NULL &&
		    strcmp(field(ev, "correlationid"), corr) == 0) ||
		    (field(ev, "id") != NULL && strcmp(field(ev, "id"), corr) == 0)) {
			memcpy(nodes[n].key, keys[i], sizeof nodes[n].key);
			nodes[n++].ev = ev;
		} else {
			json_decref(ev);
		}
	}
	ctl_keys_free(keys, nkeys);
	if (ev_spool_subs(ctl->bus, &subs, &nsubs, &err))
		tool_die(&err);
	/* Roots: events whose cause is not in the chain (normally just the
	 * first event), in publish order. */
	roots = json_array();
	for (i = 0; i < n; i++) {
		const char *cause = field(nodes[i].ev, "causationid");
		size_t j;
		int inside = 0;

		for (j = 0; cause != NULL && j < n; j++)
			inside |= strcmp(field(nodes[j].ev, "id"), cause) == 0;
		if (!inside && !nodes[i].done)
			json_array_append_new(roots, build(ctl, nodes, n, i, subs,
			    nsubs));
	}
	if (a.json) {
		json_t *out = json_pack("{s:s, s:I, s:O}", "correlationid", corr,
		    "events", (json_int_t)n, "chain", roots);

		ctl_print_json(out);
		json_decref(out);
	} else {
		json_array_foreach(roots, i, ev)
			print_tree(ev, 0);
	}
	json_decref(roots);
	for (i = 0; i < n; i++)
		json_decref(nodes[i].ev);
	free(nodes);
	free(corr);
	ev_spool_subs_free(subs, nsubs);
	return 0;
}

int
ctl_graph(struct ctl *ctl, int argc, char **argv)
{
	int logfd = ev_spool_dirfd(ctl->bus, "log");
	struct ev_spool_sub *subs;
	struct ev_err err = { 0 };
	json_t *types = json_object(), *flows = json_object(), *ev;
	const char *type, *sub, *name;
	struct ctl_args a;
	char edge[EV_TYPE_MAX + EV_NAME_MAX + 32];
	size_t nkeys, i;
	char **keys;
	int nsubs, j;
	void *it;

	ctl_parse(ctl, &argc, &argv, "", &a);
	if (argc != 0)
		tool_exit(EX_USAGE, "graph takes no arguments");
	if (ev_spool_subs(ctl->bus, &subs, &nsubs, &err))
		tool_die(&err);
	keys = ctl_keys(logfd, &nkeys);
	for (i = 0; i < nkeys; i++) {
		if ((ev = ctl_read_event(logfd, keys[i], NULL)) == NULL)
			continue;
		type = field(ev, "type");
		sub = field(ev, "subscription");
		if (type != NULL) {
			json_object_set_new(types, type, json_true());
			if (sub != NULL) {
				snprintf(edge, sizeof edge, "\"s:%s\" -> \"t:%s\"",
				    sub, type);
				json_object_set_new(flows, edge, json_true());
			}
		}
		json_decref(ev);
	}
	ctl_keys_free(keys, nkeys);
	printf("digraph evspool {\n\trankdir=LR;\n"
	    "\tnode [shape=ellipse, fontname=\"Helvetica\"];\n");
	json_object_foreach(types, name, ev)
		printf("\t\"t:%s\" [label=\"%s\"];\n", name, name);
	for (j = 0; j < nsubs; j++) {
		if (subs[j].ephemeral)
			continue;
		printf("\t\"s:%s\" [label=\"%s\", shape=box, style=rounded];\n",
		    subs[j].name, subs[j].name);
		for (it = json_object_iter(types); it != NULL;
		    it = json_object_iter_next(types, it)) {
			name = json_object_iter_key(it);
			if (ctl_sub_matches(&subs[j], name))
				printf("\t\"t:%s\" -> \"s:%s\";\n", name,
				    subs[j].name);
		}
	}
	json_object_foreach(flows, name, ev)
		printf("\t%s;\n", name);
	printf("}\n");
	json_decref(types);
	json_decref(flows);
	ev_spool_subs_free(subs, nsubs);
	return 0;
}
