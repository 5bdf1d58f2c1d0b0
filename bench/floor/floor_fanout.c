/*
 * floor_fanout -- the syscall floor for publishing one event to K subscribers.
 *
 * Per event: create+write+close tmp/NAME (no fsync), link() it into K queue
 * directories q0..qK-1, rename tmp/NAME -> log/NAME, then one syncfs() for
 * the whole filesystem (-S: no sync at all).  A hard link per queue is the
 * cheapest way to give every subscription its own copy of the event, and one
 * syncfs() is the cheapest known way to make all K+1 names durable together
 * (instead of one directory fsync per queue), so evspool's fan-out publish
 * is judged as a ratio to it, at the same K.
 *
 * usage: floor_fanout [-d DIR] [-k K] [-n N] [-b BYTES] [-S]
 * Works in DIR/tmp, DIR/log and DIR/q0..qK-1 (created if missing, removed at
 * exit if this run created them); all files it made are unlinked at exit.
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

static const char *prog = "floor_fanout";

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

struct sub { char path[4096]; int fd, made; };

static void subdir(const char *dir, const char *sub, struct sub *s)
{
	snprintf(s->path, sizeof s->path, "%s/%s", dir, sub);
	s->made = mkdir(s->path, 0755) == 0;
	if (!s->made && errno != EEXIST)
		die("mkdir", s->path);
	s->fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->fd < 0)
		die("open", s->path);
}

static void rmsub(struct sub *s)
{
	if (close(s->fd))
		die("close", s->path);
	if (s->made && rmdir(s->path))
		die("rmdir", s->path);
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	long n = 1000, k = 1, bytes = 200;
	int nosync = 0, c;

	while ((c = getopt(argc, argv, "d:k:n:b:S")) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'k': k = num(optarg, c, 1); break;
		case 'n': n = num(optarg, c, 1); break;
		case 'b': bytes = num(optarg, c, 0); break;
		case 'S': nosync = 1; break;
		default:
			fprintf(stderr, "usage: %s [-d DIR] [-k K] [-n N] [-b BYTES] [-S]\n", prog);
			return 2;
		}
	}

	char *buf = malloc(bytes + 1);
	struct sub tmp, log, *q = calloc(k, sizeof *q);
	if (!buf || !q)
		die("malloc", "buffers");
	memset(buf, 'x', bytes);
	subdir(dir, "tmp", &tmp);
	subdir(dir, "log", &log);
	for (long j = 0; j < k; j++) {
		char qn[32];
		snprintf(qn, sizeof qn, "q%ld", j);
		subdir(dir, qn, &q[j]);
	}

	char name[64];
	long pid = getpid();
	double t0 = now_us();
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%ld.%ld", pid, i);
		int fd = openat(tmp.fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("open", name);
		ssize_t w = write(fd, buf, bytes);
		if (w < 0)
			die("write", name);
		if (w != bytes) {
			fprintf(stderr, "%s: write(%s): short write %zd of %ld\n", prog, name, w, bytes);
			return 1;
		}
		if (close(fd))
			die("close", name);
		for (long j = 0; j < k; j++)
			if (linkat(tmp.fd, name, q[j].fd, name, 0))
				die("link", q[j].path);
		if (renameat(tmp.fd, name, log.fd, name))
			die("rename", name);
		if (!nosync && syncfs(log.fd))
			die("syncfs", log.path);
	}
	double us = now_us() - t0;

	if (printf("{\"floor\":\"fanout_%s\",\"k\":%ld,\"events\":%ld,\"bytes\":%ld,"
		   "\"us_per_event\":%.1f,\"events_per_s\":%.0f}\n",
		   nosync ? "nosync" : "syncfs", k, n, bytes, us / n, n / us * 1e6) < 0
	    || fflush(stdout))
		die("write", "stdout");

	/* cleanup, untimed */
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%ld.%ld", pid, i);
		if (unlinkat(log.fd, name, 0))
			die("unlink", log.path);
		for (long j = 0; j < k; j++)
			if (unlinkat(q[j].fd, name, 0))
				die("unlink", q[j].path);
	}
	rmsub(&tmp);
	rmsub(&log);
	for (long j = 0; j < k; j++)
		rmsub(&q[j]);
	free(q);
	free(buf);
	return 0;
}
