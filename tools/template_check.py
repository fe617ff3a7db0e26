#!/usr/bin/env python3
"""Evaluates the translated template's IAM policies for sample parameters and checks least
privilege: only the expected actions, no wildcard actions, every resource scoped as
intended. Exits 1 with the differences otherwise.

    python3 tools/template_check.py TEMPLATE.cfn.json
"""
import json
import sys

# Two sets of sample parameters: with run output buckets and a guest component, and with
# neither (the Python function's access: the data lake bucket).
FULL = {
    "DataLakeBucket": "ngs360-data-lake",
    "BucketPrefix": "omics-run-events",
    "RunOutputBuckets": ["ngs360-omics-output", "ngs360-omics-scratch"],
    "GuestComponentUri": "s3://ngs360-guests/omics/guest-0.1.0.wasm?versionId=3HL4kqtJ",
    "GuestComponentSha256": "",
    "ReconcileSchedule": "rate(1 hour)",
    "CreateLogGroup": "true",
    "CreateEventRule": "true",
    "VerboseLogging": "false",
    "ApiServerCaFile": "/opt/ca/ngs360-internal-ca.pem",
    "LayerArns": ["arn:aws:lambda:eu-west-1:111122223333:layer:ngs360-ca:1"],
    "CaptureInputs": "s3://ngs360-guest-cases/captured",
    "CallbackOrigins": "https://ngs360.example.org,https://wes-b.example.org:8443",
    "EventDelivery": "queue",
    "ReservedConcurrency": "10",
    "MaximumRetryAttempts": "2",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "111122223333",
}
BARE = dict(
    FULL, RunOutputBuckets=[""], GuestComponentUri="", ReconcileSchedule="", ApiServerCaFile="", LayerArns=[""],
    CaptureInputs="", CallbackOrigins="", EventDelivery="direct",
)
PARAMS = FULL
REFS = {"ApiServerAuthTokenSecret": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:AuthTokenSecret-abc",
        "DeadLetterQueue": "arn:aws:sns:eu-west-1:111122223333:DeadLetterQueue",
        "LambdaFunctionRole": "LambdaFunctionRole"}
DEAD_LETTERS = "<DeadLetterEvents.Arn>"

COMMON = {
    ("s3:PutObject", "arn:aws:s3:::ngs360-data-lake/omics-run-events/*"),
    ("s3:GetObject", "arn:aws:s3:::ngs360-data-lake/omics-run-events/_reconcile/*"),
    ("omics:GetRun", "arn:aws:omics:eu-west-1:111122223333:run/*"),
    ("omics:ListRunTasks", "arn:aws:omics:eu-west-1:111122223333:run/*"),
    ("omics:ListRuns", "*"),
    ("secretsmanager:GetSecretValue", REFS["ApiServerAuthTokenSecret"]),
    ("sqs:SendMessage", DEAD_LETTERS),
}
EXPECTED_FULL = COMMON | {
    ("s3:GetObject", "arn:aws:s3:::ngs360-omics-output/*"),
    ("s3:GetObject", "arn:aws:s3:::ngs360-omics-scratch/*"),
    ("s3:ListBucket", "arn:aws:s3:::ngs360-omics-output"),
    ("s3:ListBucket", "arn:aws:s3:::ngs360-omics-scratch"),
    ("s3:GetObject", "arn:aws:s3:::ngs360-guests/omics/guest-0.1.0.wasm"),
    ("s3:GetObjectVersion", "arn:aws:s3:::ngs360-guests/omics/guest-0.1.0.wasm"),
    ("s3:PutObject", "arn:aws:s3:::ngs360-guest-cases/captured/*"),
} | {(f"sqs:{a}", "<RunEventQueue.Arn>")
     for a in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes", "ChangeMessageVisibility")}
EXPECTED_BARE = COMMON | {
    ("s3:GetObject", "arn:aws:s3:::ngs360-data-lake/*"),
    ("s3:ListBucket", "arn:aws:s3:::ngs360-data-lake"),
}
# Only these actions may be granted on "*": they have no resource type to scope them to.
UNSCOPABLE = {"omics:ListRuns"}


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
        return a == b if isinstance(a, list) or isinstance(b, list) else str(a) == str(b)
    if fn == "Fn::Not":
        return not evaluate(arg[0], conds)
    if fn == "Fn::And":
        return all(evaluate(a, conds) for a in arg)
    if fn == "Condition":
        return conds[arg]
    if fn == "Fn::Join":
        sep, items = arg
        return sep.join(evaluate(items, conds))
    if fn == "Fn::Split":
        sep, text = arg
        return evaluate(text, conds).split(sep)
    if fn == "Fn::Select":
        i, items = arg
        return evaluate(items, conds)[int(evaluate(i, conds))]
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


def statements(doc):
    for st in doc["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        yield actions, resources


def grants(template, params):
    """The (action, resource) pairs the function's role gets with `params`, and problems."""
    global PARAMS
    PARAMS = params
    conds = conditions(template)
    granted, problems = set(), []
    for name, res in template["Resources"].items():
        if "Condition" in res and not conds[res["Condition"]]:
            continue
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in evaluate(props.get("Policies", []), conds) if p is not None]
            for arn in props.get("ManagedPolicyArns", []):
                if not arn.endswith(("/AWSLambdaBasicExecutionRole", "/AWSLambdaVPCAccessExecutionRole")):
                    problems.append(f"unexpected managed policy {arn}")
        elif res["Type"] == "AWS::IAM::Policy":
            docs = [evaluate(props["PolicyDocument"], conds)]
        else:
            continue
        for doc in docs:
            for actions, resources in statements(doc):
                for a in actions:
                    if "*" in a:
                        problems.append(f"wildcard action {a}")
                    for r in resources:
                        if r == "*" and a not in UNSCOPABLE:
                            problems.append(f"{a} on every resource")
                        granted.add((a, r))
    return granted, problems


def function_setup(template, params):
    """The function's environment variables and layers with `params`, as Lambda gets them."""
    global PARAMS
    PARAMS = params
    conds = conditions(template)
    (props,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    env = {k: v for k, v in evaluate(props["Environment"]["Variables"], conds).items() if v is not None}
    return env, evaluate(props.get("Layers"), conds)


def delivery(template, params):
    """Where the rule sends events, the function's reservation, the event source mapping's
    maximum concurrency and the queue's receive limit, with `params`."""
    global PARAMS
    PARAMS = params
    conds = conditions(template)
    made = {n: r for n, r in template["Resources"].items() if "Condition" not in r or conds[r["Condition"]]}
    (function,) = [r["Properties"] for r in made.values() if r["Type"] == "AWS::Lambda::Function"]
    (rule,) = [r["Properties"] for n, r in made.items() if n == "OmicsRunEventRule"]
    mappings = [evaluate(r["Properties"], conds) for r in made.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    queue = made.get("RunEventQueue")
    return {
        "target": evaluate(rule["Targets"][0]["Arn"], conds),
        "reserved": evaluate(function.get("ReservedConcurrentExecutions"), conds),
        "mapping": [(m["EventSourceArn"], (m.get("ScalingConfig") or {}).get("MaximumConcurrency")) for m in mappings],
        "receives": queue and evaluate(queue["Properties"]["RedrivePolicy"], conds)["maxReceiveCount"],
    }


def delivery_problems(template):
    """Queue delivery: the rule feeds the queue, read by one mapping at most R at once, the
    function reserves none, a message is received MaximumRetryAttempts + 1 times. Direct:
    the rule invokes the function, which reserves R, and there is no queue."""
    want = [
        ("queue", FULL, {"target": "<RunEventQueue.Arn>", "reserved": None,
                         "mapping": [("<RunEventQueue.Arn>", "10")], "receives": 3}),
        ("queue, one retry, no limit", dict(FULL, MaximumRetryAttempts="1", ReservedConcurrency="-1"),
         {"target": "<RunEventQueue.Arn>", "reserved": None, "mapping": [("<RunEventQueue.Arn>", None)],
          "receives": 2}),
        ("direct", BARE, {"target": "<LambdaFunction.Arn>", "reserved": "10", "mapping": [], "receives": None}),
    ]
    problems = []
    for label, params, expected in want:
        got = delivery(template, params)
        for k, v in expected.items():
            if got[k] != v:
                problems.append(f"{label}: {k} is {got[k]!r}, expected {v!r}")
    return problems


def main():
    template = json.load(open(sys.argv[1]))
    problems = []
    counts = []
    # The private CA: its file and the layer that carries it reach the function only when given.
    for label, params, ca, layers in [
        ("full", FULL, FULL["ApiServerCaFile"], FULL["LayerArns"]),
        ("bare", BARE, None, None),
    ]:
        env, got_layers = function_setup(template, params)
        if env.get("API_SERVER_CA_FILE") != ca:
            problems.append(f"{label}: API_SERVER_CA_FILE is {env.get('API_SERVER_CA_FILE')!r}, expected {ca!r}")
        if got_layers != layers:
            problems.append(f"{label}: Layers is {got_layers!r}, expected {layers!r}")
        for var, param in [("CAPTURE_INPUTS", "CaptureInputs"), ("CALLBACK_ORIGINS", "CallbackOrigins")]:
            want = params[param] or None
            if env.get(var) != want:
                problems.append(f"{label}: {var} is {env.get(var)!r}, expected {want!r}")
    problems += delivery_problems(template)
    for label, params, expected in [("full", FULL, EXPECTED_FULL), ("bare", BARE, EXPECTED_BARE)]:
        granted, found = grants(template, params)
        problems += [f"{label}: {p}" for p in found]
        problems += [f"{label}: granted but not expected: {g}" for g in sorted(granted - expected)]
        problems += [f"{label}: expected but not granted: {e}" for e in sorted(expected - granted)]
        counts.append(f"{len(granted)} {label}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"IAM: {' and '.join(counts)} action/resource pairs, all expected, no wildcard actions")


if __name__ == "__main__":
    main()
