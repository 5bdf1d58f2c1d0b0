/*
 * lines.c: a line reader over read(2); see lines.h.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lines.h"

void
lines_init(struct lines *lr, int fd, size_t max)
{
	memset(lr, 0, sizeof *lr);
	lr->fd = fd;
	lr->max = max;
}

int
lines_next(struct lines *lr, char **line, size_t *len)
{
	char *nl, *bigger;
	ssize_t n;

	for (;;) {
		nl = lr->len > lr->start ? memchr(lr->buf + lr->start, '\n',
		    lr->len - lr->start) : NULL;
		if (lr->skipping && (nl != NULL || lr->eof)) {
			lr->start = nl ? (size_t)(nl - lr->buf) + 1 : lr->len;
			lr->skipping = 0;
			*line = lr->buf + lr->start;
			*len = 0;
			return 2;
		}
		if (lr->skipping) {
			lr->start = lr->len;
		} else if (nl == NULL && lr->len - lr->start > lr->max) {
			lr->skipping = 1;
			lr->start = lr->len;
		} else if (nl != NULL || (lr->eof && lr->len > lr->start)) {
			*line = lr->buf + lr->start;
			*len = nl ? (size_t)(nl - *line) : lr->len - lr->start;
			(*line)[*len] = '\0';   /* the newline, or spare room */
			lr->start += *len + (nl ? 1 : 0);
			return 1;
		}
		if (lr->eof)
			return 0;
		if (lr->start > 0) {
			memmove(lr->buf, lr->buf + lr->start, lr->len - lr->start);
			lr->len -= lr->start;
			lr->start = 0;
		}
		if (lr->cap - lr->len < 4096) {
			size_t cap = lr->cap ? lr->cap * 2 : 65536;

			if ((bigger = realloc(lr->buf, cap)) == NULL)
				return -1;
			lr->buf = bigger;
			lr->cap = cap;
		}
		/* Keep one byte free for the NUL after a last line. */
		n = read(lr->fd, lr->buf + lr->len, lr->cap - lr->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			lr->eof = 1;
		lr->len += (size_t)n;
	}
}

int
lines_pending(const struct lines *lr)
{
	struct pollfd pfd = { .fd = lr->fd, .events = POLLIN };

	if (lr->len > lr->start || lr->eof)
		return 1;
	return poll(&pfd, 1, 0) > 0;
}

void
lines_free(struct lines *lr)
{
	free(lr->buf);
	lr->buf = NULL;
}
