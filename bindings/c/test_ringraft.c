/*
 * test_ringraft.c: the C test suite of libringraft, in plain C.
 *
 * Run by run-tests.sh against a live 3-node `ringraftd dev` cluster, which it describes with:
 *   RINGRAFT_TEST_DIR        the cluster directory (node i listens on DIR/n<i>/ringraftd.sock)
 *   RINGRAFT_TEST_KILL_CMD   shell command that kills node 1 (kill -9 of its pid file)
 *   RINGRAFT_TEST_START_CMD  shell command that starts node 1 again, as the dev launcher did
 * Without RINGRAFT_TEST_DIR only the tests that need no cluster run (and the others count as
 * skipped). With an argument, only the tests whose name contains it run (`test_ringraft kv_`).
 * The last line of output is "N passed, N failed, N skipped".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ringraft.h"

/* The one-integer version agrees with its three parts (checked when the test compiles). */
#if RINGRAFT_VERSION_NUMBER != \
    RINGRAFT_VERSION_MAJOR * 1000000 + RINGRAFT_VERSION_MINOR * 1000 + RINGRAFT_VERSION_PATCH
#error "RINGRAFT_VERSION_NUMBER does not match RINGRAFT_VERSION_MAJOR.MINOR.PATCH"
#endif

/* The register entry is part of the ABI: two pointer-sized fields and two 64-bit ones, no padding;
 * "any version" is the largest 64-bit value. */
_Static_assert(sizeof(ringraft_kv_entry) == 2 * sizeof(void *) + 2 * sizeof(uint64_t),
               "ringraft_kv_entry has padding");
_Static_assert(RINGRAFT_KV_ANY_VERSION == UINT64_MAX, "RINGRAFT_KV_ANY_VERSION is UINT64_MAX");

static int tests_passed, tests_failed, tests_skipped;
static const char *test_filter;
static int current_failed;
static const char *cluster_dir;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            current_failed = 1;                                                   \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

#define CHECK_STATUS(expected, call, client)                                            \
    do {                                                                                \
        ringraft_status got_ = (call);                                                  \
        CHECK(got_ == (expected), "%s returned %s (%d), expected %s; last error: %s", \
              #call, ringraft_strerror(got_), (int)got_, ringraft_strerror(expected),   \
              ringraft_last_error(client));                                             \
    } while (0)

static void run_test(const char *name, void (*test)(void), int needs_cluster) {
    if (test_filter != NULL && strstr(name, test_filter) == NULL) return;
    if (needs_cluster && cluster_dir == NULL) {
        printf("SKIP %s (no cluster)\n", name);
        tests_skipped++;
        return;
    }
    current_failed = 0;
    test();
    printf("%s %s\n", current_failed ? "FAIL" : "ok  ", name);
    fflush(stdout);
    if (current_failed)
        tests_failed++;
    else
        tests_passed++;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void socket_of(int node, char *out, size_t cap) {
    snprintf(out, cap, "%s/n%d/ringraftd.sock", cluster_dir, node);
}

static ringraft_client *connect_node(int node) {
    char path[512];
    socket_of(node, path, sizeof path);
    ringraft_client *client = NULL;
    ringraft_status status = ringraft_connect(path, &client);
    CHECK(status == RINGRAFT_OK, "connect %s: %s", path, ringraft_last_error(NULL));
    return client;
}

/* Connects to `node`, retrying until `seconds` pass (for a node that is starting). */
static ringraft_client *connect_node_within(int node, double seconds) {
    char path[512];
    socket_of(node, path, sizeof path);
    double deadline = now_seconds() + seconds;
    for (;;) {
        ringraft_client *client = NULL;
        if (ringraft_connect(path, &client) == RINGRAFT_OK) return client;
        if (now_seconds() > deadline) return NULL;
        usleep(50 * 1000);
    }
}

/* ---- tests that need no cluster ---------------------------------------------------------- */

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", RINGRAFT_VERSION_MAJOR, RINGRAFT_VERSION_MINOR,
             RINGRAFT_VERSION_PATCH);
    CHECK(strcmp(ringraft_version(), expected) == 0, "version %s, header %s", ringraft_version(),
          expected);
}

static void test_strerror(void) {
    CHECK(strcmp(ringraft_strerror(RINGRAFT_OK), "success") == 0, "%s",
          ringraft_strerror(RINGRAFT_OK));
    CHECK(strcmp(ringraft_strerror(RINGRAFT_UNAVAILABLE), "daemon unavailable") == 0, "%s",
          ringraft_strerror(RINGRAFT_UNAVAILABLE));
    CHECK(RINGRAFT_REMOVED == 19, "RINGRAFT_REMOVED is %d", (int)RINGRAFT_REMOVED);
    CHECK(strcmp(ringraft_strerror(RINGRAFT_REMOVED), "this node was removed from the cluster") == 0,
          "%s", ringraft_strerror(RINGRAFT_REMOVED));
    for (int code = RINGRAFT_OK; code <= RINGRAFT_REMOVED; code++) {
        const char *text = ringraft_strerror((ringraft_status)code);
        CHECK(text != NULL && text[0] != '\0' && strcmp(text, "unknown status") != 0,
              "code %d has no description", code);
    }
    CHECK(strcmp(ringraft_strerror((ringraft_status)9999), "unknown status") == 0, "%s",
          ringraft_strerror((ringraft_status)9999));
}

static void test_connect_daemon_down(void) {
    ringraft_client *client = (ringraft_client *)0x1;
    CHECK_STATUS(RINGRAFT_UNAVAILABLE,
                 ringraft_connect("/nonexistent-ringraft-dir/ringraftd.sock", &client), NULL);
    CHECK(client == NULL, "out must be NULL after a failed connect");
    CHECK(strstr(ringraft_last_error(NULL), "/nonexistent-ringraft-dir") != NULL,
          "message should name the path: %s", ringraft_last_error(NULL));
}

static void test_null_arguments_without_client(void) {
    ringraft_client *client = NULL;
    ringraft_node node;
    size_t count = 0;
    uint64_t index = 0;
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_connect(NULL, &client), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_connect("/tmp/x.sock", NULL), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_connect("", &client), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_owner(NULL, (const uint8_t *)"k", 1, &node),
                 NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT,
                 ringraft_replicas(NULL, (const uint8_t *)"k", 1, 3, &node, &count), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_propose(NULL, (const uint8_t *)"d", 1, 10, &index),
                 NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_cluster_status(NULL, NULL), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_set_timeout(NULL, 10), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_watch_next(NULL, 10, NULL), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_ring_view_owner(NULL, (const uint8_t *)"k", 1, &node),
                 NULL);
    CHECK(strstr(ringraft_last_error(NULL), "NULL") != NULL, "%s", ringraft_last_error(NULL));
    /* Destructors accept NULL. */
    ringraft_close(NULL);
    ringraft_watch_close(NULL);
    ringraft_ring_view_free(NULL);
    ringraft_log_batch_free(NULL);
    CHECK(ringraft_ring_view_epoch(NULL) == 0, "epoch of NULL view");
}

/* A scripted stand-in for a daemon: answers the hello with `hello` (hello_len bytes; 0 sends
 * nothing) and then never says anything else. */
struct silent_server {
    char path[96];
    int listen_fd;
    unsigned char hello[26];
    size_t hello_len;
    pthread_t thread;
};

static void *silent_server_main(void *arg) {
    struct silent_server *server = arg;
    int fd = accept(server->listen_fd, NULL, NULL);
    if (fd < 0) return NULL;
    unsigned char client_hello[12];
    size_t got = 0;
    while (got < sizeof client_hello) {
        ssize_t n = read(fd, client_hello + got, sizeof client_hello - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (server->hello_len > 0 && write(fd, server->hello, server->hello_len) < 0) {
        close(fd);
        return NULL;
    }
    char sink[4096];
    while (read(fd, sink, sizeof sink) > 0) {
    }
    close(fd);
    return NULL;
}

static int silent_server_start(struct silent_server *server, uint32_t hello_status, int garbage) {
    static int counter;
    snprintf(server->path, sizeof server->path, "/tmp/ringraft-c-test-%d-%d.sock", (int)getpid(),
             counter++);
    unlink(server->path);
    server->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, server->path, strlen(server->path) + 1);
    if (bind(server->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(server->listen_fd, 4) != 0) {
        close(server->listen_fd);
        return -1;
    }
    memcpy(server->hello, garbage ? "HTTP/1.1 200 O" : "RINGRAFT", garbage ? 14 : 8);
    server->hello_len = 14;
    if (!garbage) {
        server->hello[8] = 4; /* the protocol version this library speaks (proto PROTOCOL_VERSION) */
        server->hello[9] = 0;
        for (int i = 0; i < 4; i++) server->hello[10 + i] = (unsigned char)(hello_status >> (8 * i));
        if (hello_status == RINGRAFT_OK) {
            /* Since version 3 the limits follow an ok: frame_bytes_max, proposal_bytes_max,
             * kv_value_bytes_max. */
            const uint32_t limits[3] = {1u << 20, 1u << 16, 1u << 16};
            for (int l = 0; l < 3; l++)
                for (int i = 0; i < 4; i++)
                    server->hello[14 + 4 * l + i] = (unsigned char)(limits[l] >> (8 * i));
            server->hello_len = 26;
        }
    }
    return pthread_create(&server->thread, NULL, silent_server_main, server);
}

static void silent_server_stop(struct silent_server *server) {
    shutdown(server->listen_fd, SHUT_RDWR);
    pthread_join(server->thread, NULL);
    close(server->listen_fd);
    unlink(server->path);
}

static void test_timeouts(void) {
    struct silent_server server;
    CHECK(silent_server_start(&server, RINGRAFT_OK, 0) == 0, "server start");
    ringraft_client *client = NULL;
    CHECK_STATUS(RINGRAFT_OK, ringraft_connect(server.path, &client), NULL);
    if (client != NULL) {
        CHECK_STATUS(RINGRAFT_OK, ringraft_set_timeout(client, 100), client);
        ringraft_node node;
        double started = now_seconds();
        CHECK_STATUS(RINGRAFT_TIMEOUT, ringraft_owner(client, (const uint8_t *)"k", 1, &node), client);
        CHECK(now_seconds() - started >= 0.09, "returned before its timeout");
        uint64_t index = 0;
        CHECK_STATUS(RINGRAFT_TIMEOUT, ringraft_propose(client, (const uint8_t *)"d", 1, 50, &index),
                     client);
        ringraft_cluster_info info;
        CHECK_STATUS(RINGRAFT_TIMEOUT, ringraft_cluster_status(client, &info), client);
        /* A watch waits for the daemon to accept it. */
        ringraft_watch *watch = NULL;
        CHECK_STATUS(RINGRAFT_TIMEOUT, ringraft_watch_log(client, 1, &watch), client);
        CHECK(watch == NULL, "a watch that timed out is NULL");
        ringraft_close(client);
    }
    silent_server_stop(&server);
}

static void test_handshake_refusals(void) {
    struct silent_server server;
    ringraft_client *client = NULL;
    CHECK(silent_server_start(&server, RINGRAFT_UNSUPPORTED_VERSION, 0) == 0, "server start");
    CHECK_STATUS(RINGRAFT_UNSUPPORTED_VERSION, ringraft_connect(server.path, &client), NULL);
    CHECK(strstr(ringraft_last_error(NULL), "version") != NULL, "%s", ringraft_last_error(NULL));
    silent_server_stop(&server);

    CHECK(silent_server_start(&server, 0, 1) == 0, "server start");
    CHECK_STATUS(RINGRAFT_MALFORMED, ringraft_connect(server.path, &client), NULL);
    silent_server_stop(&server);

    CHECK(silent_server_start(&server, RINGRAFT_BUSY, 0) == 0, "server start");
    CHECK_STATUS(RINGRAFT_BUSY, ringraft_connect(server.path, &client), NULL);
    silent_server_stop(&server);
    CHECK(client == NULL, "no client after refusals");
}

/* An entry the library filled must be zeroed again by ringraft_kv_entry_free, twice harmlessly. */
static int kv_entry_is_zero(const ringraft_kv_entry *entry) {
    return entry->value == NULL && entry->value_len == 0 && entry->version == 0 && entry->epoch == 0;
}

static void test_kv_without_daemon(void) {
    ringraft_kv_entry entry;
    memset(&entry, 0xAB, sizeof entry);
    uint64_t version = 42;
    const uint8_t *key = (const uint8_t *)"k";
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_get(NULL, key, 1, &entry), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT,
                 ringraft_kv_cas(NULL, key, 1, 0, (const uint8_t *)"v", 1, &version), NULL);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_delete(NULL, key, 1, RINGRAFT_KV_ANY_VERSION),
                 NULL);
    CHECK(version == 42, "version untouched on failure: %llu", (unsigned long long)version);
    ringraft_kv_entry_free(NULL);
    memset(&entry, 0, sizeof entry);
    ringraft_kv_entry_free(&entry);
    ringraft_kv_entry_free(&entry);
    CHECK(kv_entry_is_zero(&entry), "a zeroed entry stays zeroed");

    /* A daemon that accepts the handshake (values up to 64 KiB) and never answers. */
    struct silent_server server;
    CHECK(silent_server_start(&server, RINGRAFT_OK, 0) == 0, "server start");
    ringraft_client *client = NULL;
    CHECK_STATUS(RINGRAFT_OK, ringraft_connect(server.path, &client), NULL);
    if (client != NULL) {
        CHECK_STATUS(RINGRAFT_OK, ringraft_set_timeout(client, 100), client);
        memset(&entry, 0xAB, sizeof entry);
        CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_get(client, NULL, 1, &entry), client);
        CHECK(kv_entry_is_zero(&entry), "a failed get zeroes the entry");
        CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_get(client, key, 0, &entry), client);
        CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_get(client, key, 1, NULL), client);
        CHECK(strstr(ringraft_last_error(client), "out") != NULL, "message: %s",
              ringraft_last_error(client));
        CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT,
                     ringraft_kv_cas(client, NULL, 1, 0, (const uint8_t *)"v", 1, &version), client);
        CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_cas(client, key, 1, 0, NULL, 1, &version),
                     client);
        CHECK(strstr(ringraft_last_error(client), "value") != NULL, "message: %s",
              ringraft_last_error(client));
        CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_delete(client, NULL, 1, 0), client);
        CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_delete(client, key, 0, 0), client);

        /* Over the limits: refused before sending, so no timeout is waited for. */
        size_t value_max = 64u << 10;
        uint8_t *big = calloc(value_max + 1, 1);
        double started = now_seconds();
        CHECK_STATUS(RINGRAFT_TOO_LARGE, ringraft_kv_cas(client, key, 1, 0, big, value_max + 1, &version),
                     client);
        CHECK(strstr(ringraft_last_error(client), "not sent") != NULL, "message: %s",
              ringraft_last_error(client));
        CHECK_STATUS(RINGRAFT_TOO_LARGE, ringraft_kv_get(client, big, 4097, &entry), client);
        CHECK_STATUS(RINGRAFT_TOO_LARGE,
                     ringraft_kv_cas(client, big, 4097, 0, (const uint8_t *)"v", 1, &version), client);
        CHECK_STATUS(RINGRAFT_TOO_LARGE, ringraft_kv_delete(client, big, 4097, 0), client);
        CHECK(now_seconds() - started < 0.09, "refusals waited for the daemon");
        CHECK(version == 42, "version untouched on failure: %llu", (unsigned long long)version);

        /* At the limit it is sent; no answer comes: the outcome is unknown, and said so. */
        CHECK_STATUS(RINGRAFT_TIMEOUT,
                     ringraft_kv_cas(client, key, 1, RINGRAFT_KV_ANY_VERSION, big, value_max, &version),
                     client);
        CHECK(strstr(ringraft_last_error(client), "may or may not have taken effect") != NULL,
              "message: %s", ringraft_last_error(client));
        CHECK(version == 42, "version untouched on timeout: %llu", (unsigned long long)version);
        CHECK_STATUS(RINGRAFT_TIMEOUT, ringraft_kv_delete(client, key, 1, 3), client);
        memset(&entry, 0xAB, sizeof entry);
        CHECK_STATUS(RINGRAFT_TIMEOUT, ringraft_kv_get(client, key, 1, &entry), client);
        CHECK(kv_entry_is_zero(&entry), "a timed-out get zeroes the entry");
        ringraft_kv_entry_free(&entry);
        free(big);
        ringraft_close(client);
    }
    silent_server_stop(&server);
}

/* ---- tests against the cluster ------------------------------------------------------------ */

static void test_null_and_bad_arguments(void) {
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    ringraft_node node;
    ringraft_node nodes[4];
    size_t count = 0;
    uint64_t index = 0;
    const uint8_t *key = (const uint8_t *)"key";
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_owner(client, NULL, 3, &node), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_owner(client, key, 0, &node), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_owner(client, key, 3, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_replicas(client, key, 3, 0, nodes, &count), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_replicas(client, key, 3, 3, NULL, &count), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_replicas(client, key, 3, 3, nodes, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_members(client, NULL, 4, &count, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_members(client, nodes, 4, NULL, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_propose(client, NULL, 5, 100, &index), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_cluster_status(client, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_read_log(client, 1, 0, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_watch_log(client, 1, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_ring(client, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_set_timeout(client, 0), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_enable_ring_cache(client, 0), client);
    CHECK(strstr(ringraft_last_error(client), "refresh_ms") != NULL, "message: %s",
          ringraft_last_error(client));
    char long_name[RINGRAFT_NAME_MAX + 8];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT,
                 ringraft_join(client, 9, long_name, "127.0.0.1:1", "", 1, &index), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT,
                 ringraft_join(client, 9, NULL, "127.0.0.1:1", "", 1, &index), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT,
                 ringraft_join(client, 0, "n9", "127.0.0.1:1", "", 1, &index), client);
    /* The client still works after all those refusals. */
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, key, 3, &node), client);
    ringraft_close(client);
}

static void test_cluster_status(void) {
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    ringraft_cluster_info info;
    memset(&info, 0xAB, sizeof info);
    CHECK_STATUS(RINGRAFT_OK, ringraft_cluster_status(client, &info), client);
    CHECK(info.node_id == 1, "node_id %llu", (unsigned long long)info.node_id);
    CHECK(info.leader_id >= 1 && info.leader_id <= 3, "leader %llu", (unsigned long long)info.leader_id);
    CHECK(info.member_count == 3, "member_count %u", info.member_count);
    CHECK(info.term >= 1, "term %llu", (unsigned long long)info.term);
    CHECK(info.epoch >= 1, "epoch %llu", (unsigned long long)info.epoch);
    CHECK(info.name[0] != '\0' && memchr(info.name, '\0', sizeof info.name) != NULL, "name");
    CHECK(info.reserved[0] == 0 && info.reserved[1] == 0 && info.reserved[2] == 0, "reserved");
    ringraft_close(client);
}

static void test_members(void) {
    ringraft_client *client = connect_node(2);
    if (client == NULL) return;
    size_t count = 0;
    uint64_t epoch = 0;
    CHECK_STATUS(RINGRAFT_BUFFER_TOO_SMALL, ringraft_members(client, NULL, 0, &count, &epoch), client);
    CHECK(count == 3, "needed count %zu", count);
    ringraft_node nodes[8];
    CHECK_STATUS(RINGRAFT_OK, ringraft_members(client, nodes, 8, &count, &epoch), client);
    CHECK(count == 3, "count %zu", count);
    CHECK(epoch >= 1, "epoch %llu", (unsigned long long)epoch);
    int seen[4] = {0};
    for (size_t i = 0; i < count && i < 8; i++) {
        CHECK(nodes[i].id >= 1 && nodes[i].id <= 3, "id %llu", (unsigned long long)nodes[i].id);
        if (nodes[i].id >= 1 && nodes[i].id <= 3) seen[nodes[i].id] = 1;
        char expected[16];
        snprintf(expected, sizeof expected, "n%llu", (unsigned long long)nodes[i].id);
        CHECK(strcmp(nodes[i].name, expected) == 0, "name %s", nodes[i].name);
        CHECK(strchr(nodes[i].address, ':') != NULL, "address %s", nodes[i].address);
        CHECK(nodes[i].state == RINGRAFT_STATE_ACTIVE, "state %d", nodes[i].state);
        CHECK(nodes[i].role == RINGRAFT_ROLE_VOTER, "role %d", nodes[i].role);
        CHECK(nodes[i].flags == 0, "flags %d", nodes[i].flags);
        CHECK(nodes[i].weight >= 1, "weight %u", nodes[i].weight);
    }
    CHECK(seen[1] && seen[2] && seen[3], "members 1, 2 and 3");
    ringraft_close(client);
}

static void test_owner_agrees_across_nodes(void) {
    ringraft_client *clients[3] = {connect_node(1), connect_node(2), connect_node(3)};
    if (!clients[0] || !clients[1] || !clients[2]) goto out;
    for (int i = 0; i < 200; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, "agree-%d", i);
        ringraft_node answers[3];
        for (int c = 0; c < 3; c++) {
            memset(&answers[c], 0x5A, sizeof answers[c]); /* answers must overwrite every byte */
            CHECK_STATUS(RINGRAFT_OK, ringraft_owner(clients[c], (const uint8_t *)key, (size_t)len, &answers[c]),
                         clients[c]);
        }
        CHECK(memcmp(&answers[0], &answers[1], sizeof answers[0]) == 0 &&
                  memcmp(&answers[0], &answers[2], sizeof answers[0]) == 0,
              "nodes disagree on the owner of %s", key);
    }
out:
    for (int c = 0; c < 3; c++) ringraft_close(clients[c]);
}

static void test_replicas(void) {
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    const uint8_t *key = (const uint8_t *)"replicated-key";
    ringraft_node owner, nodes[5];
    size_t count = 0;
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, key, 14, &owner), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_replicas(client, key, 14, 5, nodes, &count), client);
    CHECK(count == 3, "3 members own keys, got %zu replicas", count);
    CHECK(count > 0 && memcmp(&nodes[0], &owner, sizeof owner) == 0, "the owner comes first");
    CHECK(count < 3 || (nodes[0].id != nodes[1].id && nodes[1].id != nodes[2].id &&
                        nodes[0].id != nodes[2].id),
          "replicas are distinct");
    CHECK_STATUS(RINGRAFT_OK, ringraft_replicas(client, key, 14, 2, nodes, &count), client);
    CHECK(count == 2, "n=2 gives 2, got %zu", count);
    ringraft_close(client);
}

static void test_linearizable_reads(void) {
    ringraft_client *client = connect_node(2);
    if (client == NULL) return;
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_set_linearizable(NULL, true), NULL);
    const uint8_t *key = (const uint8_t *)"linearizable-key";
    ringraft_node local, confirmed, cached;
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, key, 16, &local), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_set_linearizable(client, true), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, key, 16, &confirmed), client);
    CHECK(memcmp(&local, &confirmed, sizeof local) == 0, "linearizable owner differs");
    size_t count = 0;
    uint64_t epoch = 0;
    ringraft_node nodes[4];
    CHECK_STATUS(RINGRAFT_OK, ringraft_members(client, nodes, 4, &count, &epoch), client);
    CHECK(count == 3, "members %zu", count);
    /* With the cache on, a linearizable client still asks the daemon; both agree. */
    CHECK_STATUS(RINGRAFT_OK, ringraft_enable_ring_cache(client, 1000), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, key, 16, &cached), client);
    CHECK(memcmp(&local, &cached, sizeof local) == 0, "owner differs with the cache on");
    CHECK_STATUS(RINGRAFT_OK, ringraft_set_linearizable(client, false), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, key, 16, &cached), client);
    CHECK(memcmp(&local, &cached, sizeof local) == 0, "cached owner differs");
    ringraft_close(client); /* with the cache thread running: close stops it */
}

static void test_ring_view_and_cache(void) {
    ringraft_client *client = connect_node(3);
    if (client == NULL) return;
    ringraft_ring_view *view = NULL;
    CHECK_STATUS(RINGRAFT_OK, ringraft_ring(client, &view), client);
    ringraft_cluster_info info;
    CHECK_STATUS(RINGRAFT_OK, ringraft_cluster_status(client, &info), client);
    if (view != NULL) {
        CHECK(ringraft_ring_view_epoch(view) == info.epoch, "view epoch %llu, status epoch %llu",
              (unsigned long long)ringraft_ring_view_epoch(view), (unsigned long long)info.epoch);
        size_t len = 0;
        CHECK(ringraft_ring_view_bytes(view, &len) != NULL && len > 0, "encoded ring");
        size_t count = 0;
        ringraft_node members[3];
        CHECK_STATUS(RINGRAFT_OK, ringraft_ring_view_members(view, members, 3, &count), NULL);
        CHECK(count == 3, "members %zu", count);
        CHECK(ringraft_ring_view_replication_factor(view) >= 1, "replication factor");
    }
    /* The view, the cache and the daemon give the same owner for every key. */
    ringraft_node from_daemon[300];
    for (int i = 0; i < 300; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, "cache-%d", i);
        CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, (const uint8_t *)key, (size_t)len, &from_daemon[i]),
                     client);
        ringraft_node from_view;
        CHECK_STATUS(RINGRAFT_OK, ringraft_ring_view_owner(view, (const uint8_t *)key, (size_t)len, &from_view),
                     NULL);
        CHECK(memcmp(&from_view, &from_daemon[i], sizeof from_view) == 0, "view disagrees on %s", key);
    }
    CHECK_STATUS(RINGRAFT_OK, ringraft_enable_ring_cache(client, 100), client);
    for (int i = 0; i < 300; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, "cache-%d", i);
        ringraft_node cached;
        CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, (const uint8_t *)key, (size_t)len, &cached), client);
        CHECK(memcmp(&cached, &from_daemon[i], sizeof cached) == 0, "cache disagrees on %s", key);
        ringraft_node replicas[3], view_replicas[3];
        size_t count = 0, view_count = 0;
        CHECK_STATUS(RINGRAFT_OK, ringraft_replicas(client, (const uint8_t *)key, (size_t)len, 3, replicas, &count),
                     client);
        CHECK_STATUS(RINGRAFT_OK,
                     ringraft_ring_view_replicas(view, (const uint8_t *)key, (size_t)len, 3, view_replicas,
                                                 &view_count),
                     NULL);
        CHECK(count == view_count && memcmp(replicas, view_replicas, count * sizeof replicas[0]) == 0,
              "cached replicas disagree on %s", key);
    }
    CHECK_STATUS(RINGRAFT_OK, ringraft_disable_ring_cache(client), client);
    ringraft_ring_view_free(view);
    ringraft_close(client);
}

static void test_propose_read_and_watch(void) {
    ringraft_client *client = connect_node(2);
    if (client == NULL) return;
    uint64_t first = 0, index = 0;
    char payload[64];
    snprintf(payload, sizeof payload, "c-suite-%d-0", (int)getpid());
    CHECK_STATUS(RINGRAFT_OK, ringraft_propose(client, (const uint8_t *)payload, strlen(payload), 5000, &first),
                 client);
    CHECK(first >= 1, "index %llu", (unsigned long long)first);

    ringraft_watch *watch = NULL;
    CHECK_STATUS(RINGRAFT_OK, ringraft_watch_log(client, first, &watch), client);
    for (int i = 1; i <= 3; i++) {
        snprintf(payload, sizeof payload, "c-suite-%d-%d", (int)getpid(), i);
        CHECK_STATUS(RINGRAFT_OK, ringraft_propose(client, (const uint8_t *)payload, strlen(payload), 5000, &index),
                     client);
    }
    CHECK(index >= first + 3, "indexes grow: %llu after %llu", (unsigned long long)index,
          (unsigned long long)first);

    /* The watch delivers our four proposals in order (other entries may sit between). */
    int found = 0;
    uint64_t last_seen = 0;
    double deadline = now_seconds() + 10;
    while (found < 4 && now_seconds() < deadline) {
        ringraft_log_batch batch;
        ringraft_status status = ringraft_watch_next(watch, 1000, &batch);
        if (status == RINGRAFT_TIMEOUT) continue;
        CHECK_STATUS(RINGRAFT_OK, status, client);
        if (status != RINGRAFT_OK) break;
        for (size_t r = 0; r < batch.count; r++) {
            const ringraft_log_record *record = &batch.records[r];
            CHECK(record->index > last_seen, "indexes increase");
            last_seen = record->index;
            char expected[64];
            snprintf(expected, sizeof expected, "c-suite-%d-%d", (int)getpid(), found);
            if (record->len == strlen(expected) && memcmp(record->data, expected, record->len) == 0) found++;
        }
        ringraft_log_batch_free(&batch);
    }
    CHECK(found == 4, "watch delivered %d of our 4 proposals", found);
    ringraft_watch_close(watch);

    ringraft_log_batch batch;
    CHECK_STATUS(RINGRAFT_OK, ringraft_read_log(client, first, 1, &batch), client);
    CHECK(batch.count == 1, "count %zu", batch.count);
    if (batch.count == 1) {
        snprintf(payload, sizeof payload, "c-suite-%d-0", (int)getpid());
        CHECK(batch.records[0].index == first, "index");
        CHECK(batch.records[0].len == strlen(payload) &&
                  memcmp(batch.records[0].data, payload, batch.records[0].len) == 0,
              "data read back");
        CHECK(batch.last_index >= index, "last_index");
    }
    ringraft_log_batch_free(&batch);
    ringraft_log_batch_free(&batch); /* twice is harmless */
    ringraft_close(client);
}

/* The dev cluster runs the daemon's default limits.watches_per_connection_max. */
#define DEFAULT_WATCHES_PER_CONNECTION_MAX 16

/* A watch past the daemon's per-connection limit is refused by ringraft_watch_log itself (all
 * watches of a client share its one connection), not by its first ringraft_watch_next(); closing
 * a watch makes room for another, and another client has its own room. */
static void test_watch_limit_refused_at_watch_time(void) {
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    enum { ATTEMPTS_MAX = 4 * DEFAULT_WATCHES_PER_CONNECTION_MAX };
    ringraft_watch *watches[ATTEMPTS_MAX] = {0};
    int started = 0;
    ringraft_status refused = RINGRAFT_OK;
    while (started < ATTEMPTS_MAX) {
        refused = ringraft_watch_log(client, 1, &watches[started]);
        if (refused != RINGRAFT_OK) break;
        started++;
    }
    CHECK(started == DEFAULT_WATCHES_PER_CONNECTION_MAX,
          "%d watches started before one was refused (limit %d)", started,
          DEFAULT_WATCHES_PER_CONNECTION_MAX);
    CHECK_STATUS(RINGRAFT_BUSY, refused, client);
    CHECK(strstr(ringraft_last_error(client), "watches_per_connection_max") != NULL,
          "the refusal names the limit: %s", ringraft_last_error(client));
    if (started < ATTEMPTS_MAX) CHECK(watches[started] == NULL, "a refused watch is NULL");

    ringraft_client *other = connect_node(1);
    if (other != NULL) {
        /* Far past the log's end: nothing comes, and a failed wait leaves an empty batch. */
        ringraft_watch *watch = NULL;
        CHECK_STATUS(RINGRAFT_OK, ringraft_watch_log(other, UINT64_MAX / 2, &watch), other);
        ringraft_log_batch batch;
        CHECK_STATUS(RINGRAFT_TIMEOUT, ringraft_watch_next(watch, 50, &batch), other);
        CHECK(batch.count == 0 && batch.records == NULL, "failed watch_next leaves an empty batch");
        ringraft_log_batch_free(&batch);
        ringraft_watch_close(watch);
        ringraft_close(other);
    }

    if (started > 0) {
        ringraft_watch_close(watches[0]);
        watches[0] = NULL;
        CHECK_STATUS(RINGRAFT_OK, ringraft_watch_log(client, 1, &watches[0]), client);
    }
    for (int i = 0; i < ATTEMPTS_MAX; i++) ringraft_watch_close(watches[i]);
    ringraft_close(client);
}

static void test_too_large(void) {
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    size_t big = 5u << 20; /* over the 4 MiB frame limit: refused before sending */
    uint8_t *data = calloc(big, 1);
    uint64_t index = 0;
    CHECK_STATUS(RINGRAFT_TOO_LARGE, ringraft_propose(client, data, big, 1000, &index), client);
    /* Over the daemon's proposal limit (64 KiB by default) but within a frame. */
    CHECK_STATUS(RINGRAFT_TOO_LARGE, ringraft_propose(client, data, 256u << 10, 1000, &index), client);
    ringraft_node node;
    CHECK_STATUS(RINGRAFT_TOO_LARGE, ringraft_owner(client, data, big, &node), client);
    free(data);
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, (const uint8_t *)"after", 5, &node), client);
    ringraft_close(client);
}

static void test_admin(void) {
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    uint64_t index = 0;
    CHECK_STATUS(RINGRAFT_NOT_FOUND, ringraft_remove(client, 999, &index), client);
    CHECK_STATUS(RINGRAFT_NOT_FOUND, ringraft_promote(client, 999, &index), client);
    CHECK_STATUS(RINGRAFT_NOT_FOUND, ringraft_transfer_leader(client, 999, &index), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_snapshot(client, &index), client);
    /* Promoting a voter is a conflict; handing leadership to the leader is a no-op that succeeds. */
    CHECK_STATUS(RINGRAFT_CONFLICT, ringraft_promote(client, 2, NULL), client);
    ringraft_cluster_info status;
    CHECK_STATUS(RINGRAFT_OK, ringraft_cluster_status(client, &status), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_transfer_leader(client, status.leader_id, NULL), client);

    /* A learner joins, is promoted, then removed: the epoch follows each change. */
    ringraft_cluster_info before, after;
    CHECK_STATUS(RINGRAFT_OK, ringraft_cluster_status(client, &before), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_join(client, 7, "n7", "127.0.0.1:1", "", 1, &index), client);
    /* Joining again with the same address is a harmless retry; another address conflicts. */
    CHECK_STATUS(RINGRAFT_OK, ringraft_join(client, 7, "n7", "127.0.0.1:1", "", 1, NULL), client);
    CHECK_STATUS(RINGRAFT_CONFLICT, ringraft_join(client, 7, "n7", "127.0.0.1:2", "", 1, NULL), client);
    size_t count = 0;
    ringraft_node nodes[8];
    CHECK_STATUS(RINGRAFT_OK, ringraft_members(client, nodes, 8, &count, NULL), client);
    int joined_as_learner = 0;
    for (size_t i = 0; i < count; i++)
        if (nodes[i].id == 7 && nodes[i].role == RINGRAFT_ROLE_LEARNER) joined_as_learner = 1;
    CHECK(joined_as_learner, "n7 is a learner member");
    CHECK_STATUS(RINGRAFT_OK, ringraft_remove(client, 7, &index), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_cluster_status(client, &after), client);
    CHECK(after.epoch > before.epoch, "epoch moved: %llu -> %llu", (unsigned long long)before.epoch,
          (unsigned long long)after.epoch);
    ringraft_close(client);
}

/* ---- per-key registers (need the daemon's registers runtime) ------------------------------ */

/* A key no earlier run of the suite used: registers outlive a test run only with its cluster,
 * but a rerun against the same cluster must start from absent. */
static size_t unique_key(char *out, size_t cap, const char *what) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int len = snprintf(out, cap, "c-kv-%s-%d-%lld-%ld", what, (int)getpid(), (long long)ts.tv_sec,
                       ts.tv_nsec);
    return (size_t)len;
}

static void test_kv_get_cas_delete(void) {
    ringraft_client *client = connect_node(1);
    ringraft_client *other = connect_node(2);
    if (client == NULL || other == NULL) {
        ringraft_close(client);
        ringraft_close(other);
        return;
    }
    char key_text[96];
    size_t key_len = unique_key(key_text, sizeof key_text, "flow");
    const uint8_t *key = (const uint8_t *)key_text;
    ringraft_kv_entry entry;
    uint64_t version = 0;

    /* Absent: NOT_FOUND, the entry zeroed and safe to free (twice). */
    memset(&entry, 0xAB, sizeof entry);
    CHECK_STATUS(RINGRAFT_NOT_FOUND, ringraft_kv_get(client, key, key_len, &entry), client);
    CHECK(kv_entry_is_zero(&entry), "absent: entry zeroed");
    ringraft_kv_entry_free(&entry);
    ringraft_kv_entry_free(&entry);

    /* Create only if absent: version 1, read back on another node's daemon. */
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_cas(client, key, key_len, 0, (const uint8_t *)"one", 3, &version),
                 client);
    CHECK(version == 1, "first write is version 1, got %llu", (unsigned long long)version);
    memset(&entry, 0xAB, sizeof entry);
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_get(other, key, key_len, &entry), other);
    CHECK(entry.version == 1 && entry.value_len == 3 && entry.value != NULL &&
              memcmp(entry.value, "one", 3) == 0,
          "read back version %llu, %zu bytes", (unsigned long long)entry.version, entry.value_len);
    CHECK(entry.epoch > 0, "the answer carries the ring epoch");
    ringraft_kv_entry_free(&entry);
    CHECK(kv_entry_is_zero(&entry), "free zeroes the entry");
    ringraft_kv_entry_free(&entry);

    /* A mismatch is a CONFLICT that tells the current version and writes nothing. */
    version = 77;
    CHECK_STATUS(RINGRAFT_CONFLICT, ringraft_kv_cas(client, key, key_len, 0, (const uint8_t *)"x", 1, &version),
                 client);
    CHECK(version == 1, "conflict reports the current version 1, got %llu", (unsigned long long)version);
    version = 77;
    CHECK_STATUS(RINGRAFT_CONFLICT, ringraft_kv_cas(other, key, key_len, 9, (const uint8_t *)"x", 1, &version),
                 other);
    CHECK(version == 1, "conflict reports the current version 1, got %llu", (unsigned long long)version);

    /* A put whatever the version; then an empty value, which is present. */
    CHECK_STATUS(RINGRAFT_OK,
                 ringraft_kv_cas(client, key, key_len, RINGRAFT_KV_ANY_VERSION, (const uint8_t *)"two", 3,
                                 &version),
                 client);
    CHECK(version == 2, "put: version 2, got %llu", (unsigned long long)version);
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_cas(client, key, key_len, 2, NULL, 0, NULL), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_get(client, key, key_len, &entry), client);
    CHECK(entry.version == 3 && entry.value_len == 0, "empty value: version %llu, %zu bytes",
          (unsigned long long)entry.version, entry.value_len);
    ringraft_kv_entry_free(&entry);

    /* Delete with the wrong version: CONFLICT, nothing deleted; with the right one: absent. */
    CHECK_STATUS(RINGRAFT_CONFLICT, ringraft_kv_delete(client, key, key_len, 2), client);
    CHECK(strstr(ringraft_last_error(client), "version is 3") != NULL, "the message names version 3: %s",
          ringraft_last_error(client));
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_get(other, key, key_len, &entry), other);
    CHECK(entry.version == 3, "still version 3, got %llu", (unsigned long long)entry.version);
    ringraft_kv_entry_free(&entry);
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_delete(client, key, key_len, 3), client);
    CHECK_STATUS(RINGRAFT_NOT_FOUND, ringraft_kv_get(other, key, key_len, &entry), other);
    CHECK(kv_entry_is_zero(&entry), "deleted: entry zeroed");
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_delete(client, key, key_len, RINGRAFT_KV_ANY_VERSION), client);
    /* After a delete, versions count from 1 again. */
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_cas(other, key, key_len, 0, (const uint8_t *)"again", 5, &version),
                 other);
    CHECK(version == 1, "after delete: version 1, got %llu", (unsigned long long)version);
    ringraft_close(other);
    ringraft_close(client);
}

static void test_kv_limits_and_bad_arguments(void) {
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    char key_text[96];
    size_t key_len = unique_key(key_text, sizeof key_text, "limits");
    const uint8_t *key = (const uint8_t *)key_text;
    ringraft_kv_entry entry;
    uint64_t version = 5;
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_get(client, NULL, key_len, &entry), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_get(client, key, key_len, NULL), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_get(client, key, 0, &entry), client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_cas(client, key, key_len, 0, NULL, 4, &version),
                 client);
    CHECK_STATUS(RINGRAFT_INVALID_ARGUMENT, ringraft_kv_delete(client, NULL, 1, 0), client);
    /* The daemon's default value limit is 64 KiB; keys up to 4096 bytes. */
    size_t value_max = 64u << 10;
    uint8_t *big = calloc(value_max + 1, 1);
    memset(big, 'v', value_max + 1);
    CHECK_STATUS(RINGRAFT_TOO_LARGE, ringraft_kv_cas(client, key, key_len, 0, big, value_max + 1, &version),
                 client);
    CHECK_STATUS(RINGRAFT_TOO_LARGE, ringraft_kv_get(client, big, 4097, &entry), client);
    CHECK(version == 5, "version untouched on failure");
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_cas(client, key, key_len, 0, big, value_max, &version), client);
    CHECK(version == 1, "a value at the limit is stored: version %llu", (unsigned long long)version);
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_get(client, key, key_len, &entry), client);
    CHECK(entry.value_len == value_max && entry.value != NULL && memcmp(entry.value, big, value_max) == 0,
          "value read back whole: %zu bytes", entry.value_len);
    ringraft_kv_entry_free(&entry);
    /* The longest key works too. */
    memcpy(big, key_text, key_len);
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_cas(client, big, 4096, RINGRAFT_KV_ANY_VERSION, (const uint8_t *)"v", 1,
                                              &version),
                 client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_delete(client, big, 4096, version), client);
    free(big);
    ringraft_close(client);
}

/* Clients on every node increment one counter by compare-and-set; each acknowledged increment
 * counts exactly once. */
#define KV_WORKERS 6
#define KV_INCREMENTS 15

struct kv_work {
    int node;
    const char *key;
    size_t key_len;
    int acknowledged;
    int errors;
    char error[256];
};

static void *kv_increment_worker(void *arg) {
    struct kv_work *work = arg;
    ringraft_client *client = connect_node_within(work->node, 10);
    if (client == NULL) {
        work->errors++;
        return NULL;
    }
    const uint8_t *key = (const uint8_t *)work->key;
    for (int done = 0; done < KV_INCREMENTS && work->errors == 0;) {
        ringraft_kv_entry entry;
        ringraft_status status = ringraft_kv_get(client, key, work->key_len, &entry);
        long counter = 0;
        if (status == RINGRAFT_OK) {
            char text[32] = {0};
            memcpy(text, entry.value, entry.value_len < 31 ? entry.value_len : 31);
            counter = strtol(text, NULL, 10);
        } else if (status != RINGRAFT_NOT_FOUND) {
            work->errors++;
            snprintf(work->error, sizeof work->error, "get: %s", ringraft_last_error(client));
            break;
        }
        uint64_t expected = entry.version;
        ringraft_kv_entry_free(&entry);
        char next[32];
        int len = snprintf(next, sizeof next, "%ld", counter + 1);
        uint64_t version = 0;
        status = ringraft_kv_cas(client, key, work->key_len, expected, (const uint8_t *)next, (size_t)len,
                                 &version);
        if (status == RINGRAFT_OK) {
            work->acknowledged++;
            done++;
        } else if (status != RINGRAFT_CONFLICT) {
            work->errors++;
            snprintf(work->error, sizeof work->error, "cas: %s", ringraft_last_error(client));
        }
    }
    ringraft_close(client);
    return NULL;
}

static void test_kv_concurrent_increments(void) {
    char key[96];
    size_t key_len = unique_key(key, sizeof key, "counter");
    pthread_t threads[KV_WORKERS];
    struct kv_work work[KV_WORKERS];
    for (int t = 0; t < KV_WORKERS; t++) {
        work[t] = (struct kv_work){.node = 1 + t % 3, .key = key, .key_len = key_len};
        CHECK(pthread_create(&threads[t], NULL, kv_increment_worker, &work[t]) == 0, "thread %d", t);
    }
    int acknowledged = 0;
    for (int t = 0; t < KV_WORKERS; t++) {
        pthread_join(threads[t], NULL);
        acknowledged += work[t].acknowledged;
        CHECK(work[t].errors == 0, "worker %d on node %d: %s", t, work[t].node, work[t].error);
    }
    ringraft_client *client = connect_node(3);
    if (client == NULL) return;
    ringraft_kv_entry entry;
    CHECK_STATUS(RINGRAFT_OK, ringraft_kv_get(client, (const uint8_t *)key, key_len, &entry), client);
    char text[32] = {0};
    if (entry.value != NULL) memcpy(text, entry.value, entry.value_len < 31 ? entry.value_len : 31);
    CHECK(strtol(text, NULL, 10) == acknowledged, "counter %s, %d increments acknowledged", text,
          acknowledged);
    CHECK(entry.version == (uint64_t)acknowledged, "version %llu, %d increments acknowledged",
          (unsigned long long)entry.version, acknowledged);
    ringraft_kv_entry_free(&entry);
    ringraft_close(client);
}

/* ---- 8 threads x 10,000 owner calls on one client ----------------------------------------- */

#define THREADS 8
#define CALLS_PER_THREAD 10000
#define DISTINCT_KEYS 500

static ringraft_node expected_owner[DISTINCT_KEYS];

struct thread_work {
    ringraft_client *client;
    int thread;
    int mismatches;
    int errors;
};

static void *owner_worker(void *arg) {
    struct thread_work *work = arg;
    for (int i = 0; i < CALLS_PER_THREAD; i++) {
        int k = (i * 7 + work->thread * 13) % DISTINCT_KEYS;
        char key[32];
        int len = snprintf(key, sizeof key, "mt-%d", k);
        ringraft_node node;
        if (ringraft_owner(work->client, (const uint8_t *)key, (size_t)len, &node) != RINGRAFT_OK) {
            work->errors++;
            continue;
        }
        if (memcmp(&node, &expected_owner[k], sizeof node) != 0) work->mismatches++;
    }
    return NULL;
}

static void test_threads_share_a_client(void) {
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    for (int k = 0; k < DISTINCT_KEYS; k++) {
        char key[32];
        int len = snprintf(key, sizeof key, "mt-%d", k);
        CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, (const uint8_t *)key, (size_t)len, &expected_owner[k]),
                     client);
    }
    pthread_t threads[THREADS];
    struct thread_work work[THREADS];
    for (int t = 0; t < THREADS; t++) {
        work[t] = (struct thread_work){.client = client, .thread = t};
        CHECK(pthread_create(&threads[t], NULL, owner_worker, &work[t]) == 0, "thread %d", t);
    }
    int mismatches = 0, errors = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        mismatches += work[t].mismatches;
        errors += work[t].errors;
    }
    CHECK(errors == 0, "%d of %d calls failed", errors, THREADS * CALLS_PER_THREAD);
    CHECK(mismatches == 0, "%d answers disagree", mismatches);
    ringraft_close(client);
}

/* ---- daemon restart ----------------------------------------------------------------------- */

static void test_restart(void) {
    const char *kill_cmd = getenv("RINGRAFT_TEST_KILL_CMD");
    const char *start_cmd = getenv("RINGRAFT_TEST_START_CMD");
    CHECK(kill_cmd != NULL && start_cmd != NULL, "the runner sets the kill and start commands");
    if (kill_cmd == NULL || start_cmd == NULL) return;
    ringraft_client *client = connect_node(1);
    if (client == NULL) return;
    ringraft_node before, after;
    const uint8_t *key = (const uint8_t *)"restart-key";
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, key, 11, &before), client);
    ringraft_watch *watch = NULL;
    uint64_t index = 0;
    CHECK_STATUS(RINGRAFT_OK, ringraft_propose(client, (const uint8_t *)"pre-restart", 11, 5000, &index), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_watch_log(client, index, &watch), client);

    /* Node 1 dies: the daemon is down, calls say so. */
    CHECK(system(kill_cmd) == 0, "kill command failed: %s", kill_cmd);
    CHECK_STATUS(RINGRAFT_OK, ringraft_set_timeout(client, 300), client);
    CHECK_STATUS(RINGRAFT_UNAVAILABLE, ringraft_owner(client, key, 11, &after), client);
    CHECK_STATUS(RINGRAFT_UNAVAILABLE, ringraft_propose(client, (const uint8_t *)"x", 1, 100, &index), client);
    ringraft_client *fresh = NULL;
    char path[512];
    socket_of(1, path, sizeof path);
    CHECK_STATUS(RINGRAFT_UNAVAILABLE, ringraft_connect(path, &fresh), NULL);

    /* It comes back: the same client carries on without being reopened. */
    CHECK(system(start_cmd) == 0, "start command failed: %s", start_cmd);
    fresh = connect_node_within(1, 30);
    CHECK(fresh != NULL, "node 1 did not come back");
    ringraft_close(fresh);
    CHECK_STATUS(RINGRAFT_OK, ringraft_set_timeout(client, 5000), client);
    CHECK_STATUS(RINGRAFT_OK, ringraft_owner(client, key, 11, &after), client);
    CHECK(memcmp(&before, &after, sizeof before) == 0, "same owner after the restart");
    uint64_t post = 0;
    ringraft_status proposed = RINGRAFT_NO_LEADER;
    double deadline = now_seconds() + 20;
    /* The restarted node may need a moment to learn the leader again. */
    while (now_seconds() < deadline) {
        proposed = ringraft_propose(client, (const uint8_t *)"post-restart", 12, 2000, &post);
        if (proposed != RINGRAFT_NO_LEADER && proposed != RINGRAFT_TIMEOUT) break;
        usleep(100 * 1000);
    }
    CHECK_STATUS(RINGRAFT_OK, proposed, client);
    /* The watch resumed too: it delivers the post-restart proposal. */
    int found = 0;
    deadline = now_seconds() + 20;
    while (!found && now_seconds() < deadline) {
        ringraft_log_batch batch;
        ringraft_status status = ringraft_watch_next(watch, 1000, &batch);
        if (status != RINGRAFT_OK) continue;
        for (size_t r = 0; r < batch.count; r++)
            if (batch.records[r].len == 12 && memcmp(batch.records[r].data, "post-restart", 12) == 0)
                found = 1;
        ringraft_log_batch_free(&batch);
    }
    CHECK(found, "the watch delivered the record committed after the restart");
    ringraft_watch_close(watch);
    ringraft_close(client);
}

int main(int argc, char **argv) {
    if (argc > 1) test_filter = argv[1];
    cluster_dir = getenv("RINGRAFT_TEST_DIR");
    if (cluster_dir != NULL && cluster_dir[0] == '\0') cluster_dir = NULL;

    run_test("version", test_version, 0);
    run_test("strerror", test_strerror, 0);
    run_test("connect_daemon_down", test_connect_daemon_down, 0);
    run_test("null_arguments_without_client", test_null_arguments_without_client, 0);
    run_test("timeouts", test_timeouts, 0);
    run_test("handshake_refusals", test_handshake_refusals, 0);
    run_test("kv_without_daemon", test_kv_without_daemon, 0);

    run_test("null_and_bad_arguments", test_null_and_bad_arguments, 1);
    run_test("cluster_status", test_cluster_status, 1);
    run_test("members", test_members, 1);
    run_test("owner_agrees_across_nodes", test_owner_agrees_across_nodes, 1);
    run_test("replicas", test_replicas, 1);
    run_test("linearizable_reads", test_linearizable_reads, 1);
    run_test("ring_view_and_cache", test_ring_view_and_cache, 1);
    run_test("propose_read_and_watch", test_propose_read_and_watch, 1);
    run_test("watch_limit_refused_at_watch_time", test_watch_limit_refused_at_watch_time, 1);
    run_test("too_large", test_too_large, 1);
    run_test("admin", test_admin, 1);
    run_test("kv_get_cas_delete", test_kv_get_cas_delete, 1);
    run_test("kv_limits_and_bad_arguments", test_kv_limits_and_bad_arguments, 1);
    run_test("kv_concurrent_increments", test_kv_concurrent_increments, 1);
    run_test("threads_share_a_client", test_threads_share_a_client, 1);
    run_test("restart", test_restart, 1);

    printf("%d passed, %d failed, %d skipped\n", tests_passed, tests_failed, tests_skipped);
    return tests_failed == 0 ? 0 : 1;
}
