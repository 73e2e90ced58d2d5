#!/usr/bin/env python3
"""Stage 1 of the recipe-alert pipeline: publish each recipe page's raw HTML to `raw_recipes`.

The pages come from ./pages (the example has no network): the index is read first, then every
recipe it links to, and each page is sent with key `raw`. Usage: producer-raw-recipes.py [BOOTSTRAP]
"""
import os
import sys

from bs4 import BeautifulSoup
from kafka import KafkaProducer

PAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pages")
TOPIC = "raw_recipes"
KEY = "raw"


def bootstrap_address():
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get("BOOTSTRAP", "localhost:9092")


def read_page(name):
    with open(os.path.join(PAGES, name), encoding="utf-8") as f:
        return f.read()


def get_recipes():
    """Returns the raw HTML of every recipe linked from the index, in index order."""
    print("Accessing list")
    index = BeautifulSoup(read_page("index.html"), "html.parser")
    recipes = []
    for link in index.select("a.fixed-recipe-card__title-link"):
        page = link["href"]
        print("Processing..%s" % page)
        recipes.append(read_page(page))
    return recipes


def connect_kafka_producer(bootstrap):
    # Pinned to 0.10 as the tutorial pins it: kafka-python then sends Produce v2 with magic-1
    # message sets, which gregor converts to record batches on append, as Kafka 3.x did.
    return KafkaProducer(bootstrap_servers=[bootstrap], api_version=(0, 10))


def publish_message(producer, topic, key, value):
    """Sends one message and waits for the broker's answer; a failure raises, it is not hidden."""
    future = producer.send(topic, key=key.encode("utf-8"), value=value.encode("utf-8"))
    producer.flush()
    future.get(timeout=30)
    print("Message published successfully.")


def main():
    recipes = get_recipes()
    if not recipes:
        print("no recipes found in %s/index.html" % PAGES, file=sys.stderr)
        return 1
    producer = connect_kafka_producer(bootstrap_address())
    try:
        for recipe in recipes:
            publish_message(producer, TOPIC, KEY, recipe.strip())
    finally:
        producer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
