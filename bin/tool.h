/*
 * tool.h: what every evspool command shares: its name in messages, the one
 * way to report an error and exit, and --version.
 */
#ifndef EVSPOOL_TOOL_H
#define EVSPOOL_TOOL_H

#include <signal.h>

#include "evspool.h"

extern const char *tool_name;

/* Print "tool: message" for ERR and exit with its status. */
void tool_die(const struct ev_err *err) __attribute__((noreturn));
/* Print "tool: message" and exit with STATUS. */
void tool_exit(int status, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
/* Print "tool: message" and go on. */
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error from getopt: one line naming the option, then exit 64. */
void tool_bad_option(int opt, const char *arg, char *const argv[])
    __attribute__((noreturn));
void tool_version(void) __attribute__((noreturn));
/* Block SIGCHLD, SIGTERM, SIGINT and SIGHUP and return a signalfd for them
 * (exit 71 if that fails); the mask before is stored in *OLD if not NULL,
 * for children to get back. */
int tool_signalfd(sigset_t *old);
/* When the bus's housekeeping is due, run it in a detached child (its own
 * session, stdio on /dev/null, so no caller waits for it), after the tool
 * has done and reported its own work. */
void tool_maintain(struct ev_bus *bus);

#endif
