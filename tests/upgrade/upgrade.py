#!/usr/bin/env python3
"""Upgrades the Python function's stack in place to template.yaml, in moto's CloudFormation,
following README's "Upgrading from the Python function" step by step:

1. the Python stack as operators made it (tests/upgrade/python-stack.yaml), whose function
   has logged (so its log group exists) and is invoked by an EventBridge rule made by hand;
2. delete the hand-made rule (the stack now makes its own);
3. `make cf-update` with the Python stack's parameters as they are (ApiServer with its
   /ga4gh/wes/v1, which the function accepts) and CreateLogGroup=false (RunOutputBuckets
   left empty keeps the Python function's access);
4. check that the update completed, in place: the same function (name and ARN), now
   provided.al2023, configured as before; the same alarm topic and log group; the
   dead-letter queue, the retries and the on-failure destination; one event rule sending
   run events to the run event queue (queue delivery, the default), read by one event
   source mapping of the function, at most ReservedConcurrency at once, whose failed
   messages go to the same dead-letter queue; the hourly reconcile schedule (on by
   default) invoking the function, and no reserved concurrency.

Prints what it checked; exits 1 on the first difference.

What moto does not model, and why the rest still proves the point: moto's CloudFormation
skips AWS::SecretsManager::Secret (so ENV_SECRETS resolves to nothing in moto; its logical
id is kept, so CloudFormation updates the secret in place, and the template's reference to
it is checked instead), AWS::Lambda::EventInvokeConfig, AWS::SQS::QueuePolicy and
AWS::CloudWatch::Alarm (checked in the translated template), does not model Lambda's VPC placement or advanced logging
controls beyond storing them, and does not run the function (the code is a placeholder
zip). What this proves is the template side of the upgrade: logical ids,
resource types, parameters, conditions and names that would make CloudFormation fail or
replace something.

    python3 tests/upgrade/upgrade.py
"""
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent.parent
REGION = "eu-west-1"
STACK = "ngs360-omics-run-event-processor"
LOG_GROUP = "/aws/lambda/ngs360/omics-run-event-processor"


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)
    print(f"ok    {message}")


def placeholder_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buf.getvalue()


def stack_resources(cf):
    # moto lists the resources it skips (the secret) without a logical id.
    listed = cf.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r for r in listed if "LogicalResourceId" in r}


def outputs(cf):
    stack = cf.describe_stacks(StackName=STACK)["Stacks"][0]
    return stack, {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@mock_aws
def main():
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    cf, s3, ec2 = session.client("cloudformation"), session.client("s3"), session.client("ec2")
    lam, logs, events = session.client("lambda"), session.client("logs"), session.client("events")
    sns, sqs = session.client("sns"), session.client("sqs")

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="ngs360", Description="ngs360", VpcId=vpc)["GroupId"]
    s3.create_bucket(Bucket="ngs360-data-lake", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="ngs360-data-lake", Key="omics-run-events/lambda-package.zip", Body=placeholder_zip())
    s3.create_bucket(Bucket="deployment-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="deployment-bucket", Key="ngs360-omics/bootstrap.zip", Body=placeholder_zip())

    # 1. The Python stack, its function having logged, invoked by a rule made by hand.
    python_params = {
        "DeadLetterEmail": "ngs360-ops@example.org",
        "ApiServer": "https://ngs360.example.org/ga4gh/wes/v1",
        "ApiServerAuthToken": "change-me",
        "DataLakeBucket": "ngs360-data-lake",
        "BucketPrefix": "omics-run-events",
        "VerboseLogging": "false",
        "SecurityGroupId": sg,
        "SubnetId": subnet,
    }
    cf.create_stack(
        StackName=STACK,
        TemplateBody=(ROOT / "tests/upgrade/python-stack.yaml").read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in python_params.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    before, before_out = outputs(cf)
    check(before["StackStatus"] == "CREATE_COMPLETE", f"the Python stack is created ({before['StackStatus']})")
    function = before_out["LambdaFunctionName"]
    function_arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    if not logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]:
        logs.create_log_group(logGroupName=LOG_GROUP)  # the function's first log line made it
    topic_arn = stack_resources(cf)["DeadLetterQueue"]["PhysicalResourceId"]
    events.put_rule(Name="omics-run-status-change-by-hand",
                    EventPattern=json.dumps({"source": ["aws.omics"], "detail-type": ["Run Status Change"]}))
    events.put_targets(Rule="omics-run-status-change-by-hand", Targets=[{"Id": "1", "Arn": function_arn}])

    # 2. README: list the rules that invoke the function, and delete the hand-made one.
    by_hand = events.list_rule_names_by_target(TargetArn=function_arn)["RuleNames"]
    check(by_hand == ["omics-run-status-change-by-hand"], f"the hand-made rule is found by its target: {by_hand}")
    events.remove_targets(Rule="omics-run-status-change-by-hand", Ids=["1"])
    events.delete_rule(Name="omics-run-status-change-by-hand")

    # 3. make cf-update: the template as `aws cloudformation package` leaves it (SAM
    # translated here, since moto does not run the SAM transform).
    translated = ROOT / "dist/upgrade-template.cfn.json"
    translated.parent.mkdir(exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "tools/sam_translate.py"), str(ROOT / "template.yaml"), str(translated)],
                   check=True, stdout=subprocess.DEVNULL)
    params = dict(python_params, CreateLogGroup="false")
    cf.update_stack(
        StackName=STACK,
        TemplateBody=translated.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )

    # 4. In place.
    after, after_out = outputs(cf)
    check(after["StackStatus"] == "UPDATE_COMPLETE", f"the update completed ({after['StackStatus']}: "
          f"{after.get('StackStatusReason', '')})")
    check(after_out["LambdaFunctionName"] == function, f"the same function: {function}")
    config = lam.get_function(FunctionName=function)["Configuration"]
    check(config["FunctionArn"] == function_arn, "with the same ARN")
    check(config["Runtime"] == "provided.al2023" and config["Handler"] == "bootstrap", "now the Rust bootstrap")
    env = config["Environment"]["Variables"]
    check(env["API_SERVER"] == python_params["ApiServer"] and env["DATA_LAKE_BUCKET"] == "ngs360-data-lake"
          and env["S3_PREFIX"] == "omics-run-events", "configured as before")
    # moto skips the secret, so the reference to it (ENV_SECRETS) resolves to nothing here.
    template = json.loads(translated.read_text())
    variables = template["Resources"]["LambdaFunction"]["Properties"]["Environment"]["Variables"]
    check(variables["ENV_SECRETS"] == {"Ref": "ApiServerAuthTokenSecret"},
          "ENV_SECRETS names the same secret (not modeled by moto: checked in the template)")
    resources = stack_resources(cf)
    logging = template["Resources"]["LambdaFunction"]["Properties"]["LoggingConfig"]
    check(logging["LogGroup"] == {"Fn::If": ["MakeLogGroup", {"Ref": "FunctionLogGroup"}, LOG_GROUP]}
          and "FunctionLogGroup" not in resources,
          f"logging to the same group, {LOG_GROUP}, not created again (LoggingConfig, not modeled by moto: checked in the template)")
    check(len(logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]) == 1, "the group is kept")
    check(resources["DeadLetterQueue"]["PhysicalResourceId"] == topic_arn,
          "the same SNS topic, with its confirmed subscription, now for alarms")
    check("LambdaExecutionRole" not in resources and "LambdaFunctionRole" in resources, "the least-privilege role replaces the old one")
    queue_url = after_out["DeadLetterQueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    check(attributes["MessageRetentionPeriod"] == "1209600", "the dead-letter queue keeps messages 14 days")
    check(attributes.get("SqsManagedSseEnabled") == "true", "encrypted")
    invoke = template["Resources"]["LambdaFunctionEventInvokeConfig"]["Properties"]
    check(invoke["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterEvents", "Arn"]}
          and invoke["MaximumRetryAttempts"] == {"Ref": "MaximumRetryAttempts"},
          "failed events go to the queue (AWS::Lambda::EventInvokeConfig, not modeled by moto: checked in the template)")
    rules = [events.describe_rule(Name=r) for r in events.list_rule_names_by_target(TargetArn=function_arn)["RuleNames"]]
    patterns = [r for r in rules if r.get("EventPattern")]
    schedules = [r.get("ScheduleExpression") for r in rules if r.get("ScheduleExpression")]
    check(patterns == [], f"no event rule invokes the function directly: {[r['Name'] for r in patterns]}")
    check(schedules == ["rate(1 hour)"], f"the reconcile schedule does, on by default: {schedules}")
    run_events = after_out["RunEventQueueUrl"]
    run_events_arn = after_out["RunEventQueueArn"]
    queued = [events.describe_rule(Name=r)
              for r in events.list_rule_names_by_target(TargetArn=run_events_arn)["RuleNames"]]
    check(len(queued) == 1 and json.loads(queued[0]["EventPattern"])["source"] == ["aws.omics"],
          f"exactly one event rule sends run events to the run event queue: {[r['Name'] for r in queued]}")
    attributes = sqs.get_queue_attributes(QueueUrl=run_events, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    check(redrive == {"deadLetterTargetArn": sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"], "maxReceiveCount": 3},
          f"a queued event is received 3 times (MaximumRetryAttempts 2), then moved to the dead-letter queue: {redrive}")
    check(attributes["MessageRetentionPeriod"] == "1209600" and attributes.get("SqsManagedSseEnabled") == "true"
          and int(attributes["VisibilityTimeout"]) >= 900,
          "the run event queue keeps events 14 days, encrypted, hidden longer than the function's time limit")
    mappings = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    check(len(mappings) == 1 and mappings[0]["EventSourceArn"] == run_events_arn and mappings[0]["BatchSize"] == 1,
          f"one event source mapping reads it, one event per invocation: {mappings}")
    check(mappings[0].get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
          and mappings[0].get("ScalingConfig") == {"MaximumConcurrency": 10},
          "reporting its failed messages, at most ReservedConcurrency (10) at once")
    policy = template["Resources"]["RunEventQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    check(policy["Principal"] == {"Service": "events.amazonaws.com"}
          and policy["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["OmicsRunEventRule", "Arn"]},
          "only the stack's rule may send to it (AWS::SQS::QueuePolicy, not modeled by moto: checked in the template)")
    reserved = lam.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    check(reserved is None, f"the function reserves no concurrency with queue delivery: {reserved}")
    alarms = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    check(len(alarms) == 8 and all(template["Resources"][a]["Properties"]["AlarmActions"] == [{"Ref": "DeadLetterQueue"}]
                                   for a in alarms),
          "eight alarms on the kept topic (AWS::CloudWatch::Alarm, not modeled by moto: checked in the template)")
    topics = {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    check(topics == {topic_arn}, "one topic")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    body = json.loads(cloudwatch.get_dashboard(DashboardName=STACK)["DashboardBody"])
    check(len(body["widgets"]) == 12 and function_arn.rsplit(":", 1)[1] in json.dumps(body),
          "the dashboard is created, its body JSON, about this function (tests/integration/dashboard.rs checks its metrics)")
    s3 = boto3.client("s3", region_name=REGION)
    results = [b["Name"] for b in s3.list_buckets()["Buckets"] if "queryresults" in b["Name"].lower()]
    check(len(results) == 1, f"the lake's encrypted query result bucket: {results} (Glue and Athena resources, not modeled by moto: "
          "their texts are run by tests/integration/lake.rs)")
    print("the Python stack upgraded in place")


if __name__ == "__main__":
    main()
