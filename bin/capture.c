/*
 * capture.c: copying a command's stdout and stderr through evrun while
 * keeping what the event needs. One poll(2) loop over the two pipes and a
 * signalfd; the command's exit is noticed by SIGCHLD, after which the pipes
 * are drained of what is already there but not waited on, so a daemon the
 * command left behind holding the pipe does not keep evrun alive.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "evspool.h"

static int
stream_init(struct stream *s, int passthrough, size_t max, int keep_tail,
    int disabled)
{
	memset(s, 0, sizeof *s);
	s->pipe[0] = s->pipe[1] = -1;
	s->passthrough = passthrough;
	s->max = max;
	s->keep_tail = keep_tail;
	if (disabled)
		return 0;
	if ((s->buf = malloc(max)) == NULL ||
	    pipe2(s->pipe, O_CLOEXEC) < 0)
		return -1;
	return fcntl(s->pipe[0], F_SETFL, O_NONBLOCK);
}

int
capture_init(struct capture *cap, int disabled)
{
	if (stream_init(&cap->out, 1, CAPTURE_OUT_MAX, 0, disabled) < 0 ||
	    stream_init(&cap->err, 2, CAPTURE_ERR_MAX, 1, disabled) < 0)
		return -1;
	return 0;
}

static void
keep(struct stream *s, const char *p, size_t n)
{
	size_t room, i;

	if (!s->keep_tail) {
		room = s->max - s->len;
		if (n > room) {
			s->truncated = 1;
			n = room;
		}
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		return;
	}
	for (i = 0; i < n; i++) {
		if (s->len < s->max) {
			s->buf[(s->head + s->len++) % s->max] = p[i];
		} else {
			s->buf[s->head] = p[i];
			s->head = (s->head + 1) % s->max;
			s->truncated = 1;
		}
	}
}

/* Read what is there; returns 0 at end of file or on an error. */
static int
pump(struct stream *s)
{
	char buf[16384];
	ssize_t n;

	for (;;) {
		n = read(s->pipe[0], buf, sizeof buf);
		if (n > 0) {
			/* The passthrough is best effort: a closed stdout
			 * must not stop the command's output from being kept. */
			if (ev_writeall(s->passthrough, buf, (size_t)n) < 0)
				s->passthrough = -1;
			keep(s, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
}

void
capture_run(struct capture *cap, int sigfd, pid_t pid, int *status)
{
	struct stream *streams[2] = { &cap->out, &cap->err };
	struct signalfd_siginfo si;
	struct pollfd pfd[3];
	int open_pipes = 0, exited = 0, i, n;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < 2; i++) {
		if (streams[i]->pipe[1] >= 0) {
			close(streams[i]->pipe[1]);
			streams[i]->pipe[1] = -1;
			open_pipes++;
		}
	}
	while (!exited || open_pipes > 0) {
		pfd[0].fd = sigfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < 2; i++) {
			pfd[i + 1].fd = streams[i]->pipe[0];
			pfd[i + 1].events = POLLIN;
		}
		n = poll(pfd, 3, exited ? 0 : -1);
		if (n < 0 && errno != EINTR)
			break;
		for (i = 0; i < 2; i++) {
			if (streams[i]->pipe[0] < 0 || !(pfd[i + 1].revents ||
			    exited))
				continue;
			if (!pump(streams[i]) || exited) {
				close(streams[i]->pipe[0]);
				streams[i]->pipe[0] = -1;
				open_pipes--;
			}
		}
		while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
			/* Once reaped, PID may already name another process. */
			if (si.ssi_signo != SIGCHLD && !exited)
				kill(pid, (int)si.ssi_signo);
		}
		if (!exited && waitpid(pid, status, WNOHANG) == pid)
			exited = 1;
	}
	if (!exited)
		waitpid(pid, status, 0);
}

char *
capture_text(const struct stream *s, size_t *len)
{
	char *text = malloc(s->len + 1);
	size_t i;

	if (text == NULL)
		return NULL;
	for (i = 0; i < s->len; i++)
		text[i] = s->buf[s->keep_tail ? (s->head + i) % s->max : i];
	text[s->len] = '\0';
	*len = s->len;
	return text;
}

void
capture_free(struct capture *cap)
{
	struct stream *streams[2] = { &cap->out, &cap->err };
	int i;

	for (i = 0; i < 2; i++) {
		if (streams[i]->pipe[0] >= 0)
			close(streams[i]->pipe[0]);
		if (streams[i]->pipe[1] >= 0)
			close(streams[i]->pipe[1]);
		free(streams[i]->buf);
	}
}
