/* nats_sub -- the NATS subscriber that bench/run compares evsub with.
 *
 *   nats_sub -u URL -n N [-o FILE] [-t SECONDS] SUBJECT
 *       core NATS: prints "ready" on stderr once the server has the
 *       subscription, then writes N messages (data + '\n') to FILE or stdout.
 *   nats_sub -u URL -J -S STREAM -d DURABLE -n N [-o FILE] [-t SECONDS] SUBJECT
 *       JetStream: consumes N stored messages through a durable pull
 *       consumer, writing each one and acking it (explicit ack, one per message).
 *
 * Exit 0 once N messages were written; 1 if SECONDS (default 30) pass with
 * no message, if any was dropped, or on an error; 2 on a usage error.
 * See README.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

/* Messages per JetStream pull request: one request round trip per batch
 * (256 took twice as long as 1000 for 100,000 messages; 4096 was no faster). */
#define BATCH 1000
/* The consumer's limit of delivered but unacked messages.  It must stay above
 * BATCH: the server's default (1000) equal to it works only while every ack
 * has arrived before the next pull, and a pull bigger than the limit waits
 * out its whole timeout for messages the server will not send. */
#define MAX_ACK_PENDING (4 * BATCH)

static const char *out_name = "stdout";
static FILE *out;
static long got, want;
static int receiving;

static _Noreturn void die(const char *what, const char *why)
{
	fprintf(stderr, "nats_sub: %s: %s\n", what, why);
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

/* Once receiving has begun, every failure says how far it got, so that a
 * short run is never mistaken for a complete one. */
static void check(natsStatus s, const char *what)
{
	char buf[160];

	if (s == NATS_OK)
		return;
	if (receiving) {
		snprintf(buf, sizeof buf, "%s (%ld of %ld messages arrived)", what, got, want);
		what = buf;
	}
	die(what, nats_why(s));
}

static _Noreturn void usage(void)
{
	fputs("usage: nats_sub -u URL -n N [-o FILE] [-t SECONDS] SUBJECT\n"
	      "       nats_sub -u URL -J -S STREAM -d DURABLE -n N [-o FILE] [-t SECONDS] SUBJECT\n",
	      stderr);
	exit(2);
}

static void write_msg(natsMsg *m)
{
	fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m), out);
	putc('\n', out);
	got++;
}

static void flush_out(void)
{
	if (fflush(out) != 0 || ferror(out))
		die(out_name, strerror(errno));
}

static void consume_core(natsConnection *nc, const char *subject, int64_t wait_ms)
{
	natsSubscription *sub = NULL;
	natsMsg *m = NULL;
	int64_t dropped = 0;
	natsStatus s;

	/* A sync subscription: the main thread is the consumer, so no callback
	 * and no hand-off back to main; its timeout is exactly -t. */
	check(natsConnection_SubscribeSync(&sub, nc, subject), "subscribe");
	/* The default limit (65,536 messages) is below a fast burst of 100,000:
	 * past it the library drops messages. */
	check(natsSubscription_SetPendingLimits(sub, -1, -1), "pending limits");
	check(natsConnection_Flush(nc), "subscribe");
	fputs("ready\n", stderr);
	fflush(stderr);

	receiving = 1;
	while (got < want) {
		s = natsSubscription_NextMsg(&m, sub, wait_ms);
		if (s == NATS_TIMEOUT)
			check(s, "no message for -t seconds");
		/* NATS_SLOW_CONSUMER here means the library dropped messages;
		 * NATS_CONNECTION_CLOSED, e.g. that the server cut us off as a
		 * slow consumer.  Either way some are lost. */
		check(s, "receive");
		write_msg(m);
		natsMsg_Destroy(m);
	}
	check(natsSubscription_GetDropped(sub, &dropped), "dropped count");
	if (dropped > 0)
		check(NATS_SLOW_CONSUMER, "messages dropped");
	natsSubscription_Destroy(sub);
}

static void consume_js(natsConnection *nc, const char *subject, const char *stream,
		       const char *durable, int64_t wait_ms)
{
	natsSubscription *sub = NULL;
	jsCtx *js = NULL;
	jsSubOptions so;
	natsMsgList list;
	natsStatus s;
	int i, batch;

	check(natsConnection_JetStream(&js, nc, NULL), "jetstream");
	jsSubOptions_Init(&so);
	/* Naming the stream saves the library a lookup by subject. */
	so.Stream = stream;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.MaxAckPending = MAX_ACK_PENDING;
	/* Binds to DURABLE if it exists, creates it otherwise. */
	check(js_PullSubscribe(&sub, js, subject, durable, NULL, &so, NULL), "pull subscribe");

	receiving = 1;
	while (got < want) {
		/* Never ask for more than is left: an extra message would be
		 * delivered to us, not acked, and redelivered to the next run. */
		batch = want - got < BATCH ? (int)(want - got) : BATCH;
		s = natsSubscription_Fetch(&list, sub, batch, wait_ms, NULL);
		check(s, s == NATS_TIMEOUT ? "no message for -t seconds" : "fetch");
		for (i = 0; i < list.Count; i++)
			write_msg(list.Msgs[i]);
		/* At least once: a message is acked only after it left our
		 * buffer, so a crash between the two repeats it, never loses it.
		 * One write per batch, not per message. */
		flush_out();
		for (i = 0; i < list.Count; i++)
			check(natsMsg_Ack(list.Msgs[i], NULL), "ack");
		natsMsgList_Destroy(&list);
	}
	/* Acks are fire-and-forget publishes: make sure the server has the
	 * last ones before we go, or the next run would see them again. */
	check(natsConnection_Flush(nc), "flush acks");
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
}

int main(int argc, char **argv)
{
	const char *url = NULL, *stream = NULL, *durable = NULL, *file = NULL;
	double secs = 30;
	int jet = 0, c;
	char *end;
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;

	want = -1;
	while ((c = getopt(argc, argv, "u:n:o:t:JS:d:")) != -1) {
		switch (c) {
		case 'u': url = optarg; break;
		case 'n':
			want = strtol(optarg, &end, 10);
			if (*end || end == optarg || want < 1)
				usage();
			break;
		case 'o': file = optarg; break;
		case 't':
			secs = strtod(optarg, &end);
			if (*end || end == optarg || !(secs > 0 && secs < 1e9))
				usage();
			break;
		case 'J': jet = 1; break;
		case 'S': stream = optarg; break;
		case 'd': durable = optarg; break;
		default: usage();
		}
	}
	if (!url || want < 1 || argc - optind != 1 ||
	    (jet ? !stream || !durable : stream || durable))
		usage();

	out = stdout;
	if (file) {
		out_name = file;
		if (!(out = fopen(file, "w")))
			die(file, strerror(errno));
	}
	setvbuf(out, NULL, _IOFBF, 1 << 16);

	check(natsOptions_Create(&opts), "options");
	check(natsOptions_SetURL(opts, url), "options");
	/* A reconnect would silently lose what was sent in between (core) or
	 * hide the outage; either way a run must fail, not limp on. */
	check(natsOptions_SetAllowReconnect(opts, false), "options");
	check(natsConnection_Connect(&nc, opts), "connect");

	if (jet)
		consume_js(nc, argv[optind], stream, durable, (int64_t)(secs * 1000));
	else
		consume_core(nc, argv[optind], (int64_t)(secs * 1000));

	flush_out();
	if (out != stdout && fclose(out) != 0)
		die(out_name, strerror(errno));
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	return 0;
}
