/* topic_ids: topic ids by name, for tools whose librdkafka cannot report them. */
#ifndef GREGOR_CLI_TOPIC_IDS_H
#define GREGOR_CLI_TOPIC_IDS_H

#include <stdint.h>

/* Fills ids[i] with the id of names[i] (zero when unknown). Returns 0, or -1 when the broker
 * could not be asked (ids stay zero). */
int cli_topic_ids(const char *bootstrap, const char *const *names, int n, uint8_t (*ids)[16]);

#endif
