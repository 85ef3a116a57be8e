// logreader: the consumer of fugue's stdout and stderr in the benchmark, the
// part a deployment gives to journald or a container runtime.
//
// Like containerd's shim (which gives a container FIFOs for stdout and stderr)
// or conmon (pipes), it is a separate process that reads both streams as they
// come and keeps nothing: here, it counts lines and bytes. It creates the two
// FIFOs itself, opens them before the server does (so the server's open never
// waits), and reads whatever is there each time poll() says so, 64 KiB at a
// time: the server's writes never wait on a slow consumer unless the machine
// is saturated, as with a healthy journald.
//
// Usage: logreader DIR
//   creates DIR/stdout and DIR/stderr (FIFOs, 0600), prints "READY", then reads
//   them until both reach end of file (the server exited).
// Requests, one per line on stdin (answered on stdout, in order):
//   c   ->  "COUNT <stdout lines> <stdout bytes> <stderr lines> <stderr bytes>"
//   t   ->  "TAIL <n>" and then the last n (<= 8192) bytes read, both streams
//           in arrival order: what the harness shows when a server fails.
// At the end: "END <the four counts>", then the TAIL, and exit 0.
//
// Build: cc -O2 -o bench/build/logreader bench/logreader.c

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAIL_MAX 8192

typedef struct {
  const char *name;
  int fd;
  uint64_t lines, bytes;
} stream_t;

static stream_t streams[2] = {{"stdout", -1, 0, 0}, {"stderr", -1, 0, 0}};
static char tail_buf[TAIL_MAX];
static size_t tail_len;

static void die(const char *what) {
  fprintf(stderr, "logreader: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      exit(1); // the harness is gone
    }
    p += w;
    n -= (size_t)w;
  }
}

static void tail_add(const char *p, size_t n) {
  if (n >= TAIL_MAX) {
    memcpy(tail_buf, p + n - TAIL_MAX, TAIL_MAX);
    tail_len = TAIL_MAX;
    return;
  }
  if (tail_len + n > TAIL_MAX) {
    size_t drop = tail_len + n - TAIL_MAX;
    memmove(tail_buf, tail_buf + drop, tail_len - drop);
    tail_len -= drop;
  }
  memcpy(tail_buf + tail_len, p, n);
  tail_len += n;
}

static void send_counts(const char *tag) {
  char b[200];
  int n = snprintf(b, sizeof b, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", tag, streams[0].lines, streams[0].bytes,
                   streams[1].lines, streams[1].bytes);
  write_all(b, (size_t)n);
}

static void send_tail(void) {
  char h[32];
  int n = snprintf(h, sizeof h, "TAIL %zu\n", tail_len);
  write_all(h, (size_t)n);
  write_all(tail_buf, tail_len);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: logreader DIR\n");
    return 64;
  }
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < 2; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", argv[1], streams[i].name);
    if (mkfifo(path, 0600) < 0) die(path);
    // Non-blocking, so this open does not wait for the writer. Before a writer
    // has opened the FIFO, Linux reports neither POLLIN nor POLLHUP on it, so
    // the loop below cannot mistake "not yet" for end of file.
    streams[i].fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (streams[i].fd < 0) die(path);
  }
  write_all("READY\n", 6);

  static char buf[65536];
  char req[256];
  size_t req_len = 0;
  int ctl = 0; // stdin; -1 once the harness closed it (we still read the server to the end)
  int open_streams = 2;
  while (open_streams > 0) {
    struct pollfd p[3] = {{.fd = ctl, .events = POLLIN}, {.fd = streams[0].fd, .events = POLLIN}, {.fd = streams[1].fd, .events = POLLIN}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (int i = 0; i < 2; i++) {
      if (streams[i].fd < 0 || !(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(streams[i].fd, buf, sizeof buf);
      if (r > 0) {
        streams[i].bytes += (uint64_t)r;
        for (const char *q = buf, *end = buf + r; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) streams[i].lines++;
        tail_add(buf, (size_t)r);
      } else if (r == 0) { // every writer closed it: the server is gone
        close(streams[i].fd);
        streams[i].fd = -1;
        open_streams--;
      } else if (errno != EAGAIN && errno != EINTR) {
        die("read");
      }
    }
    if (ctl >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = read(ctl, req + req_len, sizeof req - req_len);
      if (r <= 0) {
        ctl = -1;
        continue;
      }
      req_len += (size_t)r;
      char *nl;
      while ((nl = memchr(req, '\n', req_len)) != NULL) {
        if (req[0] == 'c') send_counts("COUNT");
        else if (req[0] == 't') send_tail();
        size_t used = (size_t)(nl - req) + 1;
        memmove(req, req + used, req_len - used);
        req_len -= used;
      }
      if (req_len == sizeof req) req_len = 0; // garbage without newlines: drop it
    }
  }
  send_counts("END");
  send_tail();
  return 0;
}
