/*
 * evrun: run a command and publish what became of it.
 *
 *   evrun [OPTIONS] -- COMMAND [ARG]...
 *
 * COMMAND runs directly (no shell) with evrun's stdin, so under evsub the
 * triggering event flows into it. Its stdout and stderr pass through to
 * evrun's own, and are also captured (capture.c); when it ends, evrun
 * publishes TYPE.completed (exit 0) or TYPE.failed, and exits with
 * COMMAND's status (128+N for signal N), so cron, systemd and evsub's retry
 * rules all see the truth.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "tool.h"

const char *tool_name = "evrun";

extern char **environ;

struct options {
	const char *spool;
	char type[EV_TYPE_MAX + 1];
	int started, no_output, quiet;
	char **command;
};

static void
usage(void)
{
	printf("usage: evrun [OPTIONS] -- COMMAND [ARG]...\n"
	    "\n"
	    "  -t, --type TYPE    publish TYPE.completed / TYPE.failed (default: the\n"
	    "                     command's base name)\n"
	    "      --started      also publish TYPE.started before the command runs\n"
	    "      --no-output    do not put the command's output into the event\n"
	    "  -s, --spool DIR    spool directory (see evspool(7))\n"
	    "  -q, --quiet        do not print the ids of published events\n"
	    "  -h, --help         this text\n"
	    "  -V, --version      the version\n");
	exit(0);
}

/* The default type: the command's base name with every byte a type cannot
 * hold turned into '_', and short enough for ".completed" to fit. */
static void
default_type(const char *command, char *out, size_t len)
{
	const char *base = strrchr(command, '/');
	size_t i, n = 0;

	base = base ? base + 1 : command;
	for (i = 0; base[i] != '\0' && n + 1 < len && n < EV_TYPE_MAX - 10; i++) {
		char c = base[i];

		if (c == '.' && (n == 0 || out[n - 1] == '.'))
			continue;
		out[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ? c : '_';
	}
	while (n > 0 && out[n - 1] == '.')
		n--;
	out[n] = '\0';
	if (n == 0)
		snprintf(out, len, "command");
}

static void
parse_options(int argc, char *argv[], struct options *o)
{
	enum { OPT_STARTED = 256, OPT_NO_OUTPUT };
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "started", no_argument, NULL, OPT_STARTED },
		{ "no-output", no_argument, NULL, OPT_NO_OUTPUT },
		{ "spool", required_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = NULL, *why;
	int opt;

	memset(o, 0, sizeof *o);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:t:s:qhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 't': type = optarg; break;
		case OPT_STARTED: o->started = 1; break;
		case OPT_NO_OUTPUT: o->no_output = 1; break;
		case 's': o->spool = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(); break;
		case 'V': tool_version(); break;
		default: tool_bad_option(opt, NULL, argv);
		}
	}
	if (optind >= argc)
		tool_exit(EX_USAGE, "no command given (see evrun --help)");
	o->command = argv + optind;
	if (type == NULL) {
		default_type(o->command[0], o->type, sizeof o->type);
		return;
	}
	if (ev_type_valid(type, &why) != 0)
		tool_exit(EX_USAGE, "invalid event type '%s': %s", type, why);
	if (strlen(type) > EV_TYPE_MAX - 10)
		tool_exit(EX_USAGE, "event type '%s' is too long to add "
		    "'.completed'", type);
	snprintf(o->type, sizeof o->type, "%s", type);
}

/* Publish one event of type o->type + SUFFIX; a failure is fatal (74), since
 * a step whose outcome is not published breaks its chain silently. */
static void
publish(struct ev_bus *bus, const struct options *o, const char *suffix,
    const char *payload)
{
	char type[EV_TYPE_MAX + 16], id[EV_ID_MAX + 1];
	struct ev_event ev = { 0 };
	struct ev_err err = { 0 };
	struct ev_batch *batch;
	int dup;

	snprintf(type, sizeof type, "%s.%s", o->type, suffix);
	ev.type = type;
	ev.payload = payload;
	ev.payload_len = strlen(payload);
	ev_event_inherit_cause(&ev);
	if (ev_batch_new(bus, &batch, &err) ||
	    ev_batch_add(batch, &ev, id, &dup, &err) ||
	    ev_batch_commit(batch, &err)) {
		tool_warn("cannot publish %s: %s", type, err.msg);
		exit(EX_IOERR);
	}
	ev_batch_free(batch);
	if (!o->quiet)
		fprintf(stderr, "%s: published %s %s\n", tool_name, type, id);
}

static pid_t
start(const struct options *o, struct capture *cap, const sigset_t *mask)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t pid;
	int rc;

	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setsigmask(&attr, mask);
	posix_spawn_file_actions_init(&fa);
	if (!o->no_output) {
		posix_spawn_file_actions_adddup2(&fa, cap->out.pipe[1], 1);
		posix_spawn_file_actions_adddup2(&fa, cap->err.pipe[1], 2);
	}
	rc = posix_spawnp(&pid, o->command[0], &fa, &attr, o->command, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return pid;
}

int
main(int argc, char *argv[])
{
	struct options o;
	struct ev_bus_opts bo = { 0 };
	struct ev_err err = { 0 };
	struct ev_bus *bus;
	struct capture cap;
	sigset_t old;
	char *payload;
	int64_t started;
	int sigfd, status = 0, spawn_errno = 0, exitcode;
	pid_t pid;

	parse_options(argc, argv, &o);
	bo.location = o.spool;
	bo.sync = 1;
	bo.create = 1;
	if (ev_bus_open(&bo, &bus, &err))
		tool_die(&err);
	if (o.started) {
		if (run_payload(o.command, NULL, 0, 0, 0, ev_bus_payload_max(bus),
		    &payload, &err))
			tool_die(&err);
		publish(bus, &o, "started", payload);
		free(payload);
	}
	sigfd = tool_signalfd(&old);
	if (capture_init(&cap, o.no_output) < 0)
		tool_exit(EX_OSERR, "pipe: %s", strerror(errno));
	started = ev_monotonic_ms();
	pid = start(&o, &cap, &old);
	if (pid < 0) {
		spawn_errno = errno;
		tool_warn("cannot run '%s': %s", o.command[0], strerror(errno));
		/* As a shell reports it: 127 not found, 126 not runnable. */
		status = (spawn_errno == ENOENT ? 127 : 126) << 8;
	} else {
		capture_run(&cap, sigfd, pid, &status);
	}
	/* Cut to fit payload_max if need be: the outcome is never lost for
	 * what the command printed. */
	if (run_payload(o.command, &cap, status, ev_monotonic_ms() - started,
	    spawn_errno, ev_bus_payload_max(bus), &payload, &err))
		tool_die(&err);
	publish(bus, &o, status == 0 ? "completed" : "failed", payload);
	free(payload);
	capture_free(&cap);
	tool_maintain(bus);
	ev_bus_close(bus);
	exitcode = WIFEXITED(status) ? WEXITSTATUS(status) :
	    128 + WTERMSIG(status);
	return exitcode;
}
