#!/usr/bin/env python3
"""Stage 2 of the recipe-alert pipeline: consume `raw_recipes`, parse each page, publish JSON.

Each raw page becomes {title, submitter, description, calories, ingredients} on `parsed_recipes`
with key `parsed`. Reads from the earliest offset and stops after a second without new messages.
Usage: producer_consumer_parse_recipes.py [BOOTSTRAP]
"""
import json
import os
import re
import sys

from bs4 import BeautifulSoup
from kafka import KafkaConsumer, KafkaProducer

SOURCE_TOPIC = "raw_recipes"
TARGET_TOPIC = "parsed_recipes"
KEY = "parsed"


def bootstrap_address():
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get("BOOTSTRAP", "localhost:9092")


def text_of(soup, selector):
    node = soup.select_one(selector)
    if node is None:
        raise ValueError("no element matches %r" % selector)
    return node.get_text().strip()


def parse(html):
    """Returns the recipe in `html` as a dict; raises ValueError when a field is missing."""
    soup = BeautifulSoup(html, "html.parser")
    calories_text = text_of(soup, ".calorie-count")
    digits = re.search(r"\d[\d,]*", calories_text)
    if digits is None:
        raise ValueError("no number in calorie count %r" % calories_text)
    return {
        "title": text_of(soup, ".recipe-summary__h1"),
        "submitter": text_of(soup, ".submitter__name"),
        "description": text_of(soup, ".submitter__description").strip('"'),
        "calories": int(digits.group(0).replace(",", "")),
        "ingredients": [li.get_text().strip() for li in soup.select(".checkList__line .recipe-ingred_txt")],
    }


def main():
    bootstrap = bootstrap_address()
    # Pinned to 0.10 as the tutorial: Fetch v2 (answered with magic-1 message sets, converted from
    # the log's batches) and ListOffsets v0.
    consumer = KafkaConsumer(SOURCE_TOPIC, auto_offset_reset="earliest", bootstrap_servers=[bootstrap],
                             api_version=(0, 10), consumer_timeout_ms=1000)
    parsed = []
    failures = 0
    for message in consumer:
        try:
            parsed.append(parse(message.value.decode("utf-8")))
        except (ValueError, UnicodeDecodeError) as e:
            failures += 1
            print("cannot parse %s offset %d: %s" % (SOURCE_TOPIC, message.offset, e), file=sys.stderr)
    consumer.close()

    if parsed:
        producer = KafkaProducer(bootstrap_servers=[bootstrap], api_version=(0, 10))
        try:
            for recipe in parsed:
                future = producer.send(TARGET_TOPIC, key=KEY.encode("utf-8"),
                                       value=json.dumps(recipe, ensure_ascii=False).encode("utf-8"))
                producer.flush()
                future.get(timeout=30)
                print("Message published successfully.")
        finally:
            producer.close()
    print("Parsed %d recipes from %s, %d failed" % (len(parsed), SOURCE_TOPIC, failures))
    return 1 if failures or not parsed else 0


if __name__ == "__main__":
    sys.exit(main())
