/*
 * floor_inotify -- the floor for waking a waiting consumer when an event lands.
 *
 * A forked child renames files tmp/I -> watch/I one at a time, storing its
 * CLOCK_MONOTONIC time just before each rename in shared memory, and sleeps
 * -p microseconds between sends so that each one is a separate wake-up.  The
 * parent blocks in read() on an inotify fd watching watch/ for IN_MOVED_TO
 * and, as soon as read() returns, takes the time: latency = wake - send
 * (the rename itself included).  A blocking read() on one inotify fd is the
 * least a sleeping `evsub`/`evrun` can do to notice a publish, so their
 * publish-to-handler latency is judged against these percentiles.
 *
 * usage: floor_inotify [-d DIR] [-n N] [-p USEC] [-o FILE]
 * -o FILE also writes every latency (µs, one per line) into FILE, for plots.
 * Works in DIR/tmp and DIR/watch (created if missing, removed at exit if
 * this run created them); all files it made are unlinked at exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "floor_inotify";

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

static int64_t now_ns(void)
{
	struct timespec t;
	if (clock_gettime(CLOCK_MONOTONIC, &t))
		die("clock_gettime", "CLOCK_MONOTONIC");
	return t.tv_sec * (int64_t)1000000000 + t.tv_nsec;
}

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

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* nearest-rank percentile of sorted v[0..n-1], in microseconds */
static double pct(const int64_t *v, long n, long permille)
{
	long i = (permille * n + 999) / 1000 - 1;
	return v[i < 0 ? 0 : i] / 1e3;
}

/* reap the sender; if it failed, the parent (maybe blocked in read) exits too */
static pid_t child;
static volatile sig_atomic_t child_ok;

static void on_chld(int sig)
{
	static const char msg[] = "floor_inotify: sender child failed\n";
	int st, e = errno;
	(void)sig;
	if (waitpid(child, &st, WNOHANG) == child) {
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			if (write(2, msg, sizeof msg - 1)) {}
			_exit(1);
		}
		child_ok = 1;
	}
	errno = e;
}

int main(int argc, char **argv)
{
	const char *dir = ".", *samples_path = NULL;
	long n = 2000, pause_us = 200;
	int c;

	while ((c = getopt(argc, argv, "d:n:p:o:")) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'n': n = num(optarg, c, 1); break;
		case 'p': pause_us = num(optarg, c, 0); break;
		case 'o': samples_path = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-d DIR] [-n N] [-p USEC] [-o FILE]\n", prog);
			return 2;
		}
	}

	char tmppath[4096], watchpath[4096], name[32];
	int madetmp, madewatch;
	int tmpfd = subdir(dir, "tmp", tmppath, sizeof tmppath, &madetmp);
	int watchfd = subdir(dir, "watch", watchpath, sizeof watchpath, &madewatch);
	long pid0 = getpid();

	/* untimed: the N files to send, and the shared send-time table */
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%ld.%ld", pid0, i);
		int fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("open", name);
		if (close(fd))
			die("close", name);
	}
	int64_t *sent = mmap(NULL, n * sizeof *sent, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int64_t *lat = malloc(n * sizeof *lat);
	char *seen = calloc(n, 1);
	if (sent == MAP_FAILED)
		die("mmap", "send times");
	if (!lat || !seen)
		die("malloc", "latencies");

	int ifd = inotify_init1(IN_CLOEXEC);
	if (ifd < 0)
		die("inotify_init1", "");
	if (inotify_add_watch(ifd, watchpath, IN_MOVED_TO | IN_ONLYDIR) < 0)
		die("inotify_add_watch", watchpath);

	struct sigaction sa = { .sa_handler = on_chld, .sa_flags = SA_RESTART };
	if (sigemptyset(&sa.sa_mask) || sigaction(SIGCHLD, &sa, NULL))
		die("sigaction", "SIGCHLD");

	child = fork();
	if (child < 0)
		die("fork", "");
	if (child == 0) {
		struct timespec gap = { pause_us / 1000000, pause_us % 1000000 * 1000 };
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof name, "%ld.%ld", pid0, i);
			__atomic_store_n(&sent[i], now_ns(), __ATOMIC_RELEASE);
			if (renameat(tmpfd, name, watchfd, name))
				die("rename", name);
			if (pause_us && nanosleep(&gap, NULL))
				die("nanosleep", "");
		}
		_exit(0);
	}

	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	long got = 0, wakeups = 0;
	while (got < n) {
		ssize_t r = read(ifd, buf, sizeof buf);
		int64_t t = now_ns();
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("read", "inotify");
		wakeups++;
		for (char *p = buf; p < buf + r;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				fprintf(stderr, "%s: inotify queue overflow\n", prog);
				return 1;
			}
			char *dot = ev->len ? strchr(ev->name, '.') : NULL;
			long i = dot ? strtol(dot + 1, NULL, 10) : -1;
			if (!(ev->mask & IN_MOVED_TO) || i < 0 || i >= n || seen[i])
				continue;
			seen[i] = 1;
			lat[got++] = t - __atomic_load_n(&sent[i], __ATOMIC_ACQUIRE);
		}
	}
	sigset_t chld;
	int st;
	if (sigemptyset(&chld) || sigaddset(&chld, SIGCHLD) || sigprocmask(SIG_BLOCK, &chld, NULL))
		die("sigprocmask", "SIGCHLD");
	if (!child_ok) {
		if (waitpid(child, &st, 0) != child)
			die("waitpid", "child");
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "%s: sender child failed (status %d)\n", prog, st);
			return 1;
		}
	}

	qsort(lat, n, sizeof *lat, cmp64);
	if (printf("{\"floor\":\"inotify_wakeup\",\"samples\":%ld,\"wakeups\":%ld,\"pause_us\":%ld,"
		   "\"p50_us\":%.1f,\"p95_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
		   n, wakeups, pause_us, pct(lat, n, 500), pct(lat, n, 950),
		   pct(lat, n, 990), lat[n - 1] / 1e3) < 0 || fflush(stdout))
		die("write", "stdout");

	if (samples_path) {
		FILE *f = fopen(samples_path, "w");
		if (!f)
			die("fopen", samples_path);
		for (long i = 0; i < n; i++)
			fprintf(f, "%.1f\n", lat[i] / 1e3);
		if (fclose(f))
			die("write", samples_path);
	}

	/* cleanup, untimed */
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%ld.%ld", pid0, i);
		if (unlinkat(watchfd, name, 0))
			die("unlink", name);
	}
	if (close(ifd))
		die("close", "inotify");
	if (close(tmpfd))
		die("close", tmppath);
	if (close(watchfd))
		die("close", watchpath);
	if (madetmp && rmdir(tmppath))
		die("rmdir", tmppath);
	if (madewatch && rmdir(watchpath))
		die("rmdir", watchpath);
	if (munmap(sent, n * sizeof *sent))
		die("munmap", "send times");
	free(lat);
	free(seen);
	return 0;
}
