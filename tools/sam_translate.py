#!/usr/bin/env python3
"""Translates template.yaml (SAM) into plain CloudFormation with aws-sam-translator, offline,
so that cfn-lint can check the resources SAM generates (it misses bad values inside SAM
resources otherwise).

    python3 tools/sam_translate.py template.yaml OUT.json
"""
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The managed policies SAM attaches to functions; resolved without calling IAM.
MANAGED = {
    name: f"arn:aws:iam::aws:policy/service-role/{name}"
    for name in ["AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", "AWSLambdaRole"]
}


class OfflinePolicies:
    def load(self):
        return MANAGED


def main():
    # Pseudo parameters need a region; none of the output depends on which.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        template = yaml_parse(f.read())
    # `sam package` would replace local code paths with S3 URIs; so does this.
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = "s3://deployment-bucket/ngs360-omics/bootstrap.zip"
    translated = transform(template, {}, OfflinePolicies())
    with open(out, "w") as f:
        json.dump(translated, f, indent=1, sort_keys=False)
    print(f"{src}: {len(translated.get('Resources', {}))} CloudFormation resources -> {out}")


if __name__ == "__main__":
    main()
