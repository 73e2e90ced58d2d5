/* fuzz_broker_configs: the two config files a broker reads at start-up — its dynamic configs
 * file in the first log dir (first input byte even; dynamic_configs_parse, then every entry
 * set on a config as apply does) and server.properties (odd; broker_config_load_file through
 * a file in /dev/shm, or /tmp without it, then broker_config_validate). Nothing may crash,
 * hang or read past the input. Invariants: accepted tables hold at most BROKER_PROPS_MAX
 * entries of NUL-terminated keys and values; a refused dynamic file names a line and leaves
 * both tables empty. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/logging.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

static void check_table(const struct broker_props *p, struct broker_config *c)
{
    GREGOR_ASSERT(p->n >= 0 && p->n <= BROKER_PROPS_MAX);
    for (int i = 0; i < p->n; i++) {
        GREGOR_ASSERT(memchr(p->v[i].key, '\0', sizeof(p->v[i].key)) != NULL);
        GREGOR_ASSERT(memchr(p->v[i].value, '\0', sizeof(p->v[i].value)) != NULL);
        char err[512];
        broker_config_set(c, p->v[i].key, p->v[i].value, err, sizeof(err));
    }
}

static void dynamic_file(const char *text, size_t size)
{
    static struct broker_props broker, dflt;
    int bad_line = -1;
    if (dynamic_configs_parse(text, size, &broker, &dflt, &bad_line) != 0) {
        GREGOR_ASSERT(bad_line >= 1 && broker.n == 0 && dflt.n == 0);
        return;
    }
    struct broker_config *c = malloc(sizeof(*c));
    GREGOR_ASSERT(c != NULL);
    broker_config_defaults(c);
    check_table(&dflt, c);
    check_table(&broker, c);
    free(c);
}

static void server_properties(const uint8_t *data, size_t size)
{
    if (path[0] == '\0') {
        snprintf(path, sizeof(path), "%s/gregor-fuzz-props-%d",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
        atexit(remove_file);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    GREGOR_ASSERT(fd >= 0);
    GREGOR_ASSERT(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
    struct broker_config *c = malloc(sizeof(*c));
    GREGOR_ASSERT(c != NULL);
    broker_config_defaults(c);
    char err[512];
    err[0] = '\0';
    if (broker_config_load_file(c, path, err, sizeof(err)) != 0)
        GREGOR_ASSERT(err[0] != '\0');
    else if (broker_config_validate(c, err, sizeof(err)) == 0) {
        /* listeners=, advertised.listeners= and listener.security.protocol.map= together;
         * every listener found has a protocol, a port and an advertised endpoint. */
        err[0] = '\0';
        if (broker_config_listeners(c, err, sizeof(err)) != 0)
            GREGOR_ASSERT(err[0] != '\0');
        else
            for (int i = 0; i < c->n_listeners; i++)
                GREGOR_ASSERT(c->listeners[i].security_protocol[0] != '\0' &&
                              c->listeners[i].port >= 0 && c->listeners[i].port <= 65535 &&
                              c->listeners[i].advertised_host[0] != '\0');
    }
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    logging_set_level(LOG_LEVEL_ERROR + 1);
    if (size < 1)
        return 0;
    bool dynamic = (data[0] & 1) == 0;
    data++;
    size--;
    if (!dynamic) {
        server_properties(data, size);
        return 0;
    }
    char *text = malloc(size ? size : 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    dynamic_file(text, size);
    free(text);
    return 0;
}
