"""Write docs/earlier-record-times.json: what a seed took in the earlier
records of the experiments recorded twice with the same settings, first
before the engine (lm-dropout) or before its later levers (lm-gpt2,
lm-regimes), then as the site shows them.

    python -m tools.snapshot_record_times

The times come from the records as committed before they were recorded
again (git history; the commit of each is kept beside its times). The
performance page sets them against the records as they are now.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "earlier-record-times.json"

# The last commit at which each record was still the earlier recording.
EARLIER = {"lm-gpt2": "113fa86", "lm-regimes": "15a7f76", "lm-dropout": "e10b07c"}
KEPT = ("settings", "seeds", "date", "seconds_by_seed")


def recorded_at(commit: str, name: str) -> dict:
    path = f"docs/records/{name}.json"
    shown = subprocess.run(
        ["git", "show", f"{commit}:{path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(shown.stdout)


def main() -> int:
    found = {}
    for name, commit in EARLIER.items():
        record = recorded_at(commit, name)
        full = subprocess.run(
            ["git", "rev-parse", commit], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        environment = record["environment"]
        found[name] = {"commit": full, **{key: record[key] for key in KEPT}} | {
            "cpu": f"{environment['cpu']}, {environment['cores']} cores"
        }
    OUT.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {', '.join(found)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
