/*
 * evpub: publish events into the spool.
 *
 *   evpub [OPTIONS] TYPE [PAYLOAD]       PAYLOAD is any JSON value ({} if none)
 *   evpub [OPTIONS] TYPE KEY=VALUE ...   builds an object (KEY:=JSON for raw)
 *   evpub [OPTIONS] TYPE -               payload from stdin
 *   evpub [OPTIONS] -l [TYPE]            NDJSON on stdin, one event a line
 *
 * Inside a handler (EV_ID in the environment) the event records its cause,
 * so chains can be traced.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lines.h"
#include "tool.h"

const char *tool_name = "evpub";

/* -l commits a batch at this many events, or sooner when stdin has nothing
 * more ready, so a slow producer's events are not held back. */
#define BATCH_MAX 1000

struct options {
	const char *spool, *id, *source;
	int sync, quiet, lines;
};

static void
usage(void)
{
	printf("usage: evpub [OPTIONS] TYPE [PAYLOAD]\n"
	    "       evpub [OPTIONS] TYPE KEY=VALUE|KEY:=JSON ...\n"
	    "       evpub [OPTIONS] TYPE -\n"
	    "       evpub [OPTIONS] -l [TYPE]\n"
	    "\n"
	    "  -s, --spool DIR    spool directory (default $EV_SPOOL, see evspool(7))\n"
	    "      --id ID        publish only if no event with this id exists\n"
	    "      --source SRC   the event's source (default: host name)\n"
	    "      --no-sync      do not wait for the disk (fast, not durable)\n"
	    "  -l, --lines        read NDJSON from stdin, one event a line\n"
	    "  -q, --quiet        do not print the ids of new events\n"
	    "  -h, --help         this text\n"
	    "  -V, --version      the version\n");
	exit(0);
}

/* Is this argument KEY=VALUE or KEY:=JSON rather than a JSON text? */
static int
is_word(const char *arg)
{
	const char *eq = strchr(arg, '=');

	return eq != NULL && eq != arg && !(eq == arg + 1 && *arg == ':') &&
	    strchr("{[\"", arg[0]) == NULL;
}

static int
publish_one(struct ev_bus *bus, const struct options *o, const char *type,
    int nargs, char *args[])
{
	struct ev_batch *batch;
	struct ev_event ev = { 0 };
	struct ev_err err = { 0 };
	char *text = NULL, *payload = NULL, id[EV_ID_MAX + 1];
	size_t len, max = ev_bus_payload_max(bus);
	int dup, i, words = nargs > 0;

	for (i = 0; i < nargs; i++)
		words &= is_word(args[i]);
	if (nargs == 0) {
		payload = strdup("{}");
		len = 2;
	} else if (words) {
		if (ev_payload_from_words(args, nargs, max, &payload, &len, &err))
			tool_die(&err);
	} else if (nargs > 1) {
		tool_exit(EX_USAGE, "'%s' is not KEY=VALUE; give one JSON "
		    "payload or KEY=VALUE words", is_word(args[0]) ?
		    args[1] : args[0]);
	} else {
		if (strcmp(args[0], "-") == 0) {
			if (ev_read_fd(0, max, &text, &len) < 0) {
				if (errno == EFBIG)
					tool_exit(EX_DATAERR, "payload on stdin is "
					    "over the limit of %zu bytes", max);
				tool_exit(EX_IOERR, "reading stdin: %s",
				    strerror(errno));
			}
		} else {
			text = strdup(args[0]);
			len = strlen(args[0]);
		}
		if (ev_payload_parse(text, len, max, &payload, &len, &err))
			tool_die(&err);
		free(text);
	}
	if (payload == NULL)
		tool_exit(EX_OSERR, "out of memory");

	ev.type = type;
	ev.id = o->id;
	ev.source = o->source;
	ev.payload = payload;
	ev.payload_len = len;
	ev_event_inherit_cause(&ev);
	if (ev_batch_new(bus, &batch, &err) ||
	    ev_batch_add(batch, &ev, id, &dup, &err) ||
	    ev_batch_commit(batch, &err))
		tool_die(&err);
	ev_batch_free(batch);
	free(payload);
	if (!o->quiet)
		printf("%s\n", id);
	return 0;
}

/* Does the JSON string S (or NULL) hold a NUL character? */
static int
has_nul(json_t *s)
{
	return s != NULL && strlen(json_string_value(s)) != json_string_length(s);
}

/* One line of -l input into an event; on failure, ERR says why. The
 * strings in EV point into LINE or into *OWNED. */
static int
parse_line(char *line, size_t len, const char *type, const struct options *o,
    size_t max, struct ev_event *ev, char **owned, struct ev_err *err)
{
	json_t *obj, *jtype, *jid, *jsrc, *jpayload;
	json_error_t jerr;
	size_t off, vlen, plen = 0;
	const char *why;
	char *ptext = NULL, *copy, *nul;
	int rc, blanked = 0;

	*owned = NULL;
	ev->id = o->id;
	ev->source = o->source;
	if (type != NULL) {
		ev->type = type;
		if ((rc = ev_payload_parse(line, len, max, owned,
		    &ev->payload_len, err)) != 0)
			return rc;
		ev->payload = *owned;
		return 0;
	}
	if (len > max + 4096)
		return ev_fail(err, EX_DATAERR, "line is over the size limit");
	/* jansson would take a NUL after a number for the end of the line. */
	if ((nul = memchr(line, '\0', len)) != NULL)
		return ev_fail(err, EX_DATAERR, "NUL byte at column %zu",
		    (size_t)(nul - line) + 1);
	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    &jerr);
	if (obj == NULL &&
	    (json_error_code(&jerr) == json_error_numeric_overflow ||
	    json_error_code(&jerr) == json_error_null_byte_in_key) &&
	    ev_json_member_span(line, len, "payload", &off, &vlen) == 0 &&
	    vlen > 0 && (copy = malloc(len + 1)) != NULL) {
		/* A payload jansson cannot hold (1e400, a \u0000 in a key)
		 * can still be valid JSON, which ev_payload_parse() checks
		 * below: read the rest of the line with the payload blanked. */
		memcpy(copy, line, len);
		memset(copy + off, ' ', vlen);
		copy[off] = '0';
		obj = json_loadb(copy, len, JSON_REJECT_DUPLICATES |
		    JSON_ALLOW_NUL, &jerr);
		free(copy);
		blanked = 1;
	}
	if (obj == NULL)
		return ev_fail(err, EX_DATAERR, "invalid JSON at column %d: %s",
		    jerr.column, jerr.text);
	rc = 0;
	jtype = json_object_get(obj, "type");
	jid = json_object_get(obj, "id");
	jsrc = json_object_get(obj, "source");
	jpayload = json_object_get(obj, "payload");
	if (!json_is_object(obj) || !json_is_string(jtype))
		rc = ev_fail(err, EX_DATAERR, "expected an object with a "
		    "\"type\" string");
	else if ((jid != NULL && !json_is_string(jid)) ||
	    (jsrc != NULL && !json_is_string(jsrc)))
		rc = ev_fail(err, EX_DATAERR, "\"id\" and \"source\" must be "
		    "strings");
	/* A \u0000 would end the C string early: "x\u0000y" would be
	 * published as type or id "x", another event's id perhaps. */
	else if (has_nul(jtype) || has_nul(jid) || has_nul(jsrc))
		rc = ev_fail(err, EX_DATAERR, "\"type\", \"id\" and \"source\" "
		    "must not hold \\u0000");
	else if (ev_type_valid(json_string_value(jtype), &why) != 0)
		rc = ev_fail(err, EX_DATAERR, "invalid event type '%s': %s",
		    json_string_value(jtype), why);
	/* The payload's text first: its length is what the buffer below
	 * needs, and jansson's spelling can be longer than the line (1e5 is
	 * dumped as 100000.0). The empty branches are meant. */
	/* NOLINTNEXTLINE(bugprone-branch-clone) */
	if (rc != 0 || jpayload == NULL) {
		/* none, or no need */
	} else if (ev_json_member_span(line, len, "payload", &off,
	    &vlen) == 0 && ev_payload_parse(line + off, vlen, SIZE_MAX,
	    &ptext, &plen, err) == 0) {
		/* the publisher's spelling */
	} else if (blanked) {
		rc = err->status;   /* the payload itself is not valid JSON */
	} else {
		/* "payload" spelled with escapes: jansson's spelling. */
		ptext = json_dumps(jpayload, JSON_COMPACT | JSON_ENCODE_ANY);
		if (ptext == NULL)
			rc = ev_fail(err, EX_OSERR, "out of memory");
		else
			plen = strlen(ptext);
	}
	if (rc == 0) {
		/* The strings are copied into one buffer so the event can
		 * outlive the parsed object. */
		const char *t = json_string_value(jtype);
		const char *i = jid ? json_string_value(jid) : NULL;
		const char *s = jsrc ? json_string_value(jsrc) : NULL;
		size_t need = strlen(t) + (i ? strlen(i) : 0) +
		    (s ? strlen(s) : 0) + plen + 8;
		char *buf = malloc(need), *p;

		if (buf == NULL) {
			json_decref(obj);
			free(ptext);
			return ev_fail_errno(err, EX_OSERR, "out of memory");
		}
		p = buf;
		ev->type = strcpy(p, t);
		p += strlen(t) + 1;
		if (i != NULL) {
			ev->id = strcpy(p, i);
			p += strlen(i) + 1;
		}
		if (s != NULL) {
			ev->source = strcpy(p, s);
			p += strlen(s) + 1;
		}
		if (jpayload == NULL) {
			strcpy(p, "{}");
			ev->payload_len = 2;
		} else {
			/* PTEXT is set whenever rc is 0; the analyzer cannot
			 * see that ev_fail() never returns 0. */
			/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
			memcpy(p, ptext, plen + 1);
			ev->payload_len = plen;
		}
		ev->payload = p;
		*owned = buf;
		if (ev->payload_len > max)
			rc = ev_fail(err, EX_DATAERR, "payload is %zu bytes, over "
			    "the limit of %zu", ev->payload_len, max);
	}
	free(ptext);
	json_decref(obj);
	return rc;
}

static int
commit_and_print(struct ev_batch *batch, char *ids, int n, int quiet)
{
	struct ev_err err = { 0 };
	int i;

	if (ev_batch_commit(batch, &err))
		tool_die(&err);
	if (!quiet) {
		for (i = 0; i < n; i++)
			puts(ids + (size_t)i * (EV_ID_MAX + 1));
		if (fflush(stdout) == EOF)
			tool_exit(EX_IOERR, "writing ids: %s", strerror(errno));
	}
	return 0;
}

static int
publish_lines(struct ev_bus *bus, const struct options *o, const char *type)
{
	struct ev_batch *batch;
	struct ev_event ev;
	struct ev_err err = { 0 };
	size_t max = ev_bus_payload_max(bus), len;
	char *line, *owned, *ids;
	struct lines in;
	int more;
	long lineno = 0;
	int n = 0, dup, rc, status = 0;

	if ((ids = malloc((size_t)BATCH_MAX * (EV_ID_MAX + 1))) == NULL)
		tool_exit(EX_OSERR, "out of memory");
	if (ev_batch_new(bus, &batch, &err))
		tool_die(&err);
	lines_init(&in, 0, max + 64 * 1024);
	while ((more = lines_next(&in, &line, &len)) > 0) {
		lineno++;
		if (more == 2) {
			tool_warn("line %ld: longer than the payload limit of "
			    "%zu bytes", lineno, max);
			status = EX_DATAERR;
			continue;
		}
		if (len == 0 || strspn(line, " \t\r") == len)
			continue;   /* blank lines separate nothing */
		memset(&ev, 0, sizeof ev);
		if (parse_line(line, len, type, o, max, &ev, &owned,
		    &err) != 0) {
			tool_warn("line %ld: %s", lineno, err.msg);
			status = err.status == EX_OSERR ? EX_OSERR : EX_DATAERR;
			free(owned);
			continue;
		}
		ev_event_inherit_cause(&ev);
		rc = ev_batch_add(batch, &ev, ids + (size_t)n * (EV_ID_MAX + 1),
		    &dup, &err);
		if (rc == EX_TEMPFAIL && n > 0) {
			/* Its id is held by another publisher, who may be
			 * waiting for ids this batch holds: commit them, then
			 * wait for the id holding nothing. */
			commit_and_print(batch, ids, n, o->quiet);
			n = 0;
			rc = ev_batch_add(batch, &ev, ids, &dup, &err);
		}
		if (rc != 0) {
			free(owned);
			if (err.status == EX_USAGE || err.status == EX_DATAERR) {
				tool_warn("line %ld: %s", lineno, err.msg);
				status = EX_DATAERR;
				continue;
			}
			ev_batch_free(batch);
			tool_die(&err);
		}
		free(owned);
		/* A duplicate's id is printed too, as a single --id
		 * publish prints it: the event exists either way. */
		n++;
		if (n == BATCH_MAX || (n > 0 && !lines_pending(&in))) {
			commit_and_print(batch, ids, n, o->quiet);
			n = 0;
		}
	}
	if (more < 0)
		tool_exit(EX_IOERR, "reading stdin: %s", strerror(errno));
	commit_and_print(batch, ids, n, o->quiet);
	ev_batch_free(batch);
	lines_free(&in);
	free(ids);
	return status;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "spool", required_argument, NULL, 's' },
		{ "id", required_argument, NULL, 'i' },
		{ "source", required_argument, NULL, 'S' },
		{ "no-sync", no_argument, NULL, 'N' },
		{ "lines", no_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct options o = { .sync = 1 };
	struct ev_bus_opts bo = { 0 };
	struct ev_bus *bus;
	struct ev_err err = { 0 };
	const char *type = NULL, *why;
	int opt, status;

	opterr = 0;
	/* '+': options come before TYPE, so a payload such as -1 or - is
	 * never taken for an option. */
	while ((opt = getopt_long(argc, argv, "+:s:lqhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o.spool = optarg; break;
		case 'i': o.id = optarg; break;
		case 'S': o.source = optarg; break;
		case 'N': o.sync = 0; break;
		case 'l': o.lines = 1; break;
		case 'q': o.quiet = 1; break;
		case 'h': usage(); break;
		case 'V': tool_version(); break;
		default: tool_bad_option(opt, NULL, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 0)
		type = argv[0];
	if (type == NULL && !o.lines)
		tool_exit(EX_USAGE, "no event type given (see evpub --help)");
	if (type != NULL && ev_type_valid(type, &why) != 0)
		tool_exit(EX_USAGE, "invalid event type '%s': %s", type, why);
	if (o.id != NULL && ev_id_valid(o.id, &why) != 0)
		tool_exit(EX_USAGE, "invalid event id '%s': %s", o.id, why);
	if (o.lines && argc > 1)
		tool_exit(EX_USAGE, "-l takes no payload arguments: the "
		    "payloads come from stdin");
	if (o.lines && o.id != NULL)
		tool_exit(EX_USAGE, "--id names one event; with -l put \"id\" "
		    "in each line");
	if (o.source != NULL) {
		char *quoted = ev_json_quote(o.source);

		if (quoted == NULL)
			tool_exit(EX_USAGE, "source is not valid UTF-8");
		free(quoted);
	}

	bo.location = o.spool;
	bo.sync = o.sync;
	bo.create = 1;
	if (ev_bus_open(&bo, &bus, &err))
		tool_die(&err);
	if (o.lines)
		status = publish_lines(bus, &o, type);
	else
		status = publish_one(bus, &o, type, argc - 1, argv + 1);
	if (fflush(stdout) == EOF || ferror(stdout))
		tool_exit(EX_IOERR, "writing ids: %s", strerror(errno));
	tool_maintain(bus);
	ev_bus_close(bus);
	return status;
}
