#!/usr/bin/env python3
"""Evaluates the translated template's IAM policies for sample parameters and checks least
privilege: only the expected actions, no wildcard actions, every resource scoped as
intended. Exits 1 with the differences otherwise.

    python3 tools/template_check.py TEMPLATE.cfn.json
"""
import json
import sys

PARAMS = {
    "DataLakeBucket": "ngs360-data-lake",
    "BucketPrefix": "omics-run-events",
    "RunOutputBuckets": ["ngs360-omics-output", "ngs360-omics-scratch"],
    "GuestComponentUri": "s3://ngs360-guests/omics/guest-0.1.0.wasm?versionId=3HL4kqtJ",
    "GuestComponentSha256": "",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "111122223333",
}
REFS = {"AuthTokenSecret": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:AuthTokenSecret-abc",
        "DeadLetterTopic": "arn:aws:sns:eu-west-1:111122223333:DeadLetterTopic"}

EXPECTED = {
    ("s3:PutObject", "arn:aws:s3:::ngs360-data-lake/omics-run-events/*"),
    ("s3:GetObject", "arn:aws:s3:::ngs360-omics-output/*"),
    ("s3:GetObject", "arn:aws:s3:::ngs360-omics-scratch/*"),
    ("s3:ListBucket", "arn:aws:s3:::ngs360-omics-output"),
    ("s3:ListBucket", "arn:aws:s3:::ngs360-omics-scratch"),
    ("omics:GetRun", "arn:aws:omics:eu-west-1:111122223333:run/*"),
    ("omics:ListRunTasks", "arn:aws:omics:eu-west-1:111122223333:run/*"),
    ("secretsmanager:GetSecretValue", REFS["AuthTokenSecret"]),
    ("sns:Publish", REFS["DeadLetterTopic"]),
    ("s3:GetObject", "arn:aws:s3:::ngs360-guests/omics/guest-0.1.0.wasm"),
    ("s3:GetObjectVersion", "arn:aws:s3:::ngs360-guests/omics/guest-0.1.0.wasm"),
}


def conditions(template):
    c = {}
    for name, expr in template.get("Conditions", {}).items():
        c[name] = evaluate(expr, c)
    return c


def evaluate(x, conds):
    if isinstance(x, list):
        return [evaluate(i, conds) for i in x]
    if not isinstance(x, dict):
        return x
    if len(x) != 1:
        return {k: evaluate(v, conds) for k, v in x.items()}
    (fn, arg), = x.items()
    if fn == "Ref":
        if arg == "AWS::NoValue":
            return None
        return PARAMS.get(arg, REFS.get(arg, f"<{arg}>"))
    if fn == "Fn::If":
        name, yes, no = arg
        return evaluate(yes if conds[name] else no, conds)
    if fn == "Fn::Equals":
        a, b = evaluate(arg, conds)
        return a == b
    if fn == "Fn::Not":
        return not evaluate(arg[0], conds)
    if fn == "Fn::Join":
        sep, items = arg
        return sep.join(evaluate(items, conds))
    if fn == "Fn::Split":
        sep, text = arg
        return evaluate(text, conds).split(sep)
    if fn == "Fn::Select":
        i, items = arg
        return evaluate(items, conds)[int(i)]
    if fn == "Fn::Sub":
        text, values = (arg, {}) if isinstance(arg, str) else arg
        values = {k: evaluate(v, conds) for k, v in values.items()}
        for k, v in list(values.items()) + list(PARAMS.items()):
            if isinstance(v, str):
                text = text.replace("${" + k + "}", v)
        return text
    if fn == "Fn::GetAtt":
        return f"<{'.'.join(arg)}>"
    return {fn: evaluate(arg, conds)}


def main():
    template = json.load(open(sys.argv[1]))
    conds = conditions(template)
    granted = set()
    problems = []
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in evaluate(res["Properties"].get("Policies", []), conds):
            if policy is None:
                continue
            doc = policy["PolicyDocument"]
            for st in doc["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                for a in actions:
                    if "*" in a:
                        problems.append(f"wildcard action {a}")
                    for r in resources:
                        granted.add((a, r))
        managed = res["Properties"].get("ManagedPolicyArns", [])
        for arn in managed:
            if not arn.endswith(("/AWSLambdaBasicExecutionRole", "/AWSLambdaVPCAccessExecutionRole")):
                problems.append(f"unexpected managed policy {arn}")
    for g in sorted(granted - EXPECTED):
        problems.append(f"granted but not expected: {g}")
    for e in sorted(EXPECTED - granted):
        problems.append(f"expected but not granted: {e}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"IAM: {len(granted)} action/resource pairs, all expected, no wildcard actions")


if __name__ == "__main__":
    main()
