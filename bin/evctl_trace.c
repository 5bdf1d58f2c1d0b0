/*
 * evctl_trace.c: chains. `trace` gathers the events of one correlation
 * from the log and prints them as a tree, cause above effects, with what
 * each matching subscription made of each event; `graph` draws every flow
 * the log shows as Graphviz DOT: event type -> subscription -> event type.
 *
 * Events published by a handler carry causationid (the event handled),
 * correlationid (the first event of the chain) and subscription (whose
 * handler published it); see evspool(7).
 *
 * A chain can be anything its publishers made it: a handler that publishes
 * its own type makes one without end, and ids chosen with `evpub --id` can
 * name each other as causes, a cycle. So trace never recurses over the
 * chain: each event points to its cause (found by a binary search over
 * the ids), the effects of each event are linked in publish order, and the
 * trees are walked with an explicit stack, in time n log n. An event whose
 * cause is not in the chain starts a tree; a cycle has no such event, so
 * the earliest event of the cycle starts its tree, and the event that
 * names it as its cause shows "back to ID" instead of drawing it again.
 * Trees are drawn TRACE_DEPTH_MAX levels deep; below that one line says
 * how many events were left out.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evctl.h"
#include "tool.h"

/* How many levels of a tree trace draws: the first event and 63 levels of
 * effects. A deeper event is not drawn, and one line "... N more events"
 * stands for it and everything below it: drawn whole, a chain of n events
 * would take n^2 / 2 columns of indentation, and its JSON would be nested
 * too deep for jq, whose parser stops at 256 levels (an object counting
 * two): 64 levels take 3 * 64 + 2 of them. */
#define TRACE_DEPTH_MAX 64

#define NONE ((size_t)-1)

struct node {
	char key[EV_KEY_LEN + 1];
	json_t *ev;
	const char *id, *cause;  /* in ev; cause NULL when it has none */
	size_t parent;           /* the node of its cause, or NONE */
	size_t child, sibling;   /* its first effect; the next effect of its
	                          * cause: both in publish order, or NONE */
	size_t last;             /* its last effect, while linking */
	size_t next;             /* the next effect to walk to */
	size_t size;             /* events in its tree from it down */
	size_t stamp;            /* the search for a cycle that saw it */
	int root;                /* starts a tree */
	int seen;                /* reached from a root */
};

/* A chain: its events in publish order, and a stack to walk them. */
struct chain {
	struct node *nodes;
	size_t n;
	size_t *stack;
	json_t **objs;           /* the JSON of the nodes on the stack */
};

/* An id and its node, to find causes by binary search. */
struct id_ref {
	const char *id;
	size_t node;
};

static const char *
field(json_t *ev, const char *name)
{
	return json_string_value(json_object_get(ev, name));
}

static int
id_ref_cmp(const void *a, const void *b)
{
	const struct id_ref *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	if (c != 0)
		return c;
	return x->node < y->node ? -1 : x->node > y->node;
}

/* Find each event's cause among the chain's events and link the effects
 * of each event in publish order. Of two events with the same id (which
 * the spool refuses, but a log may hold), the first published is the
 * cause. */
static void
link_causes(struct chain *c)
{
	struct id_ref *refs;
	size_t i, p, lo, hi, mid;

	if ((refs = calloc(c->n + 1, sizeof *refs)) == NULL)
		tool_exit(EX_OSERR, "out of memory");
	for (i = 0; i < c->n; i++) {
		refs[i].id = c->nodes[i].id;
		refs[i].node = i;
	}
	qsort(refs, c->n, sizeof *refs, id_ref_cmp);
	for (i = 0; i < c->n; i++) {
		struct node *nd = &c->nodes[i];

		nd->parent = nd->child = nd->sibling = nd->last = NONE;
		nd->stamp = NONE;
		if (nd->cause == NULL)
			continue;
		/* The first ref with that id: the first published. */
		for (lo = 0, hi = c->n; lo < hi;) {
			mid = lo + (hi - lo) / 2;
			if (strcmp(refs[mid].id, nd->cause) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < c->n && strcmp(refs[lo].id, nd->cause) == 0)
			nd->parent = refs[lo].node;
	}
	free(refs);
	/* In publish order, so each list of effects is in publish order. */
	for (i = 0; i < c->n; i++) {
		if ((p = c->nodes[i].parent) == NONE)
			continue;
		if (c->nodes[p].last == NONE)
			c->nodes[p].child = i;
		else
			c->nodes[c->nodes[p].last].sibling = i;
		c->nodes[p].last = i;
	}
}

/* Mark everything below ROOT seen, and append it to ORDER (each event
 * after its cause). Roots met below are the starts of cycles: not again. */
static void
mark_tree(struct chain *c, size_t root, size_t *order, size_t *norder)
{
	size_t top = 0, v, e;

	c->nodes[root].seen = 1;
	c->nodes[root].next = c->nodes[root].child;
	order[(*norder)++] = root;
	c->stack[top++] = root;
	while (top > 0) {
		v = c->stack[top - 1];
		if ((e = c->nodes[v].next) == NONE) {
			top--;
			continue;
		}
		c->nodes[v].next = c->nodes[e].sibling;
		if (c->nodes[e].root || c->nodes[e].seen)
			continue;
		c->nodes[e].seen = 1;
		c->nodes[e].next = c->nodes[e].child;
		order[(*norder)++] = e;
		c->stack[top++] = e;
	}
}

/* Choose the roots: every event whose cause is not in the chain, and in
 * each cycle (events only reachable from each other) its earliest event.
 * Then count the events of every tree from each event down. */
static void
find_roots(struct chain *c)
{
	size_t *order, norder = 0, i, j, k, first;

	if ((order = calloc(c->n + 1, sizeof *order)) == NULL)
		tool_exit(EX_OSERR, "out of memory");
	for (i = 0; i < c->n; i++)
		c->nodes[i].root = c->nodes[i].parent == NONE;
	for (i = 0; i < c->n; i++)
		if (c->nodes[i].root)
			mark_tree(c, i, order, &norder);
	for (i = 0; i < c->n; i++) {
		if (c->nodes[i].seen)
			continue;
		/* Not reached from a root: following causes from it leads
		 * into a cycle (every event has one cause, within the
		 * chain). Go until an event comes again... */
		for (j = i; c->nodes[j].stamp != i; j = c->nodes[j].parent)
			c->nodes[j].stamp = i;
		/* ...and take the cycle's earliest event as its root. */
		first = j;
		for (k = c->nodes[j].parent; k != j; k = c->nodes[k].parent)
			if (k < first)
				first = k;
		c->nodes[first].root = 1;
		mark_tree(c, first, order, &norder);
	}
	for (i = 0; i < c->n; i++)
		c->nodes[i].size = 1;
	for (k = norder; k-- > 0;) {
		i = order[k];
		if (!c->nodes[i].root)
			c->nodes[c->nodes[i].parent].size += c->nodes[i].size;
	}
	free(order);
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

/* The JSON of one event of the tree, with no effects yet. */
static json_t *
node_json(struct ctl *ctl, const struct node *nd, struct ev_spool_sub *subs,
    int nsubs)
{
	json_t *obj;

	obj = json_pack("{s:s, s:s, s:s, s:s}", "id", nd->id, "key", nd->key,
	    "type", field(nd->ev, "type") ?: "", "time",
	    field(nd->ev, "time") ?: "");
	if (obj == NULL)
		tool_exit(EX_OSERR, "out of memory");
	if (field(nd->ev, "subscription") != NULL)
		json_object_set_new(obj, "published_by",
		    json_string(field(nd->ev, "subscription")));
	json_object_set_new(obj, "handled", outcomes(ctl, subs, nsubs,
	    nd->key, field(nd->ev, "type") ?: ""));
	json_object_set_new(obj, "effects", json_array());
	return obj;
}

/* Note what is not drawn below node V (its JSON OBJ), at the last level:
 * "omitted", the events below it, and "cycle", the root it causes. */
static void
cut_below(struct chain *c, size_t v, json_t *obj)
{
	size_t e;

	for (e = c->nodes[v].child; e != NONE; e = c->nodes[e].sibling)
		if (c->nodes[e].root)
			json_object_set_new(obj, "cycle",
			    json_string(c->nodes[e].id));
	if (c->nodes[v].size > 1)
		json_object_set_new(obj, "omitted",
		    json_integer((json_int_t)(c->nodes[v].size - 1)));
}

/* The tree from ROOT as JSON, TRACE_DEPTH_MAX levels deep. */
static json_t *
draw_tree(struct ctl *ctl, struct chain *c, size_t root,
    struct ev_spool_sub *subs, int nsubs)
{
	size_t top = 0, v, e;
	json_t *obj, *tree;

	tree = node_json(ctl, &c->nodes[root], subs, nsubs);
	c->nodes[root].next = c->nodes[root].child;
	c->stack[top] = root;
	c->objs[top++] = tree;
	while (top > 0) {
		v = c->stack[top - 1];
		if ((e = c->nodes[v].next) == NONE) {
			top--;
			continue;
		}
		c->nodes[v].next = c->nodes[e].sibling;
		if (c->nodes[e].root) {
			/* The root of this tree again: a cycle. */
			json_object_set_new(c->objs[top - 1], "cycle",
			    json_string(c->nodes[e].id));
			continue;
		}
		obj = node_json(ctl, &c->nodes[e], subs, nsubs);
		json_array_append_new(json_object_get(c->objs[top - 1],
		    "effects"), obj);
		if (top + 1 == TRACE_DEPTH_MAX) {
			cut_below(c, e, obj);
			continue;
		}
		c->nodes[e].next = c->nodes[e].child;
		c->stack[top] = e;
		c->objs[top++] = obj;
	}
	return tree;
}

/* One tree as indented lines; DEPTH is at most TRACE_DEPTH_MAX, so the
 * recursion is bounded. */
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
	if (field(node, "cycle") != NULL)
		printf("%*s└─ … back to %s (a cycle)\n", (depth + 1) * 3, "",
		    field(node, "cycle"));
	if (json_object_get(node, "omitted") != NULL)
		printf("%*s└─ … %" JSON_INTEGER_FORMAT " more events\n",
		    (depth + 1) * 3, "",
		    json_integer_value(json_object_get(node, "omitted")));
}

int
ctl_trace(struct ctl *ctl, int argc, char **argv)
{
	int logfd = ev_spool_dirfd(ctl->bus, "log");
	char key[EV_KEY_LEN + 1], *corr;
	struct ev_spool_sub *subs;
	struct ev_err err = { 0 };
	struct chain c = { 0 };
	struct ctl_args a;
	json_t *ev, *roots;
	size_t nkeys, i;
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
	c.nodes = calloc(nkeys + 1, sizeof *c.nodes);
	c.stack = calloc(nkeys + 1, sizeof *c.stack);
	c.objs = calloc(TRACE_DEPTH_MAX + 1, sizeof(json_t *));
	if (c.nodes == NULL || c.stack == NULL || c.objs == NULL || corr == NULL)
		tool_exit(EX_OSERR, "out of memory");
	for (i = 0; i < nkeys; i++) {
		const char *id, *cid;

		if ((ev = ctl_read_event(logfd, keys[i], NULL)) == NULL)
			continue;
		id = field(ev, "id");
		cid = field(ev, "correlationid");
		if (id != NULL && ((cid != NULL && strcmp(cid, corr) == 0) ||
		    strcmp(id, corr) == 0)) {
			memcpy(c.nodes[c.n].key, keys[i], sizeof c.nodes[c.n].key);
			c.nodes[c.n].id = id;
			c.nodes[c.n].cause = field(ev, "causationid");
			c.nodes[c.n++].ev = ev;
		} else {
			json_decref(ev);
		}
	}
	ctl_keys_free(keys, nkeys);
	if (ev_spool_subs(ctl->bus, &subs, &nsubs, &err))
		tool_die(&err);
	link_causes(&c);
	find_roots(&c);
	/* The trees, in the publish order of their roots. */
	roots = json_array();
	for (i = 0; i < c.n; i++)
		if (c.nodes[i].root)
			json_array_append_new(roots, draw_tree(ctl, &c, i, subs,
			    nsubs));
	if (a.json) {
		json_t *out = json_pack("{s:s, s:I, s:O}", "correlationid", corr,
		    "events", (json_int_t)c.n, "chain", roots);

		ctl_print_json(out);
		json_decref(out);
	} else {
		json_array_foreach(roots, i, ev)
			print_tree(ev, 0);
	}
	json_decref(roots);
	for (i = 0; i < c.n; i++)
		json_decref(c.nodes[i].ev);
	free(c.nodes);
	free(c.stack);
	free(c.objs);
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
