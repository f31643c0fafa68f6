// creader: the kernel's limit for reading one UDP port, as a reference for
// shardd's benchmarks. It binds N SO_REUSEPORT sockets on one port before
// anything reads, then drains them with one pthread per socket (each pinned
// to its own CPU unless -P), recvmmsg in batches, sender addresses decoded.
//
//   cc -O2 -pthread -o creader creader.c
//   creader [-a 127.0.0.1] [-p PORT] [-n SOCKETS] [-b BATCH] [-r RCVBUF] [-t SECONDS] [-P] [-g]
//
// -g sets UDP_GRO on the sockets: the kernel may then hand one buffer of
// several datagrams of a flow (a GSO sender's over loopback), 64 KiB slots
// take it whole, and each buffer counts as the datagrams its UDP_GRO
// control message says (its length over the segment size, rounded up).
//
// Protocol (line based):
//   stdout  "ready PORT"        every socket is bound: fill the queues now
//   stdin   "go"                drain: each thread reads until its queue is
//                               empty (the queues must be full already)
//   stdin   "go N"              read until N datagrams in total have arrived
//                               (the sender may still be running)
//   stdout  "ELAPSED_NS COUNT DROPS CPU_NS"
//           ELAPSED_NS from "go" to the last thread's last datagram, COUNT
//           datagrams read, DROPS the sockets' kernel drop counters (SO_MEMINFO),
//           CPU_NS the process's CPU time (user and system) from "go" until
//           every thread is done.
// Every wait is bounded by -t seconds; an alarm kills the process a few
// seconds later whatever happens.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#define MEMINFO_DROPS 8 // SK_MEMINFO_DROPS in linux/sock_diag.h
#define MEMINFO_VARS 9
#define SLOT 2048
#define GROSLOT 65536
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define MAXSOCKS 256
#define MAXBATCH 1024

struct reader {
	pthread_t th;
	int fd;
	int cpu; // -1: not pinned
	long long count;
	long long end_ns;
	int err;
};

static int batch = 64;
static int gro; // -g: UDP_GRO on, buffers counted by their segments
static long long total; // 0: drain until empty
static long long deadline_ns;
static long long received; // shared across threads in "go N" mode only
static pthread_barrier_t start_barrier;

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// cpu_ns is the CPU time (user and system) the process has used.
static long long cpu_ns(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static void die(const char *what) {
	fprintf(stderr, "creader: %s: %s\n", what, strerror(errno));
	exit(1);
}

// segments counts the datagrams in n received buffers: a buffer with a
// UDP_GRO message of segment size s holds ceil(len/s), any other one.
static long long segments(struct mmsghdr *msgs, int n) {
	long long c = 0;
	for (int i = 0; i < n; i++) {
		struct msghdr *h = &msgs[i].msg_hdr;
		int seg = 0;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm)) {
			if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
				memcpy(&seg, CMSG_DATA(cm), sizeof seg);
			}
		}
		unsigned len = msgs[i].msg_len;
		c += (seg > 0 && len > (unsigned)seg) ? (len + seg - 1) / seg : 1;
	}
	return c;
}

static void *run(void *arg) {
	struct reader *r = arg;
	if (r->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
		if (e != 0) {
			fprintf(stderr, "creader: pin to CPU %d: %s\n", r->cpu, strerror(e));
		}
	}
	struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
	struct iovec *iovs = calloc(batch, sizeof *iovs);
	struct sockaddr_in6 *names = calloc(batch, sizeof *names);
	size_t slot = gro ? GROSLOT : SLOT, cspace = CMSG_SPACE(sizeof(int));
	char *bufs = malloc((size_t)batch * slot);
	char *ctrl = calloc(batch, cspace);
	if (!msgs || !iovs || !names || !bufs || !ctrl) {
		die("malloc");
	}
	memset(bufs, 0, (size_t)batch * slot); // fault the pages in before the clock starts
	for (int i = 0; i < batch; i++) {
		iovs[i].iov_base = bufs + (size_t)i * slot;
		iovs[i].iov_len = slot;
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &names[i];
	}
	pthread_barrier_wait(&start_barrier);

	int flags = total ? 0 : MSG_DONTWAIT;
	for (;;) {
		for (int i = 0; i < batch; i++) {
			msgs[i].msg_hdr.msg_namelen = sizeof names[i];
			if (gro) {
				msgs[i].msg_hdr.msg_control = ctrl + (size_t)i * cspace;
				msgs[i].msg_hdr.msg_controllen = cspace;
			}
		}
		int n = recvmmsg(r->fd, msgs, batch, flags, NULL);
		if (n > 0) {
			long long dgrams = gro ? segments(msgs, n) : n;
			r->count += dgrams;
			if (total && __atomic_add_fetch(&received, dgrams, __ATOMIC_RELAXED) >= total) {
				break;
			}
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!total) {
				break; // drain mode: the queue is empty, so this socket is done
			}
			// "go N": a receive timeout tick; look at the total and the clock
			if (__atomic_load_n(&received, __ATOMIC_RELAXED) >= total) {
				break;
			}
		} else if (n < 0) {
			r->err = errno;
			break;
		}
		if (now_ns() > deadline_ns) {
			break;
		}
	}
	r->end_ns = now_ns();
	free(ctrl);
	free(bufs);
	free(names);
	free(iovs);
	free(msgs);
	return NULL;
}

int main(int argc, char **argv) {
	const char *addr = "127.0.0.1";
	int port = 0, nsocks = 2, pin = 1, timeout = 30;
	int rcvbuf = 0;
	int opt;
	while ((opt = getopt(argc, argv, "a:p:n:b:r:t:Pg")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'n': nsocks = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		case 'r': rcvbuf = atoi(optarg); break;
		case 't': timeout = atoi(optarg); break;
		case 'P': pin = 0; break;
		case 'g': gro = 1; break;
		default:
			fprintf(stderr, "usage: creader [-a ADDR] [-p PORT] [-n SOCKETS] [-b BATCH] [-r RCVBUF] [-t SECONDS] [-P] [-g]\n");
			return 2;
		}
	}
	if (nsocks < 1 || nsocks > MAXSOCKS || batch < 1 || batch > MAXBATCH || timeout < 1) {
		fprintf(stderr, "creader: bad -n, -b or -t\n");
		return 2;
	}
	alarm(timeout + 5); // whatever happens, this process ends

	cpu_set_t allowed;
	int cpus[CPU_SETSIZE], ncpu = 0;
	if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
		die("sched_getaffinity");
	}
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &allowed)) {
			cpus[ncpu++] = c;
		}
	}

	static struct reader readers[MAXSOCKS];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "creader: %s is not an IPv4 address\n", addr);
		return 2;
	}
	for (int i = 0; i < nsocks; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			die("socket");
		}
		int one = 1;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
			die("SO_REUSEPORT");
		}
		if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
			die("SO_RCVBUF");
		}
		if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) != 0) {
			die("UDP_GRO");
		}
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
			die("bind");
		}
		if (i == 0) {
			socklen_t l = sizeof sa;
			if (getsockname(fd, (struct sockaddr *)&sa, &l) != 0) {
				die("getsockname");
			}
		}
		readers[i].fd = fd;
		readers[i].cpu = pin ? cpus[i % ncpu] : -1;
	}

	if (pthread_barrier_init(&start_barrier, NULL, nsocks + 1) != 0) {
		die("pthread_barrier_init");
	}
	for (int i = 0; i < nsocks; i++) {
		if (pthread_create(&readers[i].th, NULL, run, &readers[i]) != 0) {
			die("pthread_create");
		}
	}
	printf("ready %d\n", ntohs(sa.sin_port));
	fflush(stdout);

	char line[128];
	if (!fgets(line, sizeof line, stdin) || strncmp(line, "go", 2) != 0) {
		fprintf(stderr, "creader: expected \"go\" or \"go N\" on stdin\n");
		return 1;
	}
	total = atoll(line + 2);
	if (total > 0) {
		// Blocking reads wake up every 50 ms to look at the total and the clock.
		struct timeval tv = {.tv_sec = 0, .tv_usec = 50000};
		for (int i = 0; i < nsocks; i++) {
			setsockopt(readers[i].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		}
	}
	long long start = now_ns(), cpu0 = cpu_ns();
	deadline_ns = start + (long long)timeout * 1000000000LL;
	pthread_barrier_wait(&start_barrier);

	long long end = start, count = 0, drops = 0;
	for (int i = 0; i < nsocks; i++) {
		pthread_join(readers[i].th, NULL);
		struct reader *r = &readers[i];
		if (r->err) {
			fprintf(stderr, "creader: socket %d: recvmmsg: %s\n", i, strerror(r->err));
		}
		if (r->end_ns > end) {
			end = r->end_ns;
		}
		count += r->count;
		uint32_t mem[MEMINFO_VARS] = {0};
		socklen_t l = sizeof mem;
		if (getsockopt(r->fd, SOL_SOCKET, SO_MEMINFO, mem, &l) == 0 && l > MEMINFO_DROPS * sizeof mem[0]) {
			drops += mem[MEMINFO_DROPS];
		}
		close(r->fd);
	}
	printf("%lld %lld %lld %lld\n", end - start, count, drops, cpu_ns() - cpu0);
	fflush(stdout);
	return 0;
}
