/* mock_cluster: librdkafka's in-memory mock cluster behind a real loopback listener, so the same
 * `gregor perf` processes that load gregor and Kafka can load it too (a producer-side
 * test.mock.num.brokers cluster lives inside that one client and no consumer could reach it).
 *
 * usage: mock_cluster TOPIC:PARTITIONS...   prints "bootstrap HOST:PORT", runs until SIGTERM/SIGINT
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The mock cluster needs a handle to hang off; a producer that never produces is enough. */
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "mock_cluster: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        fprintf(stderr, "mock_cluster: rd_kafka_mock_cluster_new failed\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        char *colon = strchr(argv[i], ':');
        int partitions = colon ? atoi(colon + 1) : 1;
        if (colon)
            *colon = '\0';
        if (rd_kafka_mock_topic_create(mc, argv[i], partitions, 1)) {
            fprintf(stderr, "mock_cluster: cannot create topic %s\n", argv[i]);
            return 1;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (!stop)
        pause();
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
