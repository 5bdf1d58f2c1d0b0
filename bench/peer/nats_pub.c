/* nats_pub -- the NATS publisher that bench/run compares evpub with.
 *
 *   nats_pub -u URL [-J] SUBJECT PAYLOAD       one message, then exit
 *   nats_pub -u URL [-J] -l SUBJECT            one message per stdin line
 *   nats_pub -u URL -J -S STREAM -c SUBJECT    create the stream (untimed setup)
 *
 * Exit 0 only once the server has every message: core NATS after a flush
 * (PING/PONG, so the server has read them all), JetStream after every ack
 * (the stream has stored them).  Errors: one line on stderr, exit 1; usage: 2.
 * See README.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

/* JetStream bulk: how many publishes may wait for their ack, and how long a
 * publish may stall when that many are outstanding.  Large enough that the
 * window never throttles the stream on a working server, bounded so that the
 * library does not hold an unbounded input in memory. */
#define JS_MAX_PENDING 65536
#define JS_STALL_MS 30000
/* How long to wait for the last acks (or the final flush) before giving up. */
#define DRAIN_MS 60000

static _Noreturn void die(const char *what, const char *why)
{
	fprintf(stderr, "nats_pub: %s: %s\n", what, why);
	exit(1);
}

/* NATS_ERR's own text is just "Error"; the server's reason (e.g. from the
 * JetStream API) is in the thread's last error, after a "(file.c:123): ". */
static const char *nats_why(natsStatus s)
{
	const char *t = nats_GetLastError(NULL), *p;

	if (s == NATS_ERR && t && (p = strstr(t, "): ")))
		return p + 3;
	return natsStatus_GetText(s);
}

static void check(natsStatus s, const char *what)
{
	if (s != NATS_OK)
		die(what, nats_why(s));
}

static _Noreturn void usage(void)
{
	fputs("usage: nats_pub -u URL [-J] SUBJECT PAYLOAD\n"
	      "       nats_pub -u URL [-J] -l SUBJECT      (payloads: stdin lines)\n"
	      "       nats_pub -u URL -J -S STREAM -c SUBJECT\n",
	      stderr);
	exit(2);
}

/* Async publish failures are reported on the library's reply thread.  The
 * library decrements its pending count under its lock only after this
 * returns, so once js_PublishAsyncComplete returns main sees them all. */
static atomic_long js_failed;
static char js_first_error[256];

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)closure;
	if (atomic_fetch_add(&js_failed, 1) == 0)
		snprintf(js_first_error, sizeof js_first_error, "%s",
			 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

static void create_stream(jsCtx *js, const char *stream, const char *subject)
{
	jsStreamConfig cfg;
	jsErrCode jerr = 0;
	natsStatus s;

	jsStreamConfig_Init(&cfg);
	cfg.Name = stream;
	cfg.Subjects = &subject;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	s = js_AddStream(NULL, js, &cfg, NULL, &jerr);
	/* An existing stream is kept as it is, even if its configuration
	 * differs: a wrong subject shows up as "no responders" on publish. */
	if (s != NATS_OK && jerr != JSStreamNameExistErr)
		check(s, "create stream");
}

static void publish_lines(natsConnection *nc, jsCtx *js, const char *subject)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, stdin)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (js)
			check(js_PublishAsync(js, subject, line, (int)len, NULL), "publish");
		else
			check(natsConnection_Publish(nc, subject, line, (int)len), "publish");
	}
	if (ferror(stdin))
		die("read stdin", strerror(errno));
	free(line);

	if (js) {
		jsPubOptions po;

		jsPubOptions_Init(&po);
		po.MaxWait = DRAIN_MS;
		check(js_PublishAsyncComplete(js, &po), "wait for acks");
		if (atomic_load(&js_failed) > 0) {
			char what[64];

			snprintf(what, sizeof what, "%ld messages not stored",
				 atomic_load(&js_failed));
			die(what, js_first_error);
		}
	} else {
		check(natsConnection_FlushTimeout(nc, DRAIN_MS), "flush");
	}
}

int main(int argc, char **argv)
{
	const char *url = NULL, *stream = NULL;
	int jet = 0, lines = 0, create = 0, c;
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;

	while ((c = getopt(argc, argv, "u:JlS:c")) != -1) {
		switch (c) {
		case 'u': url = optarg; break;
		case 'J': jet = 1; break;
		case 'l': lines = 1; break;
		case 'S': stream = optarg; break;
		case 'c': create = 1; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (!url || (create && (!jet || !stream || lines)) || (stream && !create) ||
	    argc != (lines || create ? 1 : 2))
		usage();

	check(natsOptions_Create(&opts), "options");
	check(natsOptions_SetURL(opts, url), "options");
	/* A reconnect would buffer publishes in the client and report them as
	 * sent; without it a lost connection fails the next call instead. */
	check(natsOptions_SetAllowReconnect(opts, false), "options");
	check(natsConnection_Connect(&nc, opts), "connect");

	if (jet) {
		jsOptions jo;

		jsOptions_Init(&jo);
		if (lines) {
			jo.PublishAsync.MaxPending = JS_MAX_PENDING;
			jo.PublishAsync.StallWait = JS_STALL_MS;
			jo.PublishAsync.ErrHandler = on_pub_error;
		}
		check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
	}

	if (create)
		create_stream(js, stream, argv[0]);
	else if (lines)
		publish_lines(nc, js, argv[0]);
	else if (js)
		check(js_Publish(NULL, js, argv[0], argv[1], (int)strlen(argv[1]), NULL, NULL),
		      "publish");
	else {
		check(natsConnection_PublishString(nc, argv[0], argv[1]), "publish");
		check(natsConnection_Flush(nc), "flush");
	}

	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	return 0;
}
