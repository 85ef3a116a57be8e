// loadgen: a load generator for protocol v1 (docs/protocol.md) over Unix sockets.
//
// Written in C with one epoll loop and non-blocking sockets so that the
// generator costs far less CPU per message than the Node servers it drives:
// a benchmark whose client saturates first measures the client. It reports its
// own CPU use so the harness can flag generator-bound runs as INVALID.
//
// Modes (all print exactly one JSON result line on stdout at the end):
//   echo    --socket P [--conns 100] [--inflight 16] [--size 64] [--seconds 5] [--warmup 1]
//           N connections, each handshaken, each keeping `inflight` echo requests
//           outstanding. Reports replies/s and per-request latency percentiles.
//   latency same as echo with --conns 1 --inflight 1 (one request in flight at a time).
//   churn   --socket P [--parallel 16] [--seconds 5] [--warmup 1]
//           loop per slot: connect, send `connect`, wait for `connected`, close.
//   fanout  --socket P [--conns 1000] [--inflight 4] [--batch 1] [--size 64] [--stalled 0]
//           [--on-slow drop|disconnect] [--seconds 5] [--warmup 1]
//           N subscribers (bench.subscribe) that only read and count what they
//           get, and one publisher keeping `inflight` bench.publish {n: batch,
//           size} requests outstanding (bench/fanout-feature.ts). Reports
//           messages delivered per second (to all the reading subscribers
//           together) and the delivery latency: from a publish request queued
//           for sending to one subscriber's receiving a message of it. Checks
//           every subscriber's sequence numbers (a gap only as bench.missed says).
//           With --stalled K, two windows in one run: the first as above
//           (reported under "alone"), then K more subscribers connect, subscribe
//           and never read again; 1 s later (with --stall-wait-s S: once the
//           server has dealt with them, a publish reporting a drop or every one
//           of them cut off, at most S s after they subscribed) the second
//           window measures the others again (the main figures).
//           [--probes 10] [--read-every-ms 10]: `probes` subscribers, spread
//           over the subscription order, read as soon as anything arrives and
//           give the latency; the others are read every `read-every-ms`, so
//           that a read takes several messages at once: one recv() per message
//           per subscriber would make the generator, not the server, the
//           bottleneck (about 4 us of its CPU per message on the project's VM).
//   idle    --socket P [--conns 10000] [--max-pending 256]
//           open and handshake N connections, print "READY ..." and then wait:
//           a line "quit" on stdin (or EOF) detaches every connection and ends;
//           a `shutdown` message from the server (graceful drain) is answered with
//           `detach`, and the mode ends when the server has closed every connection.
// Common: --server-pid PID reads the server's utime+stime from /proc over the
// measured window (exactly aligned with it, which the harness could not do);
// --aux-pid PID does the same for one more process (the harness's log reader),
// reported as aux_cpu_s, so that it is not counted as another tenant's noise.
// echo, latency and churn print "WINDOW start" and "WINDOW end" lines on stdout
// as the measured window opens and closes: the harness samples what it counts
// itself (log lines read) at those moments.
//
// Build: cc -O2 -o bench/build/loadgen bench/loadgen.c

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------- utilities

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// The start of a /proc file (one read; they are generated whole), NUL-terminated; false if unreadable.
static bool read_proc(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  return true;
}

// utime+stime of another process in seconds, from /proc/PID/stat; -1 if unknown.
static double proc_cpu_s(int pid) {
  if (pid <= 0) return -1;
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if (!read_proc(path, buf, sizeof buf)) return -1;
  // comm (field 2) may contain spaces and parentheses: start after the last ')'.
  char *p = strrchr(buf, ')');
  if (p == NULL) return -1;
  p++;
  unsigned long long utime = 0, stime = 0;
  // Fields 3..13 are skipped; 14 = utime, 15 = stime (clock ticks).
  if (sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

// Busy time of the whole machine (all CPUs) in seconds, from the first line of
// /proc/stat. Minus the server's and our own CPU it is what *other* processes
// used during the window: the harness flags runs where that was significant.
static double machine_busy_s(void) {
  char buf[512];
  if (!read_proc("/proc/stat", buf, sizeof buf)) return -1;
  unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
  if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq, &softirq, &steal) != 8) return -1;
  (void)idle;
  (void)iowait;
  return (double)(user + nice + sys + irq + softirq + steal) / (double)sysconf(_SC_CLK_TCK);
}

// VmRSS of a process in KB, from /proc/PID/status; -1 if unknown.
static long proc_rss_kb(int pid) {
  if (pid <= 0) return -1;
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  if (!read_proc(path, buf, sizeof buf)) return -1;
  const char *p = strstr(buf, "VmRSS:");
  return p == NULL ? -1 : strtol(p + 6, NULL, 10);
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q == NULL && n > 0) {
    fprintf(stderr, "loadgen: out of memory\n");
    exit(1);
  }
  return q;
}

// ---------------------------------------------------------------- histogram
// Log-linear histogram of nanoseconds: values < 128 exact, then 64 sub-buckets
// per power of two (relative error < 1.6%). Constant time per sample and a
// fixed 30 KB, so recording every request costs nothing measurable.

#define SUB_BITS 6
#define SUB (1 << SUB_BITS)
#define LINEAR (2 * SUB)
#define NBUCKETS (LINEAR + 58 * SUB)

typedef struct {
  uint64_t counts[NBUCKETS];
  uint64_t total;
  uint64_t max;
} hist_t;

static int bucket_of(uint64_t v) {
  if (v < LINEAR) return (int)v;
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - SUB_BITS;
  int mant = (int)(v >> shift) - SUB;
  return LINEAR + (msb - (SUB_BITS + 1)) * SUB + mant;
}

// The midpoint of a bucket's range.
static uint64_t bucket_value(int b) {
  if (b < LINEAR) return (uint64_t)b;
  int k = (b - LINEAR) / SUB, mant = (b - LINEAR) % SUB;
  int shift = k + 1;
  uint64_t lo = ((uint64_t)(mant + SUB)) << shift;
  return lo + ((1ull << shift) >> 1);
}

static void hist_add(hist_t *h, uint64_t v) {
  h->counts[bucket_of(v)]++;
  h->total++;
  if (v > h->max) h->max = v;
}

// Percentile in microseconds (p in 0..1); 0 when empty.
static double hist_pct_us(const hist_t *h, double p) {
  if (h->total == 0) return 0;
  uint64_t rank = (uint64_t)(p * (double)h->total);
  if (rank >= h->total) rank = h->total - 1;
  uint64_t seen = 0;
  for (int b = 0; b < NBUCKETS; b++) {
    seen += h->counts[b];
    if (seen > rank) return (double)bucket_value(b) / 1000.0;
  }
  return (double)h->max / 1000.0;
}

// ---------------------------------------------------------------- config

enum mode { M_ECHO, M_LATENCY, M_CHURN, M_IDLE, M_FANOUT };

static struct {
  enum mode mode;
  const char *mode_name;
  const char *socket;
  int conns, inflight, size, parallel, max_pending, server_pid, aux_pid;
  int batch, stalled;  // fanout: messages per publish, subscribers that never read
  int probes, read_every_ms; // fanout: subscribers read at once (latency), the others' read interval
  const char *on_slow; // fanout: the slow policy the subscribers ask for
  double seconds, warmup, stall_wait_s;
} cfg = {.conns = 100, .inflight = 16, .size = 64, .parallel = 16, .max_pending = 256, .batch = 1, .on_slow = "drop", .probes = 10, .read_every_ms = 10, .seconds = 5, .warmup = 1};

// ---------------------------------------------------------------- connections

enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_SUBSCRIBING, C_READY, C_DETACHING, C_CLOSED };
// fanout: what a connection does (echo, latency, churn and idle: R_ECHO).
enum role { R_ECHO, R_PUBLISHER, R_SUBSCRIBER, R_STALLED };

typedef struct conn {
  int fd;
  enum cstate state;
  bool want_out;     // EPOLLOUT currently registered
  bool got_shutdown; // the server sent `shutdown`
  // Partial incoming frame carried between reads (most reads need no copy).
  uint8_t *rbuf;
  size_t rlen, rcap;
  // Outgoing bytes not yet accepted by the kernel.
  uint8_t *wbuf;
  size_t woff, wlen, wcap;
  // FIFO of send times of outstanding echo requests (replies come in order).
  uint64_t *sent;
  uint32_t ring_head, ring_count;
  uint64_t next_id, expect_id;
  uint64_t hs_start; // when connect() was called (churn and idle latency)
  enum role role;
  int efd; // the epoll set it is in: `ep`, or `bulk_ep` (fanout subscribers read at intervals)
  uint64_t expect_seq;   // fanout subscriber: the next bench.msg's seq
  bool after_missed;     // ... unless bench.missed came just before (then any later one)
  uint64_t win_received; // ... messages received in the measured window
} conn_t;

static int ep = -1;
static int bulk_ep = -1; // fanout: the subscribers that are not probes, polled every read_every_ms
static conn_t *conns;
static int nconns;

// Results and counters.
static hist_t hist;
static bool measuring;
static uint64_t replies;             // replies counted in the measured window
static uint64_t handshakes;          // churn: handshakes in the measured window
static uint64_t err_connect, err_io, err_closed, err_reply, err_order, err_server;
static uint64_t connect_retries;     // EAGAIN from connect(): listen backlog full, retried
static uint64_t shutdowns_seen, closed_after_shutdown;
static uint64_t first_shutdown_ns, last_close_ns;
static volatile sig_atomic_t stop_flag;
static bool setup_failed; // exit status 2: the numbers printed mean nothing

// fanout. The servers' PublishResult sums come in each bench.published reply.
static uint64_t published, published_window;     // bench.publish requests answered (whole run, window)
static uint64_t pub_sent, pub_dropped, pub_dropped_window; // messages queued for / dropped from subscribers
static uint64_t missed_notices, missed_total;    // bench.missed received by reading subscribers, and their counts
static uint64_t stalled_cut;                     // stalled subscribers the server closed
static uint64_t stalled_cut_first_ns, window_start_ns;
static uint64_t stall_begin_ns, stall_subscribed_ns; // the stalled subscribers were opened; all had subscribed
static uint64_t first_drop_ns;   // the first bench.published after that which reported a drop
static uint64_t published_at_stall; // publishes answered before they had all subscribed
static bool stall_wait_capped;   // --stall-wait-s ran out before the server dealt with the stalled ones
// When each publish request was queued, by its id (= the publish's number): the
// messages of publish k carry seq (k-1)*batch+1 .. k*batch. A slot overwritten
// by a later publish (a subscriber 65536 publishes behind) has no latency.
#define PUB_RING (1u << 16)
static struct { uint64_t k, t; } pub_ring[PUB_RING];
static char subscribe_json[96];

// Pre-encoded request text. Only the id differs between echo requests, so the
// frame is prefix + decimal id + "}", assembled by memcpy.
static char *echo_prefix;
static size_t echo_prefix_len;
static const char HS_JSON[] = "{\"type\":\"connect\",\"protocol_version\":1,\"client_name\":\"loadgen\",\"id\":0}";
static const char DETACH_JSON[] = "{\"type\":\"detach\"}";

static uint64_t total_errors(void) { return err_connect + err_io + err_closed + err_reply + err_order + err_server; }

static void wreserve(conn_t *c, size_t extra) {
  if (c->woff > 0 && c->woff == c->wlen) c->woff = c->wlen = 0;
  if (c->wlen + extra <= c->wcap) return;
  if (c->woff > 0) { // compact before growing
    memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
    c->wlen -= c->woff;
    c->woff = 0;
    if (c->wlen + extra <= c->wcap) return;
  }
  size_t cap = c->wcap ? c->wcap : 256;
  while (cap < c->wlen + extra) cap *= 2;
  c->wbuf = xrealloc(c->wbuf, cap);
  c->wcap = cap;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void queue_json(conn_t *c, const char *json, size_t len) {
  wreserve(c, 4 + len);
  put_be32(c->wbuf + c->wlen, (uint32_t)len);
  memcpy(c->wbuf + c->wlen + 4, json, len);
  c->wlen += 4 + len;
}

static void queue_echo(conn_t *c, uint64_t t) {
  char digits[24];
  int nd = snprintf(digits, sizeof digits, "%" PRIu64, c->next_id);
  size_t len = echo_prefix_len + (size_t)nd + 1;
  wreserve(c, 4 + len);
  uint8_t *p = c->wbuf + c->wlen;
  put_be32(p, (uint32_t)len);
  memcpy(p + 4, echo_prefix, echo_prefix_len);
  memcpy(p + 4 + echo_prefix_len, digits, (size_t)nd);
  p[4 + len - 1] = '}';
  c->wlen += 4 + len;
  c->next_id++;
  c->sent[(c->ring_head + c->ring_count) % (uint32_t)cfg.inflight] = t;
  c->ring_count++;
  if (cfg.mode == M_FANOUT) { // the id just sent
    pub_ring[(c->next_id - 1) % PUB_RING].k = c->next_id - 1;
    pub_ring[(c->next_id - 1) % PUB_RING].t = t;
  }
}

static void set_out(conn_t *c, bool want) {
  if (c->want_out == want) return;
  struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(c->efd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl MOD");
  c->want_out = want;
}

static void conn_close(conn_t *c, enum cstate next) {
  if (c->fd >= 0) close(c->fd); // also removes it from the epoll set
  c->fd = -1;
  c->state = next;
  c->want_out = false;
  c->rlen = 0;
  c->woff = c->wlen = 0;
  c->ring_head = c->ring_count = 0;
}

// Push queued bytes to the kernel; partial writes keep the rest and wait for EPOLLOUT.
// Returns false if the connection failed (and was closed).
static bool flush_out(conn_t *c) {
  while (c->woff < c->wlen) {
    ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    if (n > 0) {
      c->woff += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_out(c, true);
      return true;
    }
    // EPIPE / ECONNRESET: the server went away. After a `shutdown` that is expected.
    if (!c->got_shutdown) err_io++;
    conn_close(c, C_CLOSED);
    return false;
  }
  c->woff = c->wlen = 0;
  if (c->want_out) set_out(c, false);
  return true;
}

// Start (or restart) connection c. Unix-socket connect() is immediate; when the
// listen backlog is full it fails with EAGAIN and we retry later (not an error).
static bool conn_open(conn_t *c) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err_connect++;
    return false;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strncpy(sa.sun_path, cfg.socket, sizeof sa.sun_path - 1);
  c->hs_start = now_ns();
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    if (errno == EINPROGRESS) {
      c->fd = fd;
      c->state = C_CONNECTING;
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
      c->efd = ep;
      c->want_out = true;
      return true;
    }
    if (errno == EAGAIN) connect_retries++;
    else err_connect++;
    close(fd);
    c->state = C_FREE;
    return false;
  }
  c->fd = fd;
  c->state = C_HANDSHAKE;
  c->want_out = false;
  c->got_shutdown = false;
  c->next_id = 1;
  c->expect_id = 1;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
  c->efd = ep;
  queue_json(c, HS_JSON, sizeof HS_JSON - 1);
  return flush_out(c);
}

static void begin_detach(conn_t *c) {
  if (c->state == C_DETACHING || c->state == C_CLOSED || c->state == C_FREE) return;
  c->state = C_DETACHING;
  queue_json(c, DETACH_JSON, sizeof DETACH_JSON - 1);
  flush_out(c);
}

// The message type of a reply, found cheaply: both servers put "type" first, so
// the payload starts with {"type":"NAME". Falls back to a search otherwise.
static bool type_is(const uint8_t *p, size_t len, const char *name) {
  static const char key[] = "\"type\":\"";
  const size_t klen = sizeof key - 1, nlen = strlen(name);
  const uint8_t *q = NULL;
  if (len > klen + 1 && p[0] == '{' && memcmp(p + 1, key, klen) == 0) q = p + 1 + klen;
  else {
    const uint8_t *k = memmem(p, len, key, klen);
    if (k != NULL) q = k + klen;
  }
  if (q == NULL || (size_t)(p + len - q) < nlen + 1) return false;
  return memcmp(q, name, nlen) == 0 && q[nlen] == '"';
}

// The integer "id" of a reply: searched from the end, where both servers put it.
static bool reply_id(const uint8_t *p, size_t len, uint64_t *out) {
  static const char key[] = "\"id\":";
  const size_t klen = sizeof key - 1;
  for (size_t i = len >= klen ? len - klen + 1 : 0; i-- > 0;) {
    if (p[i] == '"' && memcmp(p + i, key, klen) == 0) {
      const uint8_t *d = p + i + klen;
      const uint8_t *end = p + len;
      if (d >= end || *d < '0' || *d > '9') return false;
      uint64_t v = 0;
      while (d < end && *d >= '0' && *d <= '9') v = v * 10 + (uint64_t)(*d++ - '0');
      *out = v;
      return true;
    }
  }
  return false;
}

static bool running_load(void); // echo traffic continues (not ending)

// An unsigned integer field of a payload, found by its key (e.g. "\"seq\":"):
// the first occurrence, which is the field itself in the messages read here.
static bool field_u64(const uint8_t *p, size_t len, const char *key, uint64_t *out) {
  size_t klen = strlen(key);
  const uint8_t *k = memmem(p, len, key, klen);
  if (k == NULL) return false;
  const uint8_t *d = k + klen, *end = p + len;
  if (d >= end || *d < '0' || *d > '9') return false;
  uint64_t v = 0;
  while (d < end && *d >= '0' && *d <= '9') v = v * 10 + (uint64_t)(*d++ - '0');
  *out = v;
  return true;
}

// fanout: a subscribed, reading subscriber's frame. Every bench.msg must carry
// the next seq; after bench.missed {missed} the next is `missed` further on.
static void on_subscriber_frame(conn_t *c, const uint8_t *p, size_t len, uint64_t t) {
  if (type_is(p, len, "bench.msg")) {
    uint64_t seq;
    if (!field_u64(p, len, "\"seq\":", &seq)) {
      err_reply++;
      return;
    }
    if (seq != c->expect_seq) err_order++;
    c->expect_seq = seq + 1;
    if (measuring) {
      replies++;
      c->win_received++;
      uint64_t k = (seq - 1) / (uint64_t)cfg.batch + 1;
      if (pub_ring[k % PUB_RING].k == k) hist_add(&hist, t - pub_ring[k % PUB_RING].t);
    }
  } else if (type_is(p, len, "bench.missed")) {
    uint64_t m = 0;
    if (!field_u64(p, len, "\"missed\":", &m)) err_reply++;
    missed_notices++;
    missed_total += m;
    c->expect_seq += m;
  } else if (type_is(p, len, "error")) {
    err_server++;
  } else {
    err_reply++;
  }
}

// fanout: a stalled subscriber stops reading once subscribed. Only a hang-up
// (the server cut it off) is still reported: EPOLLHUP and EPOLLERR always are.
static void stall(conn_t *c) {
  struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
  if (epoll_ctl(c->efd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl MOD");
  c->want_out = false;
}

// fanout: a subscriber that is not a probe moves to the set read at intervals.
static void to_bulk(conn_t *c) {
  struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL) < 0) die("epoll_ctl DEL");
  if (epoll_ctl(bulk_ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl ADD");
  c->efd = bulk_ep;
}

// Probes are every (conns / probes)-th subscriber: spread over the server's
// subscription order, which follows the order they were opened in.
static bool is_probe(int index) {
  if (cfg.probes <= 0) return false;
  int every = cfg.conns / cfg.probes;
  return every <= 1 || (index - 1) % every == 0;
}

// One complete frame from the server. Returns false if the connection was closed.
static bool on_frame(conn_t *c, const uint8_t *p, size_t len, uint64_t t) {
  if (type_is(p, len, "shutdown")) {
    // Graceful drain: answer with detach; the server then closes the connection.
    if (!c->got_shutdown) {
      c->got_shutdown = true;
      shutdowns_seen++;
      if (first_shutdown_ns == 0) first_shutdown_ns = t;
    }
    if (c->state != C_DETACHING) begin_detach(c);
    return c->state != C_CLOSED;
  }
  switch (c->state) {
    case C_HANDSHAKE:
      if (!type_is(p, len, "connected")) {
        if (type_is(p, len, "error")) err_server++; // e.g. server_busy
        else err_reply++;
        conn_close(c, C_CLOSED);
        return false;
      }
      if (cfg.mode == M_CHURN) {
        if (measuring) {
          handshakes++;
          hist_add(&hist, t - c->hs_start);
        }
        // The loop: close right after `connected`, then reconnect (done by the caller).
        conn_close(c, C_FREE);
        return false;
      }
      c->state = C_READY;
      if (cfg.mode == M_IDLE) hist_add(&hist, t - c->hs_start);
      if (c->role == R_SUBSCRIBER || c->role == R_STALLED) {
        c->state = C_SUBSCRIBING;
        c->expect_seq = 1;
        queue_json(c, subscribe_json, strlen(subscribe_json));
      }
      if ((cfg.mode == M_ECHO || cfg.mode == M_LATENCY) && running_load()) {
        for (int i = 0; i < cfg.inflight; i++) queue_echo(c, t);
      }
      return true;
    case C_SUBSCRIBING:
      if (!type_is(p, len, "bench.subscribed")) {
        if (type_is(p, len, "error")) err_server++;
        else err_reply++;
        conn_close(c, C_CLOSED);
        return false;
      }
      c->state = C_READY;
      if (c->role == R_STALLED) stall(c);
      else if (!is_probe((int)(c - conns))) to_bulk(c);
      return true;
    case C_READY:
    case C_DETACHING:
      if (c->role == R_SUBSCRIBER) {
        on_subscriber_frame(c, p, len, t);
        return true;
      }
      if (c->role == R_STALLED) return true; // read with its bench.subscribed, before it stopped
      if (c->ring_count == 0) {
        // Nothing outstanding: only unsolicited messages are expected here.
        err_reply++;
        return true;
      }
      if (!type_is(p, len, cfg.mode == M_FANOUT ? "bench.published" : "echo")) {
        if (type_is(p, len, "error")) err_server++;
        else err_reply++;
      } else {
        uint64_t id;
        if (!reply_id(p, len, &id) || id != c->expect_id) err_order++;
        if (cfg.mode == M_FANOUT) {
          uint64_t sent = 0, dropped = 0;
          if (!field_u64(p, len, "\"sent\":", &sent) || !field_u64(p, len, "\"dropped\":", &dropped)) err_reply++;
          published++;
          if (dropped > 0 && first_drop_ns == 0 && stall_subscribed_ns != 0) first_drop_ns = t;
          pub_sent += sent;
          pub_dropped += dropped;
          if (measuring) {
            published_window++;
            pub_dropped_window += dropped;
          }
        }
      }
      uint64_t sent = c->sent[c->ring_head];
      c->ring_head = (c->ring_head + 1) % (uint32_t)cfg.inflight;
      c->ring_count--;
      c->expect_id++;
      if (measuring && cfg.mode != M_FANOUT) { // fanout counts deliveries, not publishes
        replies++;
        hist_add(&hist, t - sent);
      }
      // Keep `inflight` outstanding: one new request per reply, written in one
      // batch after the whole read is processed (the client coalesces too).
      if (c->state == C_READY && running_load()) queue_echo(c, t);
      return true;
    default:
      err_reply++;
      return true;
  }
}

static uint8_t rtmp[256 * 1024];

// Readable: read once (level-triggered epoll calls again if more is pending),
// split into frames, keep a partial frame for the next read.
static void on_readable(conn_t *c, uint64_t t) {
  ssize_t n = recv(c->fd, rtmp, sizeof rtmp, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    // A reset after detach or shutdown still ends the connection as intended.
    if (c->got_shutdown) closed_after_shutdown++;
    if (c->got_shutdown || c->state == C_DETACHING) last_close_ns = t;
    else err_io++;
    conn_close(c, C_CLOSED);
    return;
  }
  if (n == 0) {
    // EOF. Expected after detach or shutdown; otherwise the server dropped us.
    if (c->state == C_DETACHING || c->got_shutdown) {
      if (c->got_shutdown) closed_after_shutdown++;
      last_close_ns = t;
    } else {
      err_closed++;
    }
    conn_close(c, C_CLOSED);
    return;
  }
  const uint8_t *p;
  size_t avail;
  if (c->rlen == 0) {
    p = rtmp;
    avail = (size_t)n;
  } else {
    if (c->rlen + (size_t)n > c->rcap) {
      size_t cap = c->rcap ? c->rcap : 512;
      while (cap < c->rlen + (size_t)n) cap *= 2;
      c->rbuf = xrealloc(c->rbuf, cap);
      c->rcap = cap;
    }
    memcpy(c->rbuf + c->rlen, rtmp, (size_t)n);
    c->rlen += (size_t)n;
    p = c->rbuf;
    avail = c->rlen;
  }
  size_t off = 0;
  while (avail - off >= 4) {
    uint32_t len = ((uint32_t)p[off] << 24) | ((uint32_t)p[off + 1] << 16) | ((uint32_t)p[off + 2] << 8) | p[off + 3];
    if (len > 64u * 1024 * 1024) {
      err_reply++;
      conn_close(c, C_CLOSED);
      return;
    }
    if (avail - off - 4 < len) break;
    if (!on_frame(c, p + off + 4, len, t)) return; // closed (churn: by design)
    off += 4 + len;
  }
  // Keep the unfinished tail (memmove: it may already live in rbuf).
  size_t rest = avail - off;
  if (rest > 0) {
    if (rest > c->rcap) {
      size_t cap = c->rcap ? c->rcap : 512;
      while (cap < rest) cap *= 2;
      uint8_t *nb = malloc(cap);
      if (nb == NULL) die("malloc");
      memcpy(nb, p + off, rest);
      free(c->rbuf);
      c->rbuf = nb;
      c->rcap = cap;
    } else {
      memmove(c->rbuf, p + off, rest);
    }
  }
  c->rlen = rest;
  if (c->wlen > c->woff) flush_out(c);
}

static void on_event(conn_t *c, uint32_t events, uint64_t t) {
  if (c->role == R_STALLED && c->state == C_READY) {
    // It reads nothing: any event is the server hanging up on it.
    if (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
      stalled_cut++;
      if (stalled_cut_first_ns == 0) stalled_cut_first_ns = t;
      conn_close(c, C_CLOSED);
    }
    return;
  }
  if (c->state == C_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err != 0) {
      err_connect++;
      conn_close(c, C_FREE);
      return;
    }
    c->state = C_HANDSHAKE;
    c->next_id = c->expect_id = 1;
    queue_json(c, HS_JSON, sizeof HS_JSON - 1);
    if (!flush_out(c)) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    on_readable(c, t);
    if (c->fd < 0) return;
  }
  if ((events & EPOLLOUT) && c->fd >= 0 && c->wlen > c->woff) flush_out(c);
}

// ---------------------------------------------------------------- phases

enum phase { P_SETUP, P_WARMUP, P_MEASURE, P_STALL, P_ENDING, P_IDLE_WAIT };
static enum phase phase = P_SETUP;

static bool running_load(void) { return phase == P_SETUP || phase == P_WARMUP || phase == P_MEASURE || phase == P_STALL; }

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen echo|latency|churn|idle|fanout --socket PATH [--conns N] [--inflight N] [--size BYTES]\n"
          "               [--seconds S] [--warmup S] [--parallel N] [--max-pending N] [--server-pid PID] [--aux-pid PID]\n"
          "               [--batch N] [--stalled N] [--on-slow drop|disconnect] [--probes N] [--read-every-ms MS]\n"
          "               [--stall-wait-s S]\n");
  exit(64);
}

static int count_state(enum cstate s) {
  int n = 0;
  for (int i = 0; i < nconns; i++) n += conns[i].state == s;
  return n;
}

// fanout: the fewest and most messages one reading subscriber got in the window.
static void sub_range(uint64_t *lo, uint64_t *hi) {
  *lo = UINT64_MAX;
  *hi = 0;
  for (int i = 0; i < nconns; i++) {
    if (conns[i].role != R_SUBSCRIBER) continue;
    if (conns[i].win_received < *lo) *lo = conns[i].win_received;
    if (conns[i].win_received > *hi) *hi = conns[i].win_received;
  }
  if (*lo == UINT64_MAX) *lo = 0;
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  cfg.mode_name = argv[1];
  if (strcmp(argv[1], "echo") == 0) cfg.mode = M_ECHO;
  else if (strcmp(argv[1], "latency") == 0) cfg.mode = M_LATENCY;
  else if (strcmp(argv[1], "churn") == 0) cfg.mode = M_CHURN;
  else if (strcmp(argv[1], "idle") == 0) cfg.mode = M_IDLE, cfg.conns = 10000;
  else if (strcmp(argv[1], "fanout") == 0) cfg.mode = M_FANOUT, cfg.conns = 1000, cfg.inflight = 4;
  else usage();
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (strcmp(a, "--socket") == 0) cfg.socket = v;
    else if (strcmp(a, "--conns") == 0) cfg.conns = atoi(v);
    else if (strcmp(a, "--inflight") == 0) cfg.inflight = atoi(v);
    else if (strcmp(a, "--size") == 0) cfg.size = atoi(v);
    else if (strcmp(a, "--seconds") == 0) cfg.seconds = atof(v);
    else if (strcmp(a, "--warmup") == 0) cfg.warmup = atof(v);
    else if (strcmp(a, "--parallel") == 0) cfg.parallel = atoi(v);
    else if (strcmp(a, "--max-pending") == 0) cfg.max_pending = atoi(v);
    else if (strcmp(a, "--server-pid") == 0) cfg.server_pid = atoi(v);
    else if (strcmp(a, "--aux-pid") == 0) cfg.aux_pid = atoi(v);
    else if (strcmp(a, "--batch") == 0) cfg.batch = atoi(v);
    else if (strcmp(a, "--stalled") == 0) cfg.stalled = atoi(v);
    else if (strcmp(a, "--on-slow") == 0) cfg.on_slow = v;
    else if (strcmp(a, "--probes") == 0) cfg.probes = atoi(v);
    else if (strcmp(a, "--read-every-ms") == 0) cfg.read_every_ms = atoi(v);
    else if (strcmp(a, "--stall-wait-s") == 0) cfg.stall_wait_s = atof(v);
    else usage();
  }
  if (cfg.socket == NULL) usage();
  if (strlen(cfg.socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    fprintf(stderr, "loadgen: socket path too long\n");
    return 64;
  }
  if (cfg.mode == M_LATENCY) cfg.conns = 1, cfg.inflight = 1;
  if (cfg.mode == M_CHURN) cfg.conns = cfg.parallel, cfg.inflight = 1;
  if (cfg.mode == M_IDLE) cfg.inflight = 1;
  if (cfg.conns < 1 || cfg.inflight < 1 || cfg.size < 0 || cfg.max_pending < 1 || cfg.batch < 1 || cfg.stalled < 0 || cfg.probes < 0 || cfg.read_every_ms < 1) usage();
  if (strcmp(cfg.on_slow, "drop") != 0 && strcmp(cfg.on_slow, "disconnect") != 0) usage();
  // fanout: the publisher, the reading subscribers, then the stalled ones.
  int total_conns = cfg.mode == M_FANOUT ? 1 + cfg.conns + cfg.stalled : cfg.conns;

  // 10k connections need 10k descriptors: take everything the hard limit allows.
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if ((rlim_t)total_conns + 16 > rl.rlim_cur) {
    fprintf(stderr, "loadgen: need %d descriptors, RLIMIT_NOFILE is %llu\n", total_conns + 16, (unsigned long long)rl.rlim_cur);
    return 69;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  // {"type":"echo","data":"xxxx...","id":  -- `size` bytes of data, then the id.
  echo_prefix = malloc((size_t)cfg.size + 64);
  if (echo_prefix == NULL) die("malloc");
  int pl = sprintf(echo_prefix, "{\"type\":\"echo\",\"data\":\"");
  memset(echo_prefix + pl, 'x', (size_t)cfg.size);
  pl += cfg.size;
  pl += sprintf(echo_prefix + pl, "\",\"id\":");
  // fanout: the publisher's requests take the echo requests' place (same id handling).
  if (cfg.mode == M_FANOUT) pl = sprintf(echo_prefix, "{\"type\":\"bench.publish\",\"n\":%d,\"size\":%d,\"id\":", cfg.batch, cfg.size);
  echo_prefix_len = (size_t)pl;
  snprintf(subscribe_json, sizeof subscribe_json, "{\"type\":\"bench.subscribe\",\"on_slow\":\"%s\",\"id\":0}", cfg.on_slow);

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  if (cfg.mode == M_FANOUT) {
    bulk_ep = epoll_create1(EPOLL_CLOEXEC);
    if (bulk_ep < 0) die("epoll_create1");
  }
  nconns = total_conns;
  conns = calloc((size_t)nconns, sizeof *conns);
  if (conns == NULL) die("calloc");
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = -1;
    conns[i].state = C_FREE;
    conns[i].sent = calloc((size_t)cfg.inflight, sizeof(uint64_t));
    if (conns[i].sent == NULL) die("calloc");
    if (cfg.mode == M_FANOUT) conns[i].role = i == 0 ? R_PUBLISHER : i <= cfg.conns ? R_SUBSCRIBER : R_STALLED;
  }
  if (cfg.mode == M_IDLE) {
    // stdin carries the harness's "quit"; EOF means the same.
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0 && errno != EPERM) die("epoll_ctl stdin");
  }

  const int MAXEV = 1024;
  struct epoll_event evs[1024];
  uint64_t t0 = now_ns(), setup_done = 0, warm_end = 0, measure_start = 0, measure_end = 0, ending_deadline = 0;
  double cpu0 = 0, cpu1 = 0, srv0 = -1, srv1 = -1, aux0 = -1, aux1 = -1, mach0 = -1, mach1 = -1;
  // fanout --stalled: two windows, the first kept here; the stalled subscribers are opened after it.
  bool two_windows = cfg.mode == M_FANOUT && cfg.stalled > 0, alone_done = false;
  int nsetup = two_windows ? nconns - cfg.stalled : nconns;
  char alone[768] = "";
  long rss_end_kb = -1; // the server's VmRSS as the main window closes
  uint64_t next_bulk = 0; // fanout: when the subscribers read at intervals are read next
  int next_to_open = 0; // echo/idle: connections are opened in order, at most max_pending at a time
  bool quit_requested = false;
  uint64_t setup_deadline = t0 + 60ull * 1000000000ull;

  for (;;) {
    uint64_t t = now_ns();
    if (stop_flag) {
      // Interrupted: report what we have.
      if (phase == P_MEASURE || phase == P_WARMUP) measure_end = t;
      break;
    }

    // --- open connections / restart churn slots ---
    if (cfg.mode == M_CHURN) {
      if (phase != P_ENDING)
        for (int i = 0; i < nconns; i++)
          if (conns[i].state == C_FREE) conn_open(&conns[i]);
    } else if (phase == P_SETUP) {
      int pending = 0;
      for (int i = 0; i < next_to_open; i++) pending += conns[i].state == C_HANDSHAKE || conns[i].state == C_CONNECTING;
      // Retry connections refused with EAGAIN (full backlog) first.
      for (int i = 0; i < next_to_open && pending < cfg.max_pending; i++)
        if (conns[i].state == C_FREE && conn_open(&conns[i])) pending++;
      while (next_to_open < nsetup && pending < cfg.max_pending) {
        if (conn_open(&conns[next_to_open])) pending++;
        next_to_open++;
      }
      if (next_to_open == nsetup && count_state(C_READY) == nsetup) {
        setup_done = t;
        if (cfg.mode == M_IDLE) {
          phase = P_IDLE_WAIT;
          printf("READY {\"conns\":%d,\"open_s\":%.3f,\"connect_retries\":%" PRIu64 "}\n", nconns, (double)(t - t0) / 1e9, connect_retries);
          fflush(stdout);
        } else {
          phase = P_WARMUP;
          warm_end = t + (uint64_t)(cfg.warmup * 1e9);
          if (cfg.mode == M_FANOUT) { // everyone has subscribed: the publisher starts
            for (int i = 0; i < cfg.inflight; i++) queue_echo(&conns[0], t);
            flush_out(&conns[0]);
          }
        }
      } else if (t > setup_deadline || count_state(C_CLOSED) > 0 || err_connect > 100) {
        // A connection the server closed or refused during setup (server_busy,
        // no socket, ...) will never be ready: give up instead of hanging.
        fprintf(stderr, "loadgen: could not open %d connections (ready %d, errors %" PRIu64 ")\n", nsetup, count_state(C_READY), total_errors());
        setup_failed = true;
        break;
      }
    }
    if (cfg.mode == M_CHURN && phase == P_SETUP) {
      phase = P_WARMUP;
      setup_done = t;
      warm_end = t + (uint64_t)(cfg.warmup * 1e9);
    }

    // --- time-driven phase changes ---
    bool open_window = phase == P_WARMUP && t >= warm_end;
    if (phase == P_STALL) {
      // The stalled subscribers connect and subscribe (then stop reading);
      // the second window opens once the server has had a second with them,
      // or, with --stall-wait-s, once it has dealt with them.
      int ready = 0;
      for (int i = nsetup; i < nconns; i++) {
        if (conns[i].state == C_FREE) conn_open(&conns[i]);
        ready += conns[i].state == C_READY || conns[i].state == C_CLOSED;
      }
      if (ready == cfg.stalled && stall_subscribed_ns == 0) {
        stall_subscribed_ns = t;
        published_at_stall = published;
      }
      if (stall_subscribed_ns != 0) {
        uint64_t since = t - stall_subscribed_ns;
        bool dealt = first_drop_ns != 0 || stalled_cut >= (uint64_t)cfg.stalled;
        if (since >= 1000000000ull && (cfg.stall_wait_s <= 0 || dealt)) open_window = true;
        else if (cfg.stall_wait_s > 0 && since >= (uint64_t)(cfg.stall_wait_s * 1e9)) open_window = stall_wait_capped = true;
      } else if (t > stall_begin_ns + 10000000000ull) {
        fprintf(stderr, "loadgen: %d stalled subscribers did not subscribe within 10 s (errors %" PRIu64 ")\n", cfg.stalled, total_errors());
        setup_failed = true;
        break;
      }
    }
    if (open_window) {
      // Start a measured window: zero the counters, snapshot CPU of both sides.
      memset(&hist, 0, sizeof hist);
      replies = handshakes = 0;
      for (int i = 0; i < nconns; i++) conns[i].win_received = 0;
      measuring = true;
      measure_start = window_start_ns = t;
      cpu0 = self_cpu_s();
      srv0 = proc_cpu_s(cfg.server_pid);
      aux0 = proc_cpu_s(cfg.aux_pid);
      mach0 = machine_busy_s();
      phase = P_MEASURE;
      if (!two_windows || alone_done) { // the harness samples its own counts over the main window
        printf("WINDOW start\n");
        fflush(stdout);
      }
    }
    if (phase == P_MEASURE && t >= measure_start + (uint64_t)(cfg.seconds * 1e9)) {
      measure_end = t;
      cpu1 = self_cpu_s();
      srv1 = proc_cpu_s(cfg.server_pid);
      aux1 = proc_cpu_s(cfg.aux_pid);
      mach1 = machine_busy_s();
      measuring = false;
      if (two_windows && !alone_done) {
        // The first window: kept as "alone"; now the stalled subscribers come.
        double secs = (double)(measure_end - measure_start) / 1e9;
        uint64_t lo, hi;
        sub_range(&lo, &hi);
        snprintf(alone, sizeof alone,
                 ",\"alone\":{\"replies\":%" PRIu64 ",\"seconds\":%.3f,\"rate\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
                 "\"sub_min\":%" PRIu64 ",\"sub_max\":%" PRIu64 ",\"pub_dropped\":%" PRIu64 ",\"missed_notices\":%" PRIu64 ","
                 "\"loadgen_cpu_s\":%.3f,\"loadgen_cpu_share\":%.3f,\"server_cpu_s\":%.3f,\"aux_cpu_s\":%.3f,\"machine_busy_s\":%.3f,\"server_rss_kb\":%ld}",
                 replies, secs, secs > 0 ? (double)replies / secs : 0, hist_pct_us(&hist, 0.5), hist_pct_us(&hist, 0.9), hist_pct_us(&hist, 0.99),
                 hist_pct_us(&hist, 0.999), (double)hist.max / 1000.0, lo, hi, pub_dropped, missed_notices, cpu1 - cpu0,
                 secs > 0 ? (cpu1 - cpu0) / secs : 0, srv0 >= 0 && srv1 >= 0 ? srv1 - srv0 : -1.0, aux0 >= 0 && aux1 >= 0 ? aux1 - aux0 : -1.0,
                 mach0 >= 0 && mach1 >= 0 ? mach1 - mach0 : -1.0, proc_rss_kb(cfg.server_pid));
        alone_done = true;
        phase = P_STALL;
        stall_begin_ns = t;
        continue;
      }
      rss_end_kb = proc_rss_kb(cfg.server_pid);
      printf("WINDOW end\n");
      fflush(stdout);
      phase = P_ENDING;
      ending_deadline = t + 3000000000ull;
      // Leave cleanly: detach (the server answers what is in flight, then
      // closes); a stalled subscriber, which would never take it, just closes.
      for (int i = 0; i < nconns; i++) {
        if (conns[i].role == R_STALLED && conns[i].fd >= 0) conn_close(&conns[i], C_CLOSED);
        else if (conns[i].state == C_READY) begin_detach(&conns[i]);
      }
    }
    if (phase == P_IDLE_WAIT && quit_requested) {
      phase = P_ENDING;
      ending_deadline = t + 10000000000ull;
      for (int i = 0; i < nconns; i++)
        if (conns[i].state == C_READY) begin_detach(&conns[i]);
    }
    if (phase == P_ENDING || phase == P_IDLE_WAIT) {
      int open = 0;
      for (int i = 0; i < nconns; i++) open += conns[i].fd >= 0;
      if (open == 0 && (phase == P_ENDING || shutdowns_seen > 0 || count_state(C_CLOSED) == nconns)) break;
      if (phase == P_ENDING && t >= ending_deadline) {
        fprintf(stderr, "loadgen: %d connections still open after detach; closing them\n", open);
        break;
      }
    }

    // --- wait for I/O ---
    int timeout = 50;
    if (phase == P_SETUP || cfg.mode == M_CHURN) timeout = 1; // EAGAIN retries, quick restarts
    if (phase == P_WARMUP && warm_end > t) timeout = (int)((warm_end - t) / 1000000 + 1);
    if (phase == P_MEASURE) {
      uint64_t e = measure_start + (uint64_t)(cfg.seconds * 1e9);
      timeout = e > t ? (int)((e - t) / 1000000 + 1) : 0;
      if (timeout > 50) timeout = 50;
    }
    if (bulk_ep >= 0) {
      int tb = next_bulk > t ? (int)((next_bulk - t) / 1000000 + 1) : 0;
      if (tb < timeout) timeout = tb;
    }
    int n = epoll_wait(ep, evs, MAXEV, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    t = now_ns();
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c == NULL) { // stdin
        char line[256];
        ssize_t r = read(0, line, sizeof line);
        if (r <= 0 || memmem(line, (size_t)r, "quit", 4) != NULL) quit_requested = true;
        if (r <= 0) epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
        continue;
      }
      if (c->fd < 0) continue; // closed earlier in this batch
      on_event(c, evs[i].events, t);
    }
    // fanout: the subscribers read at intervals, everything that is ready at once.
    if (bulk_ep >= 0 && t >= next_bulk) {
      for (;;) {
        int m = epoll_wait(bulk_ep, evs, MAXEV, 0);
        if (m < 0 && errno == EINTR) continue;
        if (m < 0) die("epoll_wait");
        uint64_t tb = now_ns();
        for (int i = 0; i < m; i++) {
          conn_t *c = evs[i].data.ptr;
          if (c->fd >= 0) on_event(c, evs[i].events, tb);
        }
        if (m < MAXEV) break;
      }
      next_bulk = t + (uint64_t)cfg.read_every_ms * 1000000ull;
    }
    // Churn: closed slots reconnect on the next iteration (top of the loop).
  }

  double cpu_total = self_cpu_s();
  if (measure_end == 0) { // never reached the end of a window (idle, or interrupted)
    measure_end = now_ns();
    if (measure_start == 0) measure_start = setup_done ? setup_done : t0;
    cpu1 = cpu_total;
    srv1 = proc_cpu_s(cfg.server_pid);
  }
  double secs = (double)(measure_end - measure_start) / 1e9;
  double lg_cpu = cpu1 - cpu0;
  for (int i = 0; i < nconns; i++)
    if (conns[i].fd >= 0) conn_close(&conns[i], C_CLOSED);

  // One JSON line; latency is reply time minus send time, in microseconds.
  if (cfg.mode == M_IDLE) {
    double drain_ms = first_shutdown_ns && last_close_ns > first_shutdown_ns ? (double)(last_close_ns - first_shutdown_ns) / 1e6 : -1;
    printf("{\"mode\":\"idle\",\"conns\":%d,\"open_s\":%.3f,\"handshake_p50_us\":%.1f,\"handshake_p99_us\":%.1f,"
           "\"connect_retries\":%" PRIu64 ",\"shutdowns\":%" PRIu64 ",\"closed_after_shutdown\":%" PRIu64 ",\"drain_ms\":%.1f,"
           "\"errors\":%" PRIu64 ",\"loadgen_cpu_s\":%.3f}\n",
           nconns, setup_done ? (double)(setup_done - t0) / 1e9 : -1.0, hist_pct_us(&hist, 0.5), hist_pct_us(&hist, 0.99), connect_retries,
           shutdowns_seen, closed_after_shutdown, drain_ms, total_errors(), cpu_total);
  } else {
    uint64_t count = cfg.mode == M_CHURN ? handshakes : replies;
    // fanout: what was published, what the server said it dropped, what the
    // reading subscribers were told they missed, the least and most one of
    // them got in the window, and what became of the stalled ones.
    char extra[1600] = "";
    if (cfg.mode == M_FANOUT) {
      uint64_t lo, hi;
      sub_range(&lo, &hi);
      // Times from the moment every stalled subscriber had subscribed; null: never.
      char cut_ms[32] = "null", drop_ms[32] = "null", wait_s[32] = "null";
      if (stalled_cut_first_ns) snprintf(cut_ms, sizeof cut_ms, "%.1f", ((double)stalled_cut_first_ns - (double)stall_subscribed_ns) / 1e6);
      if (first_drop_ns) snprintf(drop_ms, sizeof drop_ms, "%.1f", ((double)first_drop_ns - (double)stall_subscribed_ns) / 1e6);
      if (stall_subscribed_ns && window_start_ns > stall_subscribed_ns) snprintf(wait_s, sizeof wait_s, "%.3f", (double)(window_start_ns - stall_subscribed_ns) / 1e9);
      snprintf(extra, sizeof extra,
               ",\"batch\":%d,\"stalled\":%d,\"on_slow\":\"%s\",\"published\":%" PRIu64 ",\"published_window\":%" PRIu64 ","
               "\"published_since_stall\":%" PRIu64 ",\"pub_sent\":%" PRIu64 ",\"pub_dropped\":%" PRIu64 ",\"pub_dropped_window\":%" PRIu64 ","
               "\"missed_notices\":%" PRIu64 ",\"missed_total\":%" PRIu64 ",\"sub_min\":%" PRIu64 ",\"sub_max\":%" PRIu64 ","
               "\"stalled_cut\":%" PRIu64 ",\"stalled_cut_ms\":%s,\"first_drop_ms\":%s,\"stall_wait_s\":%s,\"stall_wait_capped\":%s,"
               "\"server_rss_kb\":%ld%s",
               cfg.batch, cfg.stalled, cfg.on_slow, published, published_window, two_windows ? published - published_at_stall : 0, pub_sent,
               pub_dropped, pub_dropped_window, missed_notices, missed_total, lo, hi, stalled_cut, cut_ms, drop_ms, wait_s,
               stall_wait_capped ? "true" : "false", rss_end_kb, alone);
    }
    printf("{\"mode\":\"%s\",\"conns\":%d,\"inflight\":%d,\"size\":%d,\"replies\":%" PRIu64 ",\"seconds\":%.3f,\"rate\":%.1f,"
           "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
           "\"errors\":%" PRIu64 ",\"err\":{\"connect\":%" PRIu64 ",\"io\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"reply\":%" PRIu64 ",\"order\":%" PRIu64 ",\"server\":%" PRIu64 "},"
           "\"connect_retries\":%" PRIu64 ",\"loadgen_cpu_s\":%.3f,\"loadgen_cpu_share\":%.3f,\"server_cpu_s\":%.3f,\"aux_cpu_s\":%.3f,\"machine_busy_s\":%.3f%s}\n",
           cfg.mode_name, cfg.conns, cfg.inflight, cfg.mode == M_CHURN ? 0 : cfg.size, count, secs, secs > 0 ? (double)count / secs : 0,
           hist_pct_us(&hist, 0.5), hist_pct_us(&hist, 0.9), hist_pct_us(&hist, 0.99), hist_pct_us(&hist, 0.999), (double)hist.max / 1000.0,
           total_errors(), err_connect, err_io, err_closed, err_reply, err_order, err_server, connect_retries, lg_cpu,
           secs > 0 ? lg_cpu / secs : 0, srv0 >= 0 && srv1 >= 0 ? srv1 - srv0 : -1.0, aux0 >= 0 && aux1 >= 0 ? aux1 - aux0 : -1.0,
           mach0 >= 0 && mach1 >= 0 ? mach1 - mach0 : -1.0, extra);
  }
  fflush(stdout);
  return setup_failed ? 2 : 0;
}
