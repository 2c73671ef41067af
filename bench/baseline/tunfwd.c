// tunfwd NETNS_A NETNS_B: the floor for any TUN design. Creates a TUN eth0 (IFF_TUN|IFF_NO_PI) in
// each named network namespace, then copies packets between the two fds with blocking reads, one
// thread per direction. Prints "ready" once both devices exist; runs until killed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
  fprintf(stderr, "tunfwd: %s %s: %s\n", what, arg, strerror(errno));
  exit(1);
}

// Enters the namespace only to create the device: a TUN device stays in the namespace it was made in.
static int tun_in(const char *ns, int home) {
  char path[256];
  snprintf(path, sizeof path, "/var/run/netns/%s", ns);
  int nsfd = open(path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) die("open", path);
  if (setns(nsfd, CLONE_NEWNET) < 0) die("setns", path);
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun in", ns);
  struct ifreq ifr = {0};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strcpy(ifr.ifr_name, "eth0");
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF eth0 in", ns);
  if (setns(home, CLONE_NEWNET) < 0) die("setns back from", ns);
  close(nsfd);
  return fd;
}

struct pair { int from, to; };

static void *copy(void *arg) {
  struct pair *p = arg;
  static __thread char buf[65536];
  for (;;) {
    ssize_t n = read(p->from, buf, sizeof buf);
    if (n < 0) { if (errno == EINTR) continue; die("read", "tun"); }
    // A full queue on the other side drops the packet, as a NIC would.
    if (write(p->to, buf, (size_t)n) < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EIO) die("write", "tun");
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: tunfwd NETNS_A NETNS_B\n"); return 2; }
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) die("open", "/proc/self/ns/net");
  int a = tun_in(argv[1], home), b = tun_in(argv[2], home);
  struct pair ab = {a, b}, ba = {b, a};
  pthread_t t1, t2;
  if (pthread_create(&t1, NULL, copy, &ab) || pthread_create(&t2, NULL, copy, &ba)) die("pthread_create", "");
  printf("ready\n");
  fflush(stdout);
  pthread_join(t1, NULL);
  return 0;
}
