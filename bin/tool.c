/*
 * tool.c: messages and exits shared by the evspool commands. Every message
 * is one line on stderr, prefixed with the command's name; every exit
 * status comes from sysexits(3).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "tool.h"

void
tool_die(const struct ev_err *err)
{
	fprintf(stderr, "%s: %s\n", tool_name, err->msg);
	exit(err->status != 0 ? err->status : EX_SOFTWARE);
}

void
tool_exit(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

void
tool_warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
tool_bad_option(int opt, const char *arg, char *const argv[])
{
	const char *word = argv[optind - 1];

	if (opt == ':')
		tool_exit(EX_USAGE, "option '%s' needs a value (see %s --help)",
		    word, tool_name);
	if (arg != NULL)
		tool_exit(EX_USAGE, "bad value '%s' for option '%s'", arg, word);
	tool_exit(EX_USAGE, "unknown option '%s' (see %s --help)", word,
	    tool_name);
}

void
tool_version(void)
{
	printf("%s (evspool) %s\n", tool_name, ev_version());
	exit(0);
}

int
tool_signalfd(sigset_t *old)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* A parent may have left SIGCHLD ignored, which survives exec: then
	 * the kernel reaps children itself, no SIGCHLD reaches the signalfd
	 * and waitpid() never reports an exit, so we would wait forever. */
	signal(SIGCHLD, SIG_DFL);
	if (sigprocmask(SIG_BLOCK, &set, old) < 0 ||
	    (fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		tool_exit(EX_OSERR, "signalfd: %s", strerror(errno));
	return fd;
}

void
tool_maintain(struct ev_bus *bus)
{
	struct ev_bus_opts bo = { 0 };
	struct ev_err ignored;
	struct ev_bus *own;
	pid_t pid;
	int null;

	if (!ev_bus_maintenance_due(bus))
		return;
	fflush(NULL);
	if ((pid = fork()) != 0)
		return;   /* the parent goes on; a failed fork skips a turn */
	setsid();
	/* Inherited descriptors go: a subscription's lock among them must
	 * not outlive the evsub that holds it. The spool is opened again. */
	close_range(3, ~0U, 0);
	if ((null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	bo.location = ev_bus_location(bus);
	bo.sync = 1;
	if (ev_bus_open(&bo, &own, &ignored) == 0)
		ev_bus_maintain(own, &ignored);
	_exit(0);
}
