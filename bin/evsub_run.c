/*
 * evsub_run.c: starting handler processes.
 *
 * The command runs directly, through posix_spawnp(3), never through a shell:
 * payload text reaches it only on stdin, never in its arguments. Its stdin
 * is the event file itself (the descriptor evsub holds, at offset 0), or
 * with --payload a memfd holding the payload alone. It gets its own process
 * group, so a timeout stops the whole of `sh -c '...'` and not just the
 * shell; and a clean signal state (evsub blocks and ignores some signals
 * for itself, and ignored dispositions survive exec).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evsub.h"
#include "tool.h"

extern char **environ;

/* The inherited environment without any EV_* a parent handler left there:
 * a handler sees exactly the EV_ variables of its own event. */
static char **base_env;
static size_t base_count;
static const char *spool_dir;

/* Is the command runnable: a path that is executable, or a name found in
 * $PATH? Checked once at start, so a typo fails at once and clearly. */
static int
command_runnable(const char *cmd)
{
	const char *path = getenv("PATH"), *p, *end;
	char buf[4096];
	struct stat st;

	if (strchr(cmd, '/') != NULL) {
		if (stat(cmd, &st) < 0)
			return -1;
		/* Say why, as execve(2) would: errno was not set here. */
		if (!S_ISREG(st.st_mode)) {
			errno = EACCES;
			return -1;
		}
		return access(cmd, X_OK);
	}
	for (p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p; p = end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		/* An empty element of PATH means the current directory. */
		snprintf(buf, sizeof buf, "%.*s/%s", end == p ? 1 : (int)(end - p),
		    end == p ? "." : p, cmd);
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(buf, X_OK) == 0)
			return 0;
		if (*end == ':')
			end++;
	}
	errno = ENOENT;
	return -1;
}

int
run_prepare(const struct evsub_opts *o, const char *spool)
{
	size_t n = 0, i;

	if (command_runnable(o->command[0]) < 0)
		tool_exit(EX_USAGE, "cannot run '%s': %s", o->command[0],
		    errno == ENOENT ? "command not found" : strerror(errno));
	while (environ[n] != NULL)
		n++;
	if ((base_env = calloc(n + 16, sizeof *base_env)) == NULL)
		tool_exit(EX_OSERR, "out of memory");
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "EV_", 3) != 0)
			base_env[base_count++] = environ[i];
	spool_dir = spool;
	return 0;
}

/* A memfd holding the payload alone, for --payload. */
static int
payload_fd(const struct event_info *ei)
{
	int fd = memfd_create("evsub-payload", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write(fd, ei->text + ei->payload_off, ei->payload_len) !=
	    (ssize_t)ei->payload_len || write(fd, "\n", 1) != 1 ||
	    lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
run_start(const struct evsub_opts *o, struct job *job,
    const struct event_info *ei, const char *subname, char *why,
    size_t whylen)
{
	char e_id[EV_ID_MAX + 8], e_type[EV_TYPE_MAX + 16], e_time[80];
	char e_attempt[32], e_sub[EV_NAME_MAX + 32], *e_source = NULL;
	char *e_corr = NULL, *e_spool = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	size_t n = base_count;
	int in, rc;

	snprintf(e_id, sizeof e_id, "EV_ID=%s", ei->id);
	snprintf(e_type, sizeof e_type, "EV_TYPE=%s", ei->type);
	snprintf(e_time, sizeof e_time, "EV_TIME=%s", ei->time);
	snprintf(e_attempt, sizeof e_attempt, "EV_ATTEMPT=%d", job->d.attempt);
	snprintf(e_sub, sizeof e_sub, "EV_SUBSCRIPTION=%s", subname);
	if (asprintf(&e_source, "EV_SOURCE=%s", ei->source) < 0 ||
	    asprintf(&e_corr, "EV_CORRELATION=%s", ei->correlation) < 0 ||
	    asprintf(&e_spool, "EV_SPOOL=%s", spool_dir) < 0)
		tool_exit(EX_OSERR, "out of memory");
	base_env[n++] = e_id;
	base_env[n++] = e_type;
	base_env[n++] = e_time;
	base_env[n++] = e_source;
	base_env[n++] = e_attempt;
	base_env[n++] = e_sub;
	base_env[n++] = e_spool;
	base_env[n++] = e_corr;
	base_env[n] = NULL;

	in = o->payload_only ? payload_fd(ei) : job->d.fd;
	if (in < 0) {
		snprintf(why, whylen, "cannot prepare stdin: %s", strerror(errno));
		rc = -1;
		goto done;
	}
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGCHLD);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGHUP);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	rc = posix_spawnp(&job->pid, o->command[0], &fa, &attr, o->command,
	    base_env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (in != job->d.fd)
		close(in);
	if (rc != 0) {
		job->pid = 0;
		snprintf(why, whylen, "cannot run '%s': %s", o->command[0],
		    strerror(rc));
		rc = -1;
	}
done:
	free(e_source);
	free(e_corr);
	free(e_spool);
	return rc;
}
