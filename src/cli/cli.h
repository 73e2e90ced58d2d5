/* cli: the client-side subcommands of the gregor multi-call binary (on librdkafka), and the
 * offline tools. Each takes argc/argv after the subcommand name and returns the exit code. */
#ifndef GREGOR_CLI_CLI_H
#define GREGOR_CLI_CLI_H

int cli_topics(int argc, char **argv);    /* gregor topics: kafka-topics.sh */
int cli_produce(int argc, char **argv);   /* gregor produce: kafka-console-producer.sh */
int cli_consume(int argc, char **argv);   /* gregor consume: kafka-console-consumer.sh */
int cli_groups(int argc, char **argv);    /* gregor groups: kafka-consumer-groups.sh */
int cli_configs(int argc, char **argv);   /* gregor configs: kafka-configs.sh */
int cli_get_offsets(int argc, char **argv);
int cli_leader_election(int argc, char **argv); /* gregor leader-election: kafka-leader-election.sh */ /* gregor get-offsets: kafka-get-offsets.sh */
int cli_reassign_partitions(int argc, char **argv); /* gregor reassign-partitions: kafka-reassign-partitions.sh */
int cli_transactions(int argc, char **argv); /* gregor transactions: kafka-transactions.sh */
int cli_dump_log(int argc, char **argv);  /* gregor dump-log: kafka.tools.DumpLogSegments */
int cli_acls(int argc, char **argv);      /* gregor acls: kafka-acls.sh */
int cli_perf(int argc, char **argv);      /* gregor perf: producer/consumer perf test */

#endif
