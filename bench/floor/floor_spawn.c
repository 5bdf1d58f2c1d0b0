/*
 * floor_spawn -- the floor for running one handler process per event.
 *
 * N times: posix_spawn(CMD) (default /bin/true) with the event file as its
 * stdin (posix_spawn_file_actions_adddup2 from one open file), then waitpid.
 * posix_spawn (vfork-style clone + exec) is the cheapest way for a long-lived
 * process to start a handler and learn its exit status, so `evrun`'s per-event
 * overhead is judged as a ratio to it.  The file offset is rewound with
 * lseek() before each spawn (under 1 us) so that a CMD reading stdin sees the
 * payload every time.
 *
 * usage: floor_spawn [-d DIR] [-n N] [-b BYTES] [-c CMD]
 * The stdin file is DIR/floor_spawn.PID.in (BYTES long), unlinked as soon as
 * it is written (the open fd is what the children get).
 * CMD must exit 0; its stdout is /dev/null (set up once, untimed), its
 * stderr is ours.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "floor_spawn";

static void die(const char *call, const char *arg)
{
	fprintf(stderr, "%s: %s(%s): %s\n", prog, call, arg, strerror(errno));
	exit(1);
}

static long num(const char *s, int opt, long min)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min) {
		fprintf(stderr, "%s: bad value for -%c: %s\n", prog, opt, s);
		exit(2);
	}
	return v;
}

static double now_us(void)
{
	struct timespec t;
	if (clock_gettime(CLOCK_MONOTONIC, &t))
		die("clock_gettime", "CLOCK_MONOTONIC");
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* CMD as a JSON string: escape quotes, backslashes and control characters */
static int json_str(const char *s)
{
	if (putchar('"') == EOF)
		return -1;
	for (; *s; s++) {
		unsigned char ch = *s;
		int r;
		if (ch == '"' || ch == '\\')
			r = printf("\\%c", ch);
		else if (ch < 0x20)
			r = printf("\\u%04x", ch);
		else
			r = putchar(ch);
		if (r < 0)
			return -1;
	}
	return putchar('"') == EOF ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	char *cmd = "/bin/true";
	long n = 2000, bytes = 200;
	int c, rc;

	while ((c = getopt(argc, argv, "d:n:b:c:")) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'n': n = num(optarg, c, 1); break;
		case 'b': bytes = num(optarg, c, 0); break;
		case 'c': cmd = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-d DIR] [-n N] [-b BYTES] [-c CMD]\n", prog);
			return 2;
		}
	}

	/* untimed: the event file that becomes the handler's stdin */
	char path[4096];
	char *buf = malloc(bytes + 1);
	if (!buf)
		die("malloc", "payload");
	memset(buf, 'x', bytes);
	snprintf(path, sizeof path, "%s/floor_spawn.%ld.in", dir, (long)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open", path);
	ssize_t w = write(fd, buf, bytes);
	if (w < 0)
		die("write", path);
	if (w != bytes) {
		fprintf(stderr, "%s: write(%s): short write %zd of %ld\n", prog, path, w, bytes);
		return 1;
	}
	if (unlink(path))	/* the open fd is all we need; nothing left behind */
		die("unlink", path);

	posix_spawn_file_actions_t fa;
	if ((rc = posix_spawn_file_actions_init(&fa)) ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, fd, 0))) {
		errno = rc;
		die("posix_spawn_file_actions", path);
	}
	char *args[] = { cmd, NULL };

	/* untimed: the children's stdout is /dev/null, so ours stays one JSON line */
	int out = fcntl(1, F_DUPFD_CLOEXEC, 3);
	if (out < 0)
		die("fcntl", "stdout");
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0)
		die("open", "/dev/null");
	if (dup2(null, 1) < 0)
		die("dup2", "/dev/null");
	if (close(null))
		die("close", "/dev/null");

	double t0 = now_us();
	for (long i = 0; i < n; i++) {
		pid_t pid;
		int st;
		if (lseek(fd, 0, SEEK_SET) < 0)
			die("lseek", path);
		if ((rc = posix_spawn(&pid, cmd, &fa, NULL, args, environ))) {
			errno = rc;
			die("posix_spawn", cmd);
		}
		if (waitpid(pid, &st, 0) != pid)
			die("waitpid", cmd);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "%s: %s: exited with wait status %d\n", prog, cmd, st);
			return 1;
		}
	}
	double us = now_us() - t0;
	if (dup2(out, 1) < 0)
		die("dup2", "stdout");
	if (close(out))
		die("close", "stdout");

	if (printf("{\"floor\":\"spawn\",\"cmd\":") < 0 || json_str(cmd)
	    || printf(",\"spawns\":%ld,\"us_per_spawn\":%.1f,\"spawns_per_s\":%.0f}\n",
		      n, us / n, n / us * 1e6) < 0 || fflush(stdout))
		die("write", "stdout");

	if ((rc = posix_spawn_file_actions_destroy(&fa))) {
		errno = rc;
		die("posix_spawn_file_actions_destroy", path);
	}
	if (close(fd))
		die("close", path);
	free(buf);
	return 0;
}
