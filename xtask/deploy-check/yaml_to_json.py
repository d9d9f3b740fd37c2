"""Writes each YAML file given as SRC=DST to DST as JSON (one document per file)."""
import json
import sys

import yaml

for pair in sys.argv[1:]:
    source, target = pair.split("=", 1)
    with open(source, encoding="utf-8") as text, open(target, "w", encoding="utf-8") as out:
        json.dump(yaml.safe_load(text), out)
