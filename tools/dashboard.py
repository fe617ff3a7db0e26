#!/usr/bin/env python3
"""Prints the dashboard's body (template.yaml's `Dashboard`) as CloudFormation would give it,
with the stack's names as placeholders: the function `FUNCTION`, the dead-letter queue
`DEAD-LETTERS`, the run event queue `RUN-EVENTS` (queue delivery, the default), the region
`REGION`. tests/integration/dashboard.rs checks it.

    python3 tools/dashboard.py [template.yaml]
"""
import sys
from pathlib import Path

from lake_query import load_template, resolve

ROOT = Path(__file__).resolve().parent.parent
NAMES = {"LambdaFunction": "FUNCTION", "DeadLetterEvents.QueueName": "DEAD-LETTERS",
         "RunEventQueue.QueueName": "RUN-EVENTS", "AWS::Region": "REGION",
         "AWS::StackName": "STACK"}


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    body = load_template(path)["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    print(resolve(body, "flat", NAMES))


if __name__ == "__main__":
    main()
