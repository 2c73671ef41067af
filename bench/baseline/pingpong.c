// pingpong: the request/response client and server the latency suite runs over every path, in C
// so the tool itself adds no more than a syscall pair per message.
//   pingpong server PORT                 TCP and UDP echo on 0.0.0.0:PORT (one epoll thread); prints "ready"
//   pingpong udp IP PORT COUNT GAP_US    UDP round trips, one at a time with GAP_US idle between them
//   pingpong rr IP PORT MS               1-byte TCP ping-pong over one connection (netperf TCP_RR)
//   pingpong crr IP PORT MS THREADS      connect, 1-byte exchange, close, in THREADS parallel loops
// Clients print one JSON line; they exit non-zero with a message when the path carries nothing.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_NS 200000000LL
#define MAX_SAMPLES (1 << 22)

static void die(const char *what) {
  fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static struct sockaddr_in addr_of(const char *ip, const char *port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { fprintf(stderr, "pingpong: bad IPv4 address %s\n", ip); exit(2); }
  return a;
}

static int cmp_i64(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return (a > b) - (a < b);
}

// Sorts the samples in place; prints p50 and p99 in microseconds.
static void print_quantiles(int64_t *s, long n) {
  qsort(s, (size_t)n, sizeof *s, cmp_i64);
  printf("\"p50_us\":%.1f,\"p99_us\":%.1f", s[n / 2] / 1e3, s[(long)(n * 0.99)] / 1e3);
}

static void server(const char *port) {
  struct sockaddr_in a = addr_of("0.0.0.0", port);
  int one = 1;
  int lt = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), lu = socket(AF_INET, SOCK_DGRAM, 0);
  setsockopt(lt, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lt, (void *)&a, sizeof a) || listen(lt, 4096)) die("listen tcp");
  if (bind(lu, (void *)&a, sizeof a)) die("bind udp");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lt};
  epoll_ctl(ep, EPOLL_CTL_ADD, lt, &ev);
  ev.data.fd = lu;
  epoll_ctl(ep, EPOLL_CTL_ADD, lu, &ev);
  printf("ready\n");
  fflush(stdout);
  char buf[2048];
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lt) {
        int c;
        while ((c = accept4(lt, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
      } else if (fd == lu) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(lu, buf, sizeof buf, 0, (void *)&from, &fl);
        if (r > 0) sendto(lu, buf, (size_t)r, 0, (void *)&from, fl);
      } else {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) { if (write(fd, buf, (size_t)r) < 0) close(fd); }
        else if (r == 0 || errno != EAGAIN) close(fd);
      }
    }
  }
}

static void udp(const char *ip, const char *port, long count, long gap_us) {
  struct sockaddr_in a = addr_of(ip, port);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct timeval tv = {.tv_usec = 200000};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(s, (void *)&a, sizeof a)) die("udp connect");
  int64_t *rtt = malloc(sizeof(int64_t) * (size_t)count);
  long got = 0, lost = 0;
  for (long seq = 0; seq < count; seq++) {
    int64_t t0 = now_ns(), echo = -1;
    if (send(s, &seq, sizeof seq, 0) < 0) die("udp send");
    // Drops a late answer to an earlier probe: only this probe's echo counts.
    while (recv(s, &echo, sizeof echo, 0) == (ssize_t)sizeof echo && echo != seq) {}
    if (echo == seq) rtt[got++] = now_ns() - t0;
    else if (++lost > (got ? count / 10 : 2)) { fprintf(stderr, "pingpong: no UDP echo from %s:%s (%ld of %ld lost)\n", ip, port, lost, seq + 1); exit(1); }
    if (gap_us) usleep((useconds_t)gap_us);
  }
  printf("{\"count\":%ld,\"lost\":%ld,", got, lost);
  print_quantiles(rtt, got);
  printf("}\n");
}

static int tcp_connect(struct sockaddr_in *a) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct timeval tv = {.tv_sec = 2};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(s, (void *)a, sizeof *a)) { close(s); return -1; }
  return s;
}

static int exchange(int s) {
  char c = 'x';
  return write(s, &c, 1) == 1 && read(s, &c, 1) == 1 ? 0 : -1;
}

static void rr(const char *ip, const char *port, long ms) {
  struct sockaddr_in a = addr_of(ip, port);
  int s = tcp_connect(&a);
  if (s < 0) die("tcp connect");
  int64_t *lat = malloc(sizeof(int64_t) * MAX_SAMPLES);
  int64_t start = now_ns(), counting = start + WARMUP_NS, end = counting + ms * 1000000LL, t = start;
  long n = 0;
  while (t < end && n < MAX_SAMPLES) {
    int64_t t0 = t;
    if (exchange(s)) die("tcp ping-pong");
    t = now_ns();
    if (t0 >= counting) lat[n++] = t - t0;
  }
  if (n == 0) { fprintf(stderr, "pingpong: no TCP transaction to %s:%s completed\n", ip, port); exit(1); }
  printf("{\"tps\":%.1f,", n / ((t - counting) / 1e9));
  print_quantiles(lat, n);
  printf("}\n");
}

struct crr_arg { struct sockaddr_in a; int64_t counting, end; long ok, failed; };

static void *crr_loop(void *p) {
  struct crr_arg *c = p;
  for (int64_t t = now_ns(); t < c->end; t = now_ns()) {
    int s = tcp_connect(&c->a);
    int good = s >= 0 && exchange(s) == 0;
    if (s >= 0) close(s);
    if (t >= c->counting) good ? c->ok++ : c->failed++;
  }
  return NULL;
}

static void crr(const char *ip, const char *port, long ms, int threads) {
  struct crr_arg args[64];
  pthread_t tid[64];
  if (threads < 1 || threads > 64) { fprintf(stderr, "pingpong: THREADS must be 1..64\n"); exit(2); }
  int64_t counting = now_ns() + WARMUP_NS;
  long ok = 0, failed = 0;
  for (int i = 0; i < threads; i++) {
    args[i] = (struct crr_arg){addr_of(ip, port), counting, counting + ms * 1000000LL, 0, 0};
    if (pthread_create(&tid[i], NULL, crr_loop, &args[i])) die("pthread_create");
  }
  for (int i = 0; i < threads; i++) { pthread_join(tid[i], NULL); ok += args[i].ok; failed += args[i].failed; }
  if (ok == 0) { fprintf(stderr, "pingpong: no TCP connection to %s:%s completed (%ld failed)\n", ip, port, failed); exit(1); }
  printf("{\"cps\":%.1f,\"failed\":%ld}\n", ok / (ms / 1e3), failed);
}

int main(int argc, char **argv) {
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "server") && argc == 3) server(argv[2]);
  else if (!strcmp(m, "udp") && argc == 6) udp(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
  else if (!strcmp(m, "rr") && argc == 5) rr(argv[2], argv[3], atol(argv[4]));
  else if (!strcmp(m, "crr") && argc == 6) crr(argv[2], argv[3], atol(argv[4]), atoi(argv[5]));
  else { fprintf(stderr, "usage: pingpong server PORT | udp IP PORT COUNT GAP_US | rr IP PORT MS | crr IP PORT MS THREADS\n"); return 2; }
  return 0;
}
