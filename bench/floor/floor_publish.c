/*
 * floor_publish -- the syscall floor for publishing events into a spool.
 *
 * Per event: open(tmp/NAME, O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0644), write
 * the payload, fsync(file), close, rename tmp/NAME -> new/NAME, fsync(new/).
 * That is the least an atomic (complete before it is visible) and durable
 * (data and name on disk before returning) publish can do, so `evpub` is
 * judged as a ratio to it.
 *
 *   default  N durable publishes, one by one      floor for evpub, per event
 *   -S       the same without the two fsyncs      atomic but not durable
 *   -g       N create+write+rename, then ONE      floor for `evpub -l`
 *            syncfs() at the end (group commit)
 *   -1       exactly one publish, then exit       the driver times many runs
 *                                                 of this vs. of one `evpub`
 *
 * usage: floor_publish [-d DIR] [-n N] [-b BYTES] [-S] [-g] [-1] [-K]
 * Works in DIR/tmp and DIR/new (created if missing; removed at exit only if
 * this run created them, so for -1 runs create them once beforehand).  The
 * published files are unlinked at exit (untimed) unless -K keeps them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "floor_publish";

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

/* mkdir DIR/SUB if missing, open it; *made tells whether we created it */
static int subdir(const char *dir, const char *sub, char *path, size_t len, int *made)
{
	snprintf(path, len, "%s/%s", dir, sub);
	*made = mkdir(path, 0755) == 0;
	if (!*made && errno != EEXIST)
		die("mkdir", path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("open", path);
	return fd;
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	long n = 1000, bytes = 200;
	int nosync = 0, group = 0, oneshot = 0, keep = 0, c;

	while ((c = getopt(argc, argv, "d:n:b:Sg1K")) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'n': n = num(optarg, c, 1); break;
		case 'b': bytes = num(optarg, c, 0); break;
		case 'S': nosync = 1; break;
		case 'g': group = 1; break;
		case '1': oneshot = 1; break;
		case 'K': keep = 1; break;
		default:
			fprintf(stderr, "usage: %s [-d DIR] [-n N] [-b BYTES] [-S] [-g] [-1] [-K]\n", prog);
			return 2;
		}
	}
	if (oneshot)
		n = 1;

	char *buf = malloc(bytes + 1);
	if (!buf)
		die("malloc", "payload");
	memset(buf, 'x', bytes);

	char tmppath[4096], newpath[4096], name[64];
	int madetmp, madenew;
	int tmpfd = subdir(dir, "tmp", tmppath, sizeof tmppath, &madetmp);
	int newfd = subdir(dir, "new", newpath, sizeof newpath, &madenew);
	long pid = getpid();
	int fsync_each = !nosync && !group;

	double t0 = now_us();
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%ld.%ld", pid, i);
		int fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("open", name);
		ssize_t w = write(fd, buf, bytes);
		if (w < 0)
			die("write", name);
		if (w != bytes) {
			fprintf(stderr, "%s: write(%s): short write %zd of %ld\n", prog, name, w, bytes);
			return 1;
		}
		if (fsync_each && fsync(fd))
			die("fsync", name);
		if (close(fd))
			die("close", name);
		if (renameat(tmpfd, name, newfd, name))
			die("rename", name);
		if (fsync_each && fsync(newfd))
			die("fsync", newpath);
	}
	if (group && !nosync && syncfs(newfd))
		die("syncfs", newpath);
	double us = now_us() - t0;

	const char *mode = group ? (nosync ? "group_nosync" : "group") : nosync ? "nosync" : "durable";
	if (printf("{\"floor\":\"publish_%s%s\",\"events\":%ld,\"bytes\":%ld,"
		   "\"us_per_event\":%.1f,\"events_per_s\":%.0f}\n",
		   mode, oneshot ? "_oneshot" : "", n, bytes, us / n, n / us * 1e6) < 0
	    || fflush(stdout))
		die("write", "stdout");

	/* cleanup, untimed */
	for (long i = 0; i < n && !keep; i++) {
		snprintf(name, sizeof name, "%ld.%ld", pid, i);
		if (unlinkat(newfd, name, 0))
			die("unlink", name);
	}
	if (close(tmpfd))
		die("close", tmppath);
	if (close(newfd))
		die("close", newpath);
	if (madetmp && rmdir(tmppath))
		die("rmdir", tmppath);
	if (madenew && !keep && rmdir(newpath))
		die("rmdir", newpath);
	free(buf);
	return 0;
}
