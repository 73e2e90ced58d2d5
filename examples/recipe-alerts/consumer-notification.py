#!/usr/bin/env python3
"""Stage 3 of the recipe-alert pipeline: alert on every parsed recipe above the calorie threshold.

Reads `parsed_recipes` from the earliest offset, prints `Alert: <title> calories count is <n>` for
each recipe with more than CALORIES_THRESHOLD calories, and stops after a second without messages.
Usage: consumer-notification.py [BOOTSTRAP]
"""
import json
import os
import sys

from kafka import KafkaConsumer

TOPIC = "parsed_recipes"
CALORIES_THRESHOLD = 200


def bootstrap_address():
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get("BOOTSTRAP", "localhost:9092")


def main():
    # Pinned to 0.10 as the tutorial: Fetch v2 (answered with magic-1 message sets) and ListOffsets v0.
    consumer = KafkaConsumer(TOPIC, auto_offset_reset="earliest", bootstrap_servers=[bootstrap_address()],
                             api_version=(0, 10), consumer_timeout_ms=1000)
    seen = 0
    for message in consumer:
        seen += 1
        recipe = json.loads(message.value.decode("utf-8"))
        calories = int(recipe["calories"])
        if calories > CALORIES_THRESHOLD:
            print("Alert: %s calories count is %d" % (recipe["title"], calories))
    consumer.close()
    print("Checked %d recipes from %s" % (seen, TOPIC))
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
