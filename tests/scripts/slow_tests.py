"""Write tests/slow_tests.txt from a pytest `--report-log` file: every test that took 0.75 s or more.

Usage: python tests/scripts/slow_tests.py LOG   (LOG from `pytest tests -m 'not slow' -n 2 --dist loadfile
--report-log=LOG`); ids already listed stay listed, so tests that are already slow keep their mark.
"""

import collections
import json
import pathlib
import sys

THRESHOLD_SECONDS = 0.75
LIST = pathlib.Path(__file__).resolve().parents[1] / "slow_tests.txt"


def main(log: str) -> None:
    seconds: dict[str, float] = collections.defaultdict(float)
    with open(log, encoding="utf-8") as handle:
        for line in handle:
            report = json.loads(line)
            if report.get("$report_type") == "TestReport":
                seconds[report["nodeid"]] += report["duration"]
    lines = LIST.read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]
    listed = {line for line in lines if line and not line.startswith("#")}
    slow = sorted(listed | {nodeid for nodeid, s in seconds.items() if s >= THRESHOLD_SECONDS})
    LIST.write_text("\n".join(header + slow) + "\n", encoding="utf-8")
    print(f"{len(slow)} slow tests listed in {LIST}")


if __name__ == "__main__":
    main(sys.argv[1])
