/*
 * evsub: subscribe to events and run a command for each, or print them.
 *
 *   evsub [OPTIONS] -e PATTERN [-e PATTERN]... [-- COMMAND [ARG]...]
 *
 * One loop: poll(2) on a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP) and the
 * subscription's inotify descriptor, with a timeout that is the nearest of:
 * a retry coming due, a handler's timeout, -w. Each turn settles finished
 * handlers (exit 0: acknowledge; 100: dead letter; anything else, a signal
 * or a timeout: retry with backoff until -r is spent, then dead letter) and
 * starts new ones while fewer than -j run, in publish order.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evsub.h"
#include "tool.h"

const char *tool_name = "evsub";

#define EXIT_WAIT_EXPIRED 124   /* -w ran out, as timeout(1) exits */
#define EXIT_PERMANENT 100      /* a handler's "never retry this" */

struct state {
	const struct evsub_opts *o;
	struct ev_bus *bus;
	struct ev_sub *sub;
	struct job *jobs;
	int running;
	long taken, done;          /* events started, and settled */
	int stopping, failed;
	int died;                  /* an event went to the dead letters */
	int64_t stop_deadline_ms;  /* SIGTERM: grace for running handlers */
	int64_t last_event_ms;     /* for -w */
	int64_t next_maintain_ms;  /* when to ask about housekeeping again */
	int sigfd;
	int spawn_errno_reported;
};

static void
usage(void)
{
	printf("usage: evsub [OPTIONS] -e PATTERN [-e PATTERN]... [-- COMMAND [ARG]...]\n"
	    "\n"
	    "  -n, --name NAME        durable subscription (kept while no evsub runs)\n"
	    "  -e, --event PATTERN    type pattern: '*' one segment, '#' zero or more\n"
	    "  -j, --jobs N           up to N handlers at once (default 1)\n"
	    "  -t, --timeout DUR      stop a handler running longer (TERM, then KILL)\n"
	    "  -r, --retries N        retries after the first failure (default 5)\n"
	    "      --backoff MIN[:MAX]  delay before a retry, doubling (default 1s:5m)\n"
	    "      --ordered          a failing event holds back the ones after it\n"
	    "      --grace DUR        on SIGTERM, wait this long for handlers (default 10s)\n"
	    "  -1, --once             handle what is queued now, then exit\n"
	    "  -c, --count N          exit after N events\n"
	    "  -w, --wait DUR         exit 124 when no event arrived for DUR\n"
	    "      --since DUR|all    also deliver logged events younger than DUR\n"
	    "      --payload          stdin (or output) is the payload alone\n"
	    "  -F, --format FMT       without COMMAND: %%i %%t %%T %%s %%p %%j %%%%\n"
	    "  -0                     without COMMAND: end records with NUL\n"
	    "  -s, --spool DIR        spool directory (see evspool(7))\n"
	    "  -q, --quiet            do not report failing handlers\n"
	    "  -v, --verbose          also report every handled event\n"
	    "  -h, --help             this text\n"
	    "  -V, --version          the version\n");
	exit(0);
}

static int64_t
duration_arg(const char *arg, const char *opt)
{
	int64_t ms;

	if (ev_duration_parse(arg, &ms) < 0)
		tool_exit(EX_USAGE, "bad duration '%s' for %s (use 250ms, 30s, "
		    "5m, 1h)", arg, opt);
	return ms;
}

static long
count_arg(const char *arg, const char *opt, long min)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || n < min || n > 1000000000)
		tool_exit(EX_USAGE, "bad number '%s' for %s", arg, opt);
	return n;
}

static void
parse_options(int argc, char *argv[], struct evsub_opts *o)
{
	enum { OPT_BACKOFF = 256, OPT_ORDERED, OPT_SINCE, OPT_PAYLOAD,
	    OPT_GRACE };
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "event", required_argument, NULL, 'e' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "retries", required_argument, NULL, 'r' },
		{ "backoff", required_argument, NULL, OPT_BACKOFF },
		{ "ordered", no_argument, NULL, OPT_ORDERED },
		{ "grace", required_argument, NULL, OPT_GRACE },
		{ "once", no_argument, NULL, '1' },
		{ "count", required_argument, NULL, 'c' },
		{ "wait", required_argument, NULL, 'w' },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "payload", no_argument, NULL, OPT_PAYLOAD },
		{ "format", required_argument, NULL, 'F' },
		{ "spool", required_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
	char *colon;
	int opt;

	memset(o, 0, sizeof *o);
	o->jobs = 1;
	o->retries = 5;
	o->backoff_min_ms = 1000;
	o->backoff_max_ms = 5 * 60 * 1000;
	o->grace_ms = 10 * 1000;
	o->since_ms = -1;
	if ((o->patterns = calloc((size_t)argc, sizeof *o->patterns)) == NULL)
		tool_exit(EX_OSERR, "out of memory");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:n:e:j:t:r:1c:w:F:0s:qvhV",
	    longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (ev_name_valid(optarg, &why) != 0)
				tool_exit(EX_USAGE, "invalid subscription name "
				    "'%s': %s", optarg, why);
			o->name = optarg;
			break;
		case 'e':
			if (ev_pattern_valid(optarg, &why) != 0)
				tool_exit(EX_USAGE, "invalid pattern '%s': %s",
				    optarg, why);
			o->patterns[o->npatterns++] = optarg;
			break;
		case 'j': o->jobs = (int)count_arg(optarg, "-j", 1); break;
		case 't': o->timeout_ms = duration_arg(optarg, "-t"); break;
		case 'r': o->retries = (int)count_arg(optarg, "-r", 0); break;
		case OPT_BACKOFF:
			if ((colon = strchr(optarg, ':')) != NULL) {
				*colon = '\0';
				o->backoff_max_ms = duration_arg(colon + 1,
				    "--backoff");
			}
			o->backoff_min_ms = duration_arg(optarg, "--backoff");
			if (colon == NULL && o->backoff_max_ms < o->backoff_min_ms)
				o->backoff_max_ms = o->backoff_min_ms;
			if (o->backoff_max_ms < o->backoff_min_ms)
				tool_exit(EX_USAGE, "--backoff: MAX is below MIN");
			break;
		case OPT_ORDERED: o->ordered = 1; break;
		case OPT_GRACE: o->grace_ms = duration_arg(optarg, "--grace"); break;
		case '1': o->once = 1; break;
		case 'c': o->count = count_arg(optarg, "-c", 1); break;
		case 'w':
			o->wait_ms = duration_arg(optarg, "-w");
			if (o->wait_ms == 0)
				tool_exit(EX_USAGE, "-w needs a duration above 0");
			break;
		case OPT_SINCE:
			if (strcmp(optarg, "all") == 0)
				o->since_all = 1;
			else
				o->since_ms = duration_arg(optarg, "--since");
			break;
		case OPT_PAYLOAD: o->payload_only = 1; break;
		case 'F': o->format = optarg; break;
		case '0': o->nul = 1; break;
		case 's': o->spool = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'v': o->verbose = 1; break;
		case 'h': usage(); break;
		case 'V': tool_version(); break;
		default: tool_bad_option(opt, NULL, argv);
		}
	}
	if (optind < argc && strcmp(argv[optind - 1], "--") != 0)
		tool_exit(EX_USAGE, "unexpected argument '%s': put the command "
		    "after --", argv[optind]);
	if (optind < argc)
		o->command = argv + optind;
	if (o->npatterns == 0)
		tool_exit(EX_USAGE, "no pattern given: use -e PATTERN (see "
		    "evsub --help)");
	if (o->command != NULL && (o->format != NULL || o->nul))
		tool_exit(EX_USAGE, "-F and -0 are for printing events, not for "
		    "running a command");
	if (o->command == NULL && o->jobs > 1)
		tool_exit(EX_USAGE, "-j is for running a command");
}

/* Delay before retry number ATTEMPT: MIN doubled per failure, up to MAX,
 * then "equal jitter": a random point in the upper half, so retries of many
 * events that failed together spread out. */
static int64_t
backoff_ms(const struct evsub_opts *o, int attempt)
{
	int64_t delay = o->backoff_min_ms;
	int i;

	for (i = 1; i < attempt && delay < o->backoff_max_ms; i++)
		delay *= 2;
	if (delay > o->backoff_max_ms)
		delay = o->backoff_max_ms;
	if (delay < 2)
		return delay;
	return delay / 2 + (int64_t)((uint64_t)random() % (uint64_t)(delay / 2 + 1));
}

static void
report(struct state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
report(struct state *st, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (st->o->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	tool_warn("%s", msg);   /* one line, control bytes escaped */
}

/* Settle a delivery that failed: retry it later, or dead-letter it. */
static void
settle_failure(struct state *st, struct ev_delivery *d, const char *id,
    const char *type, const struct ev_failure *f)
{
	const struct evsub_opts *o = st->o;
	struct ev_err err = { 0 };
	char when[32];
	int64_t delay;
	int permanent = f->exit_status == EXIT_PERMANENT;

	st->failed = 1;
	if (permanent || d->attempt > o->retries) {
		report(st, "event %s (%s): %s; %s after %d attempt%s", id, type,
		    f->reason, "dead letter", d->attempt,
		    d->attempt == 1 ? "" : "s");
		st->died = 1;
		if (ev_sub_dead(st->sub, d, f, &err))
			tool_die(&err);
		return;
	}
	delay = backoff_ms(o, d->attempt);
	ev_duration_format(delay, when, sizeof when);
	report(st, "event %s (%s): %s; retry %d of %d in %s", id, type,
	    f->reason, d->attempt, o->retries, when);
	if (ev_sub_retry(st->sub, d, delay, f, &err))
		tool_die(&err);
}

/* A finished handler: what its status says about its event. */
static void
settle_job(struct state *st, struct job *job, int status)
{
	struct ev_failure f = { .exit_status = -1 };
	struct ev_err err = { 0 };

	job->pid = 0;
	st->running--;
	st->done++;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !job->timed_out) {
		if (st->o->verbose)
			report(st, "event %s (%s): done", job->id, job->type);
		if (ev_sub_ack(st->sub, &job->d, &err))
			tool_die(&err);
		return;
	}
	if (job->timed_out) {
		f.timed_out = 1;
		snprintf(f.reason, sizeof f.reason, "timed out");
	}
	if (WIFEXITED(status)) {
		f.exit_status = WEXITSTATUS(status);
		if (!job->timed_out)
			snprintf(f.reason, sizeof f.reason, "exit %d",
			    f.exit_status);
	} else if (WIFSIGNALED(status)) {
		f.signal = WTERMSIG(status);
		if (!job->timed_out)
			snprintf(f.reason, sizeof f.reason, "killed by signal %d",
			    f.signal);
	}
	if (job->stopped) {
		/* Stopped by our own shutdown, not failed by itself: the
		 * attempt counts, but it never makes a dead letter, as a
		 * crash of evsub would not. */
		if (ev_sub_retry(st->sub, &job->d, backoff_ms(st->o,
		    job->d.attempt), &f, &err))
			tool_die(&err);
		return;
	}
	settle_failure(st, &job->d, job->id, job->type, &f);
}

static void
reap(struct state *st)
{
	int status, i;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < st->o->jobs; i++) {
			if (st->jobs[i].pid == pid) {
				settle_job(st, &st->jobs[i], status);
				break;
			}
		}
	}
}

/* Handle one taken event: print it, or start its handler. */
static void
dispatch(struct state *st, struct ev_delivery *d)
{
	struct ev_failure f = { .exit_status = -1 };
	struct ev_err err = { 0 };
	struct event_info ei;
	struct job *job = NULL;
	int i;

	st->taken++;
	st->last_event_ms = ev_monotonic_ms();
	switch (event_info_read(d, &ei, f.reason, sizeof f.reason)) {
	case 0:
		break;
	case EVENT_UNREADABLE:
		/* Not the event's fault, but it cannot be handled now: a
		 * failed attempt, with the retries and backoff of one. */
		event_info_free(&ei);
		st->done++;
		settle_failure(st, d, d->key, "?", &f);
		return;
	default:
		report(st, "event file %s: %s; dead letter", d->key, f.reason);
		event_info_free(&ei);
		st->done++;
		if (ev_sub_dead(st->sub, d, &f, &err))
			tool_die(&err);
		return;
	}
	if (st->o->command == NULL) {
		if (print_event(st->o, &ei) < 0) {
			int saved = errno;

			event_info_free(&ei);
			ev_sub_release(st->sub, d, &err);
			if (saved == EPIPE) {
				/* The reader went away: a clean stop, through
				 * serve(), so that an ephemeral subscription is
				 * removed rather than left for the gc. */
				st->stopping = 1;
				return;
			}
			tool_exit(EX_IOERR, "writing events: %s", strerror(saved));
		}
		event_info_free(&ei);
		st->done++;
		if (ev_sub_ack(st->sub, d, &err))
			tool_die(&err);
		return;
	}
	for (i = 0; i < st->o->jobs; i++)
		if (st->jobs[i].pid == 0)
			job = &st->jobs[i];
	/* serve() dispatches only while running < jobs, so a slot is free. */
	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
	job->d = *d;
	job->timed_out = 0;
	job->stopped = 0;
	job->started_ms = ev_monotonic_ms();
	job->deadline_ms = st->o->timeout_ms ? job->started_ms +
	    st->o->timeout_ms : 0;
	job->kill_at_ms = 0;
	snprintf(job->id, sizeof job->id, "%s", ei.id);
	snprintf(job->type, sizeof job->type, "%s", ei.type);
	if (run_start(st->o, job, &ei, ev_sub_name(st->sub), f.reason,
	    sizeof f.reason) < 0) {
		st->done++;
		if (!st->spawn_errno_reported)
			tool_warn("%s", f.reason);
		st->spawn_errno_reported = 1;
		settle_failure(st, &job->d, ei.id, ei.type, &f);
	} else {
		st->running++;
	}
	event_info_free(&ei);
}

/* Timeouts: TERM the handler's process group at its deadline, KILL it a
 * grace period later. Returns the ms until the next such moment, or -1. */
static int64_t
police_jobs(struct state *st, int64_t now)
{
	int64_t next = -1, at;
	int i;

	for (i = 0; i < st->o->jobs; i++) {
		struct job *job = &st->jobs[i];

		if (job->pid == 0)
			continue;
		if (job->deadline_ms && !job->timed_out && now >= job->deadline_ms) {
			job->timed_out = 1;
			kill(-job->pid, SIGTERM);
			job->kill_at_ms = now + st->o->grace_ms;
		}
		if (st->stopping && st->stop_deadline_ms && now >=
		    st->stop_deadline_ms && !job->kill_at_ms) {
			kill(-job->pid, SIGTERM);
			job->kill_at_ms = now + 1000;
			job->stopped = 1;
		}
		if (job->kill_at_ms && now >= job->kill_at_ms) {
			kill(-job->pid, SIGKILL);
			job->kill_at_ms = now + 1000;
		}
		at = job->kill_at_ms ? job->kill_at_ms : job->timed_out ? 0 :
		    job->deadline_ms;
		if (st->stopping && st->stop_deadline_ms && !job->kill_at_ms)
			at = at && at < st->stop_deadline_ms ? at :
			    st->stop_deadline_ms;
		if (at && (next < 0 || at - now < next))
			next = at - now > 0 ? at - now : 0;
	}
	return next;
}

static int
handle_signals(struct state *st)
{
	struct signalfd_siginfo si;
	ssize_t n;

	while ((n = read(st->sigfd, &si, sizeof si)) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD)
			continue;   /* reaped below, whatever the count */
		if (!st->stopping) {
			st->stopping = 1;
			st->stop_deadline_ms = ev_monotonic_ms() + st->o->grace_ms;
		}
	}
	reap(st);
	return 0;
}

static int64_t
min_wait(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int
serve(struct state *st)
{
	const struct evsub_opts *o = st->o;
	struct ev_err err = { 0 };
	struct ev_delivery d;
	struct pollfd pfd[3];
	int64_t wait, retry_wait, now;
	int n, empty;

	st->last_event_ms = ev_monotonic_ms();
	for (;;) {
		/* Start what may start; EMPTY: nothing more is due now. */
		empty = 0;
		retry_wait = -1;
		while (!st->stopping && st->running < o->jobs &&
		    (o->count == 0 || st->taken < o->count)) {
			if (ev_sub_take(st->sub, &d, &retry_wait, &err)) {
				/* An event that cannot be opened for now (no
				 * descriptors, an I/O error) stays queued: a
				 * running evsub says so and tries again in a
				 * second; --once leaves it to the next run. */
				if (err.status != EX_TEMPFAIL || o->once)
					tool_die(&err);
				tool_warn("%s; will try again", err.msg);
				empty = 1;
				retry_wait = 1000;
				break;
			}
			if (d.fd < 0) {
				empty = 1;
				break;
			}
			dispatch(st, &d);
		}
		if (st->running == 0) {
			if ((o->count && st->done >= o->count) || st->stopping)
				return 0;
			/* 75 only if an event died, or one that failed still
			 * waits for its retry: a retry that came due and
			 * succeeded meanwhile leaves nothing undone. */
			if (o->once && empty)
				return st->died || (st->failed &&
				    retry_wait >= 0) ? EX_TEMPFAIL : 0;
		}
		now = ev_monotonic_ms();
		if (now >= st->next_maintain_ms) {
			tool_maintain(st->bus);
			st->next_maintain_ms = now + 60 * 1000;
		}
		if (o->wait_ms && st->running == 0 &&
		    now - st->last_event_ms >= o->wait_ms)
			return EXIT_WAIT_EXPIRED;

		/* Sleep until a signal, an arrival, or the nearest deadline. */
		wait = empty && !o->once ? retry_wait : -1;
		wait = min_wait(wait, police_jobs(st, now));
		if (o->wait_ms && st->running == 0)
			wait = min_wait(wait, st->last_event_ms + o->wait_ms - now);
		pfd[0].fd = st->sigfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = ev_sub_fd(st->sub);   /* -1: ignored by poll */
		pfd[1].events = POLLIN;
		/* Streaming: a pipe whose reader went away reports POLLERR, so
		 * `evsub | head -1` ends even when no further event comes to
		 * fail a write. */
		pfd[2].fd = o->command == NULL ? STDOUT_FILENO : -1;
		pfd[2].events = 0;
		pfd[2].revents = 0;
		n = poll(pfd, 3,
		    wait < 0 ? -1 : wait > 60000 ? 60000 : (int)wait);
		if (n < 0 && errno != EINTR)
			tool_exit(EX_OSERR, "poll: %s", strerror(errno));
		if (n > 0 && (pfd[2].revents & POLLERR))
			return 0;   /* the reader went away: a clean stop */
		if (pfd[0].revents & POLLIN)
			handle_signals(st);
		if (ev_sub_refresh(st->sub, &err))
			tool_die(&err);
	}
}

/* On a stop: events taken but not started go back, untouched. */
static void
finish(struct state *st)
{
	int i;

	for (i = 0; i < st->o->jobs; i++)
		if (st->jobs[i].pid != 0)
			kill(-st->jobs[i].pid, SIGKILL);
	reap(st);
}

int
main(int argc, char *argv[])
{
	struct evsub_opts o;
	struct ev_bus_opts bo = { 0 };
	struct ev_sub_opts so = { 0 };
	struct ev_err err = { 0 };
	struct state st = { 0 };
	int status;

	parse_options(argc, argv, &o);
	st.o = &o;
	st.sigfd = tool_signalfd(NULL);
	/* Streaming into a closed pipe must be EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid() ^ (unsigned)ev_now_ms());
	bo.location = o.spool;
	bo.sync = 1;
	bo.create = 1;
	if (ev_bus_open(&bo, &st.bus, &err))
		tool_die(&err);
	if (o.command != NULL)
		run_prepare(&o, ev_bus_location(st.bus));
	so.name = o.name;
	so.patterns = o.patterns;
	so.npatterns = o.npatterns;
	so.since_ms = o.since_ms;
	so.replay_all = o.since_all;
	so.ordered = o.ordered;
	so.peek = o.command == NULL;
	if (ev_sub_open(st.bus, &so, &st.sub, &err))
		tool_die(&err);
	if ((st.jobs = calloc((size_t)o.jobs, sizeof *st.jobs)) == NULL)
		tool_exit(EX_OSERR, "out of memory");
	status = serve(&st);
	finish(&st);
	/* The subscription's lock goes first: the maintenance child is forked
	 * with it and holds it until it closes its descriptors, and an evctl
	 * status or a new evsub must not see it held after we exit. */
	ev_sub_close(st.sub);
	tool_maintain(st.bus);   /* also for a spool read only by --once runs */
	ev_bus_close(st.bus);
	free(st.jobs);
	free(o.patterns);
	return status;
}
