/*
 * evctl: see and repair the spool.
 *
 *   evctl [-s DIR] COMMAND [ARGS]
 *
 * status, ls, show, dead, retry, purge, replay, trace, graph, gc, rm, init:
 * one file each (evctl_*.c). Human output is an aligned table; --json gives
 * the stable form scripts should read, documented in evctl(1).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evctl.h"
#include "tool.h"

const char *tool_name = "evctl";

static const struct {
	const char *name;
	ctl_cmd fn;
} commands[] = {
	{ "status", ctl_status }, { "ls", ctl_ls }, { "show", ctl_show },
	{ "dead", ctl_dead }, { "retry", ctl_retry }, { "purge", ctl_purge },
	{ "replay", ctl_replay }, { "trace", ctl_trace }, { "graph", ctl_graph },
	{ "gc", ctl_gc }, { "rm", ctl_rm },
};

static void
usage(void)
{
	printf("usage: evctl [-s DIR] COMMAND [ARGS]\n"
	    "\n"
	    "  status [--json]                    subscriptions and their queues\n"
	    "  ls [PATTERN] [--since DUR] [--json]  events in the log, newest last\n"
	    "  show ID                            one event, and where it stands\n"
	    "  dead NAME [--json]                 dead letters of a subscription\n"
	    "  retry NAME [ID...]                 put dead letters back in the queue\n"
	    "  purge NAME [ID...]                 drop dead letters\n"
	    "  replay NAME [--since DUR | --from ID] [-e PATTERN]\n"
	    "                                     queue logged events again\n"
	    "  trace ID [--json]                  the chain an event belongs to\n"
	    "  graph                              Graphviz DOT of the flows in the log\n"
	    "  gc                                 apply retention now\n"
	    "  rm NAME                            delete a durable subscription\n"
	    "  init [--group GROUP]               create a spool (shared by GROUP)\n"
	    "\n"
	    "  -s, --spool DIR   spool directory (see evspool(7))\n"
	    "  -h, --help        this text\n"
	    "  -V, --version     the version\n");
	exit(0);
}

static int
init(struct ctl *ctl, int argc, char **argv)
{
	struct ev_err err = { 0 };
	struct ctl_args a;
	/* Static: ctl->spool points here after init() returns. */
	static char path[4096];

	ctl_parse(ctl, &argc, &argv, "group", &a);
	if (argc != 0)
		tool_exit(EX_USAGE, "init takes no arguments but --group");
	if (ctl->spool == NULL) {
		if (ev_default_spool(path, sizeof path, &err))
			tool_die(&err);
		ctl->spool = path;
	}
	if (ev_spool_init(ctl->spool, a.group, &err))
		tool_die(&err);
	printf("spool %s ready%s%s\n", ctl->spool, a.group ? ", shared by group " :
	    "", a.group ? a.group : "");
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "spool", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ev_bus_opts bo = { 0 };
	struct ev_err err = { 0 };
	struct ctl ctl = { 0 };
	size_t i;
	int opt, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:s:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': ctl.spool = optarg; break;
		case 'h': usage(); break;
		case 'V': tool_version(); break;
		default: tool_bad_option(opt, NULL, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		tool_exit(EX_USAGE, "no command given (see evctl --help)");
	if (strcmp(argv[0], "init") == 0)
		return init(&ctl, argc - 1, argv + 1);
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			break;
	if (i == sizeof commands / sizeof commands[0])
		tool_exit(EX_USAGE, "unknown command '%s' (see evctl --help)",
		    argv[0]);
	bo.location = ctl.spool;
	bo.sync = 1;
	if (ev_bus_open(&bo, &ctl.bus, &err))
		tool_die(&err);
	status = commands[i].fn(&ctl, argc - 1, argv + 1);
	ev_bus_close(ctl.bus);
	if (fflush(stdout) == EOF)
		tool_exit(EX_IOERR, "writing output failed");
	return status;
}
