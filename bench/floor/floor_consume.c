/*
 * floor_consume -- the syscall floor for draining a queue directory.
 *
 * Untimed: N files of BYTES bytes are written into DIR/queue, then one
 * syncfs() puts them on disk, as a durable publisher would have left them
 * (-S skips it: the files stay dirty in the page cache, which makes unlink
 * cheaper on some disks).  Timed: opendir + readdir the queue, and per entry
 * open + read + close + unlink.  That is the least a consumer can do to find,
 * read and acknowledge each event, so `evsub`/`evrun` draining a backlog are
 * judged as a ratio to it.
 *
 * -L: each file is also hard-linked into DIR/log (untimed), as every queued
 * event of a spool is also in log/, so the timed unlink only drops a name and
 * frees nothing.  Without -L the unlink frees the inode and its data block,
 * which on a filesystem mounted with `discard` waits for the device to
 * discard the block (milliseconds on some virtual disks) -- a cost evspool's
 * consumers do not pay (the log's clean-up does, later).  -K (with -L) leaves
 * DIR/log and its files for the caller to remove.
 *
 * usage: floor_consume [-d DIR] [-n N] [-b BYTES] [-S] [-L [-K]]
 * DIR/queue (and with -L DIR/log) must not exist yet (every entry in it is
 * consumed, i.e. deleted); it is removed at exit.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "floor_consume";

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

int main(int argc, char **argv)
{
	const char *dir = ".";
	long n = 10000, bytes = 200;
	int nosync = 0, keeplog = 0, keep = 0, c;

	while ((c = getopt(argc, argv, "d:n:b:SLK")) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'n': n = num(optarg, c, 1); break;
		case 'b': bytes = num(optarg, c, 0); break;
		case 'S': nosync = 1; break;
		case 'L': keeplog = 1; break;
		case 'K': keep = 1; break;
		default:
			fprintf(stderr, "usage: %s [-d DIR] [-n N] [-b BYTES] [-S] [-L [-K]]\n", prog);
			return 2;
		}
	}

	/* read buffer larger than the file, so one read() returns it all */
	size_t bufsize = bytes < 4096 ? 4096 : bytes + 1;
	char *buf = malloc(bufsize);
	char path[4096], name[32];
	if (!buf)
		die("malloc", "buffer");
	memset(buf, 'x', bufsize);

	/* untimed: fill the queue */
	snprintf(path, sizeof path, "%s/queue", dir);
	if (mkdir(path, 0755))
		die("mkdir", path);
	int qfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (qfd < 0)
		die("open", path);
	char logpath[4096];
	int lfd = -1;
	if (keeplog) {
		snprintf(logpath, sizeof logpath, "%s/log", dir);
		if (mkdir(logpath, 0755))
			die("mkdir", logpath);
		lfd = open(logpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lfd < 0)
			die("open", logpath);
	}
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%ld", i);
		int fd = openat(qfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
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
		if (keeplog && linkat(qfd, name, lfd, name, 0))
			die("link", name);
	}
	if (!nosync && syncfs(qfd))
		die("syncfs", path);

	/* timed: drain it */
	long done = 0;
	double t0 = now_us();
	DIR *d = opendir(path);
	if (!d)
		die("opendir", path);
	int dfd = dirfd(d);
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (!e) {
			if (errno)
				die("readdir", path);
			break;
		}
		if (e->d_name[0] == '.')
			continue;
		int fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", e->d_name);
		ssize_t r = read(fd, buf, bufsize);
		if (r < 0)
			die("read", e->d_name);
		if (r != bytes) {
			fprintf(stderr, "%s: read(%s): got %zd bytes, expected %ld\n", prog, e->d_name, r, bytes);
			return 1;
		}
		if (close(fd))
			die("close", e->d_name);
		if (unlinkat(dfd, e->d_name, 0))
			die("unlink", e->d_name);
		done++;
	}
	if (closedir(d))
		die("closedir", path);
	double us = now_us() - t0;

	if (done != n) {
		fprintf(stderr, "%s: consumed %ld entries, expected %ld\n", prog, done, n);
		return 1;
	}
	if (printf("{\"floor\":\"consume%s%s\",\"events\":%ld,\"bytes\":%ld,"
		   "\"us_per_event\":%.1f,\"events_per_s\":%.0f}\n",
		   keeplog ? "_linked" : "", nosync ? "_unsynced" : "", n, bytes, us / n, n / us * 1e6) < 0
	    || fflush(stdout))
		die("write", "stdout");

	if (close(qfd))
		die("close", path);
	if (rmdir(path))
		die("rmdir", path);
	if (keeplog && !keep) {
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof name, "%ld", i);
			if (unlinkat(lfd, name, 0))
				die("unlink", name);
		}
		if (rmdir(logpath))
			die("rmdir", logpath);
	}
	if (lfd >= 0 && close(lfd))
		die("close", logpath);
	free(buf);
	return 0;
}
