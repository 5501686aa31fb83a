/*
 * bench_owner.c: what a C program pays to ask "who owns this key?".
 *
 *   bench_owner SOCKET [CALLS]
 *
 * Prints, in one run on the same machine:
 *   raw     a Unix-socket ping-pong (32 bytes each way) between two threads: the floor that any
 *           request over a local socket pays (two wake-ups, four syscalls);
 *   socket  ringraft_owner() answered by the daemon, 1 thread and 4 threads sharing one client
 *           (requests pipelined on its connection): p50, p99, calls per second;
 *   cached  ringraft_owner() with the ring cache on: ns per call.
 * Build: make -C bindings/c bench (or cc bench_owner.c -lringraft -lpthread -lm).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ringraft.h"

#define KEYS 4096

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *sorted, size_t n, double p) {
    size_t i = (size_t)(p * (double)(n - 1));
    return sorted[i];
}

static void report(const char *label, double *latencies_ns, size_t n, double elapsed_ns) {
    qsort(latencies_ns, n, sizeof *latencies_ns, compare_double);
    printf("%-28s p50 %7.1f us  p99 %7.1f us  %9.0f calls/s  (%zu calls)\n", label,
           percentile(latencies_ns, n, 0.50) / 1e3, percentile(latencies_ns, n, 0.99) / 1e3,
           (double)n / (elapsed_ns / 1e9), n);
}

/* ---- raw ping-pong ---- */

static void *echo_main(void *arg) {
    int fd = *(int *)arg;
    char buf[32];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        if (write(fd, buf, (size_t)n) != n) break;
    }
    return NULL;
}

static void bench_raw(size_t calls) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
        perror("socketpair");
        exit(1);
    }
    pthread_t echo;
    pthread_create(&echo, NULL, echo_main, &fds[1]);
    double *lat = malloc(calls * sizeof *lat);
    char buf[32] = {0};
    double start = now_ns();
    for (size_t i = 0; i < calls; i++) {
        double t0 = now_ns();
        if (write(fds[0], buf, sizeof buf) != (ssize_t)sizeof buf) exit(1);
        size_t got = 0;
        while (got < sizeof buf) {
            ssize_t n = read(fds[0], buf + got, sizeof buf - got);
            if (n <= 0) exit(1);
            got += (size_t)n;
        }
        lat[i] = now_ns() - t0;
    }
    report("raw unix ping-pong", lat, calls, now_ns() - start);
    shutdown(fds[0], SHUT_RDWR);
    pthread_join(echo, NULL);
    close(fds[0]);
    close(fds[1]);
    free(lat);
}

/* ---- owner through the socket ---- */

static char keys[KEYS][24];
static size_t key_lens[KEYS];

struct worker {
    ringraft_client *client;
    size_t calls;
    size_t offset;
    double *lat;
    int errors;
};

static void *owner_worker(void *arg) {
    struct worker *w = arg;
    ringraft_node node;
    for (size_t i = 0; i < w->calls; i++) {
        size_t k = (i + w->offset) % KEYS;
        double t0 = now_ns();
        if (ringraft_owner(w->client, (const uint8_t *)keys[k], key_lens[k], &node) != RINGRAFT_OK)
            w->errors++;
        w->lat[i] = now_ns() - t0;
    }
    return NULL;
}

static void bench_socket(ringraft_client *client, int threads, size_t calls_per_thread, int print) {
    pthread_t tid[16];
    struct worker workers[16];
    double *all = malloc((size_t)threads * calls_per_thread * sizeof *all);
    double start = now_ns();
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){client, calls_per_thread, (size_t)t * 977, all + (size_t)t * calls_per_thread, 0};
        pthread_create(&tid[t], NULL, owner_worker, &workers[t]);
    }
    int errors = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        errors += workers[t].errors;
    }
    double elapsed = now_ns() - start;
    char label[64];
    snprintf(label, sizeof label, "socket owner, %d thread%s", threads, threads == 1 ? "" : "s");
    if (print) report(label, all, (size_t)threads * calls_per_thread, elapsed);
    if (errors) fprintf(stderr, "%d calls failed: %s\n", errors, ringraft_last_error(client));
    free(all);
}

static void bench_cached(ringraft_client *client, size_t calls) {
    if (ringraft_enable_ring_cache(client, 1000) != RINGRAFT_OK) {
        fprintf(stderr, "enable_ring_cache: %s\n", ringraft_last_error(client));
        return;
    }
    ringraft_node node;
    uint64_t checksum = 0;
    double start = now_ns();
    for (size_t i = 0; i < calls; i++) {
        size_t k = i % KEYS;
        ringraft_owner(client, (const uint8_t *)keys[k], key_lens[k], &node);
        checksum += node.id;
    }
    double elapsed = now_ns() - start;
    printf("%-28s %7.1f ns/call  (%zu calls, checksum %llu)\n", "cached owner, 1 thread",
           elapsed / (double)calls, calls, (unsigned long long)checksum);
    ringraft_disable_ring_cache(client);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SOCKET [CALLS]\n", argv[0]);
        return 2;
    }
    size_t calls = argc > 2 ? strtoul(argv[2], NULL, 10) : 50000;
    for (int k = 0; k < KEYS; k++) key_lens[k] = (size_t)snprintf(keys[k], sizeof keys[k], "user:%d", k);

    ringraft_client *client = NULL;
    if (ringraft_connect(argv[1], &client) != RINGRAFT_OK) {
        fprintf(stderr, "connect: %s\n", ringraft_last_error(NULL));
        return 1;
    }
    printf("libringraft %s, %zu calls per measurement\n", ringraft_version(), calls);
    bench_raw(calls);
    bench_socket(client, 1, calls / 10, 0); /* warm-up */
    bench_socket(client, 1, calls, 1);
    bench_socket(client, 4, calls / 4, 1);
    bench_raw(calls);
    bench_cached(client, calls * 100);
    ringraft_close(client);
    return 0;
}
