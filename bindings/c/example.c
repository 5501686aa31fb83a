/*
 * example.c: ask the local ringraftd who owns a few keys, then commit a proposal.
 *
 *   cc -o example example.c $(pkg-config --cflags --libs ringraft)
 *   ./example /run/ringraft/ringraftd.sock user:42 user:43
 */
#include <stdio.h>
#include <string.h>

#include <ringraft.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SOCKET [KEY...]\n", argv[0]);
        return 2;
    }
    printf("libringraft %s (header %d.%d.%d)\n", ringraft_version(), RINGRAFT_VERSION_MAJOR,
           RINGRAFT_VERSION_MINOR, RINGRAFT_VERSION_PATCH);

    ringraft_client *client = NULL;
    ringraft_status status = ringraft_connect(argv[1], &client);
    if (status != RINGRAFT_OK) {
        fprintf(stderr, "connect: %s (%s)\n", ringraft_strerror(status), ringraft_last_error(NULL));
        return 1;
    }

    for (int i = 2; i < argc; i++) {
        ringraft_node owner;
        status = ringraft_owner(client, (const uint8_t *)argv[i], strlen(argv[i]), &owner);
        if (status != RINGRAFT_OK) {
            fprintf(stderr, "owner %s: %s\n", argv[i], ringraft_last_error(client));
            continue;
        }
        ringraft_node replicas[3];
        size_t count = 0;
        status = ringraft_replicas(client, (const uint8_t *)argv[i], strlen(argv[i]), 3, replicas,
                                   &count);
        printf("%s -> owner %s (id %llu, %s)", argv[i], owner.name, (unsigned long long)owner.id,
               owner.address);
        if (status == RINGRAFT_OK) {
            printf(", replicas");
            for (size_t r = 0; r < count; r++) printf(" %s", replicas[r].name);
        }
        printf("\n");
    }

    const char *note = "hello from example.c";
    uint64_t index = 0;
    status = ringraft_propose(client, (const uint8_t *)note, strlen(note), 2000, &index);
    if (status == RINGRAFT_OK) {
        printf("proposal committed at index %llu\n", (unsigned long long)index);
    } else {
        fprintf(stderr, "propose: %s\n", ringraft_last_error(client));
    }

    ringraft_close(client);
    return status == RINGRAFT_OK ? 0 : 1;
}
