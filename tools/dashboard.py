#!/usr/bin/env python3
"""Prints the dashboard's body (template.yaml's `Dashboard`) as CloudFormation would give it,
with the stack's names as placeholders: the function `FUNCTION`, the dead-letter queue
`DEAD-LETTERS`, the region `REGION`. tests/integration/dashboard.rs checks it.

    python3 tools/dashboard.py [template.yaml]
"""
import re
import sys
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
NAMES = {"LambdaFunction": "FUNCTION", "DeadLetterEvents.QueueName": "DEAD-LETTERS", "AWS::Region": "REGION",
         "AWS::StackName": "STACK"}


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    body = yaml_parse(path.read_text())["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text, local = body if isinstance(body, list) else (body, {})
    names = {**NAMES, **local}

    def sub(m):
        if m.group(1) not in names:
            raise SystemExit(f"${{{m.group(1)}}} in the dashboard is not a name the stack gives")
        return names[m.group(1)]

    print(re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", sub, text))


if __name__ == "__main__":
    main()
