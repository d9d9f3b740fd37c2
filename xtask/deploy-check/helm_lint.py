"""`helm lint` of the chart at argv[1] through helm-sdkpy (Helm's own Go code): renders
every template with the default values and fails on template or YAML errors."""
import asyncio
import json
import sys

import helm_sdkpy

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(sys.argv[1]))
for message in result.get("Messages") or []:
    print(f"{SEVERITY.get(message['Severity'], message['Severity'])}: {message['Path']}")
if result.get("Errors") or any(m["Severity"] >= 2 for m in result.get("Messages") or []):
    print(json.dumps(result))
    sys.exit(1)
print(f"helm lint: {result['TotalChartsLinted']} chart(s), no warnings or errors")
