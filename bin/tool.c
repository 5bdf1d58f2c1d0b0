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

/* Print MSG as one line: messages quote what the user gave (a type, an
 * id, a name), and a newline or a terminal escape in it must not split
 * the line or reach the terminal, so control bytes are written as \xHH. */
static void
put_line(const char *msg)
{
	const unsigned char *p;

	fprintf(stderr, "%s: ", tool_name);
	for (p = (const unsigned char *)msg; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(stderr, "\\x%02x", *p);
		else
			fputc(*p, stderr);
	}
	fputc('\n', stderr);
}

static void
vput_line(const char *fmt, va_list ap)
{
	char buf[4096];

	vsnprintf(buf, sizeof buf, fmt, ap);
	put_line(buf);
}

void
tool_die(const struct ev_err *err)
{
	put_line(err->msg);
	exit(err->status != 0 ? err->status : EX_SOFTWARE);
}

void
tool_exit(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vput_line(fmt, ap);
	va_end(ap);
	exit(status);
}

void
tool_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vput_line(fmt, ap);
	va_end(ap);
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
	sigset_t none;
	pid_t pid;
	int null, fd;

	if (!ev_bus_maintenance_due(bus))
		return;
	fflush(NULL);
	if ((pid = fork()) != 0)
		return;   /* the parent goes on; a failed fork skips a turn */
	setsid();
	/* The parent's blocked and ignored signals are not the child's: it
	 * must stop on SIGTERM like anything else. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* Inherited descriptors go: a subscription's lock among them must
	 * not outlive the evsub that holds it. The spool is opened again. */
	if (close_range(3, ~0U, 0) < 0)
		for (fd = 3; fd < 1024; fd++)
			close(fd);
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
