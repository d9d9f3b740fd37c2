"""`helm lint` of the chart at argv[1] through helm-sdkpy (Helm's own Go code): renders
every template and fails on template or YAML errors, once with the default values and
once per variant below, each set in a copy of the chart's values.yaml (helm-sdkpy's lint
takes no values of its own), so the branches the defaults leave off render too."""
import asyncio
import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path

import helm_sdkpy
import yaml

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}

# Every switch of values.yaml away from its default, in two sets that between them take
# each template branch the defaults do not.
VARIANTS = {
    "defaults": {},
    "switches flipped": {
        "image": {"tag": "1.2.3", "pullPolicy": "Always"},
        "legacyCapabilities": True,
        "config": '[daemon]\nscan_interval = "5s"\n\n[[rule]]\nname = "big"\nthreshold = "2GiB"\n',
        "dryRun": True,
        "logLevel": "debug",
        "runtimeSockets": {
            "containerd": False,
            "crio": False,
            "podman": False,
            "containers": False,
            "dockerState": False,
            "docker": True,
        },
        "priorityClassName": "",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "serviceMonitor": {"enabled": False},
        "prometheusRule": {"enabled": False},
    },
    "labels and no tolerations": {
        "tolerations": [],
        "resources": {},
        "serviceMonitor": {"labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"labels": {"release": "kube-prometheus-stack"}},
    },
}


def merge(base, overrides):
    """`overrides` laid over `base`, maps merged key by key as Helm merges values."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and value and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def lint(chart):
    result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(str(chart)))
    messages = result.get("Messages") or []
    for message in messages:
        print(f"  {SEVERITY.get(message['Severity'], message['Severity'])}: {message['Path']}")
    if result.get("Errors") or any(m["Severity"] >= 2 for m in messages):
        print(json.dumps(result))
        return False
    return True


chart = Path(sys.argv[1])
defaults = yaml.safe_load((chart / "values.yaml").read_text())
failed = []
with tempfile.TemporaryDirectory() as scratch:
    for name, overrides in VARIANTS.items():
        print(f"helm lint, {name}:")
        copy_dir = Path(scratch) / name.replace(" ", "-") / chart.name
        shutil.copytree(chart, copy_dir)
        (copy_dir / "values.yaml").write_text(yaml.safe_dump(merge(defaults, overrides)))
        if not lint(copy_dir):
            failed.append(name)
if failed:
    sys.exit(f"helm lint failed with: {', '.join(failed)}")
print(f"helm lint: the chart renders cleanly with {len(VARIANTS)} sets of values")
