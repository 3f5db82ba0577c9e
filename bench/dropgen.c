// dropgen: make the kernel drop packets, fast or an exact number of times.
//
//   cc -O2 -Wall -o dropgen dropgen.c
//   dropgen -m ethproto -d 5 -P 2          # drop storm on lo for 5 s, 2 processes
//   dropgen -m noport -n 100 -a 10.0.0.2   # exactly 100 UDP datagrams to a closed port
//
// Modes:
//   ethproto  Ethernet frames with EtherType 0x88b5 (IEEE local experimental)
//             on an interface (-i, default lo) via AF_PACKET: nothing handles
//             them -> UNHANDLED_PROTO in __netif_receive_skb_core.
//   noport    UDP to a closed port (-p, default 9)          -> NO_SOCKET
//   rcvbuf    UDP to a socket of minimal SO_RCVBUF that this
//             program binds on -a:-p and never reads           -> SOCKET_RCVBUFF
//   udp       UDP to -a:-p, nothing else (e.g. an nft drop rule set up by the caller)
//   listen    TCP: a listener on -a:-p with backlog 1 that never accepts, and
//             -n connection attempts to it: the accept queue overflows
//             (TcpExt:ListenOverflows, ListenDrops); -n only
// Options for the UDP modes: -l LEN payload bytes (default 16; above the MTU
// the datagram leaves as IP fragments in one burst), -s ADDR source address
// to bind (it must be local: e.g. to look like another network for rp_filter),
// -g SEG UDP GSO: each datagram of -l bytes leaves as segments of SEG bytes,
// handed to the device in one burst (with the device's own UDP segmentation
// off, they all reach the receive backlog at once), -A PORT every other
// datagram goes to PORT instead (two drop points taking turns on one CPU).
// -r PPS paces each process to PPS packets a second, in bursts of at most 16:
// scenarios that must make one cause only use it so that a slow or loaded
// machine does not also overflow the receive backlog (a second cause).
// Traffic goes only where -a/-i say (default 127.0.0.1 / lo). Every loop is
// bounded by -n or -d, and alarm() stops the process in any case.
// Output: one line of key=value pairs; ns_per_pkt is sender CPU per packet
// (on loopback the receive path, hence the drop, runs in the sender's context).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void usage(void) {
  fprintf(stderr, "usage: dropgen -m ethproto|noport|rcvbuf|udp|listen [-d secs | -n count] [-P procs]\n"
                  "               [-a ipv4addr] [-p port] [-A alt_port] [-i ifname] [-c first_cpu|-1] [-l len] [-s srcaddr] [-g gso_seg] [-r pps]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *mode = "ethproto", *addr = "127.0.0.1", *ifname = "lo", *src = NULL;
  int len = 16, gso = 0;
  double dur = 0, rate = 0;
  long long count = 0;
  int procs = 1, port = -1, alt_port = -1, first_cpu = -1, o;
  while ((o = getopt(argc, argv, "m:d:n:P:a:p:A:i:c:l:s:g:r:h")) != -1) {
    switch (o) {
      case 'm': mode = optarg; break;
      case 'd': dur = atof(optarg); break;
      case 'n': count = atoll(optarg); break;
      case 'P': procs = atoi(optarg); break;
      case 'a': addr = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'A': alt_port = atoi(optarg); break;
      case 'i': ifname = optarg; break;
      case 'c': first_cpu = atoi(optarg); break;
      case 'l': len = atoi(optarg); break;
      case 's': src = optarg; break;
      case 'g': gso = atoi(optarg); break;
      case 'r': rate = atof(optarg); break;
      default: usage();
    }
  }
  int eth = !strcmp(mode, "ethproto"), noport = !strcmp(mode, "noport"), rcvbuf = !strcmp(mode, "rcvbuf"),
      udp = !strcmp(mode, "udp"), listen_mode = !strcmp(mode, "listen");
  if (!(eth || noport || rcvbuf || udp || listen_mode) || procs < 1 || procs > 64 || (dur <= 0) == (count <= 0) ||
      dur > 600 || count > 1000000000LL || len < 1 || len > 65000 || rate < 0 || rate > 1e8 || (listen_mode && (count <= 0 || count > 100000)))
    usage();
  if (port < 0) port = noport ? 9 : 47001;
  if (alt_port > 65535 || (alt_port >= 0 && (eth || listen_mode))) usage();
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, addr, &dst.sin_addr) != 1) usage();
  struct sockaddr_in alt = dst;
  if (alt_port >= 0) alt.sin_port = htons(alt_port);
  alarm((unsigned)(dur > 0 ? dur + 30 : 120));
  struct sockaddr_in srcaddr = {.sin_family = AF_INET};
  if (src && inet_pton(AF_INET, src, &srcaddr.sin_addr) != 1) usage();

  if (listen_mode) {  // accept-queue overflow: all in this process, no fork
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&dst, sizeof dst) < 0 || listen(l, 1) < 0) { perror("listen"); return 1; }
    int *fds = calloc((size_t)count, sizeof(int));
    long long made = 0;
    double t0 = now();
    for (long long i = 0; i < count; i++) {
      int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (c < 0) break;  // out of descriptors: stop early, report what was made
      if (connect(c, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) { close(c); continue; }
      fds[made++] = c;
    }
    usleep(200000);  // let the handshakes and the first SYN retransmits happen
    for (long long i = 0; i < made; i++) close(fds[i]);
    close(l);
    double el = now() - t0;
    printf("mode=listen procs=1 elapsed=%.3f sent=%lld pps=%.0f cpu_s=0 ns_per_pkt=0\n", el, made, made / el);
    return 0;
  }

  int rfd = -1;
  if (rcvbuf) {  // the receiver that never reads
    rfd = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    setsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &one, sizeof one);  // the kernel clamps it to its minimum
    if (bind(rfd, (struct sockaddr *)&dst, sizeof dst) < 0) { perror("bind receiver"); return 1; }
  }
  int ifindex = 0;
  if (eth && !(ifindex = if_nametoindex(ifname))) { perror(ifname); return 1; }

  // shared result slots: packets and CPU per worker
  long long *sent = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  double t0 = now();
  pid_t parent = getpid();
  for (int w = 0; w < procs; w++) {
    if (fork() != 0) continue;
    // A sender never outlives its parent: killed (SIGKILL gives it no chance to pass it on), it would
    // flood for the rest of its duration, and keep its network namespace alive after `ip netns delete`.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    if (first_cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(first_cpu + w, &set);
      sched_setaffinity(0, sizeof set, &set);
    }
    static unsigned char frame[65536];
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = ETH_ALEN};
    int fd;
    if (eth) {
      fd = socket(AF_PACKET, SOCK_RAW, 0);  // protocol 0: send only, receive nothing
      if (fd < 0) { perror("AF_PACKET socket"); _exit(1); }
      int one = 1;
      setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
      memset(frame, 0, 64);
      memset(frame, 0xff, 6);               // broadcast destination
      frame[6] = 0x02; frame[11] = 0x01;    // locally administered source
      frame[12] = 0x88; frame[13] = 0xb5;   // EtherType: local experimental
      memcpy(ll.sll_addr, frame, 6);
    } else {
      fd = socket(AF_INET, SOCK_DGRAM, 0);
      if (fd < 0) { perror("UDP socket"); _exit(1); }
      if (src && bind(fd, (struct sockaddr *)&srcaddr, sizeof srcaddr) < 0) { perror("bind source"); _exit(1); }
      int pmtu = IP_PMTUDISC_DONT;  // let large datagrams fragment
      setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
      if (gso > 0 && setsockopt(fd, IPPROTO_UDP, 103 /* UDP_SEGMENT */, &gso, sizeof gso) < 0) { perror("UDP_SEGMENT"); _exit(1); }
    }
    struct mmsghdr msgs[BATCH];
    if (!eth) memset(frame, 0xab, (size_t)len);
    struct iovec iov = {.iov_base = frame, .iov_len = eth ? 60 : (size_t)len};
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
      msgs[i].msg_hdr.msg_iov = &iov;
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = eth ? (void *)&ll : (void *)(i % 2 ? &alt : &dst);  // BATCH is even: turns survive batches
      msgs[i].msg_hdr.msg_namelen = eth ? sizeof ll : sizeof dst;
    }
    // with -n, each worker sends its share; the first takes the remainder
    long long quota = count > 0 ? count / procs + (w == 0 ? count % procs : 0) : -1, n = 0;
    double end = t0 + dur;
    double start = now();
    while (quota < 0 ? now() < end : n < quota) {
      int b = rate > 0 ? 16 : BATCH;
      if (quota >= 0 && quota - n < b) b = (int)(quota - n);
      if (rate > 0) {  // ahead of the pace: sleep until the next burst is due
        double due = start + n / rate, ahead = due - now();
        if (ahead > 0) {
          struct timespec ts = {.tv_sec = (time_t)ahead, .tv_nsec = (long)((ahead - (time_t)ahead) * 1e9)};
          nanosleep(&ts, NULL);
        }
      }
      int r = sendmmsg(fd, msgs, b, 0);
      if (r < 0) {
        if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
        if (errno == ECONNREFUSED) continue;  // ICMP port unreachable came back on a UDP socket
        perror("sendmmsg");
        _exit(1);
      }
      n += r;
    }
    sent[w] = n;
    _exit(0);
  }
  int failed = 0, st;
  while (wait(&st) > 0)
    if (!WIFEXITED(st) || WEXITSTATUS(st)) failed = 1;
  double el = now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  long long total = 0;
  for (int w = 0; w < procs; w++) total += sent[w];
  printf("mode=%s procs=%d elapsed=%.3f sent=%lld pps=%.0f cpu_s=%.3f ns_per_pkt=%.1f\n", mode, procs, el, total,
         total / el, cpu, total ? cpu * 1e9 / total : 0);
  if (rfd >= 0) close(rfd);
  return failed;
}
