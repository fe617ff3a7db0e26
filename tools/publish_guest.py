#!/usr/bin/env python3
"""Publishes a guest component: check, precompile, upload, and the stack parameters to set.

    python3 tools/publish_guest.py COMPONENT.wasm --bucket BUCKET [--key KEY]
        [--arch arm64|x86_64] [--host target/release/ngs360-omics] [--fixtures fixtures]

(`make publish-guest GUEST=COMPONENT.wasm GUEST_BUCKET=BUCKET [ARCH=arm64]` runs it.)

1. `ngs360-omics check COMPONENT` over the fixtures: nothing is uploaded unless every case
   passes. (GUEST_MEMORY_MB in the environment raises the memory limit, as in the function.)
2. `ngs360-omics compile` for the function's architecture: a `.cwasm` that this host version
   loads in well under a millisecond (a `.wasm` is compiled at every cold start instead).
3. Upload to a bucket with versioning on (rollback is the previous version), encrypted
   (AES256), with the sha256 and the host version as object metadata.
4. Print the stack parameters that select it (`GuestComponentUri` with its `versionId`,
   `GuestComponentSha256`), and those of the version it replaces, for a rollback.

AWS credentials and region come from the environment, as for the AWS CLI.
"""

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"arm64": "aarch64", "x86_64": "x86_64"}


def fail(message: str) -> None:
    print(f"publish-guest: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd: list) -> str:
    print("+ " + " ".join(str(c) for c in cmd), file=sys.stderr)
    done = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.stdout.write(done.stdout)
        fail(f"{Path(cmd[0]).name} {cmd[1]} failed (exit {done.returncode}); nothing was uploaded")
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("component", type=Path, help="the component (.wasm)")
    ap.add_argument("--bucket", required=True, help="the guest bucket (versioning on)")
    ap.add_argument("--key", help="the object key (default guests/<name>-<arch>.cwasm)")
    ap.add_argument("--arch", default="arm64", choices=sorted(TARGETS), help="the function's architecture")
    ap.add_argument("--host", type=Path, default=ROOT / "target/release/ngs360-omics", help="the host binary")
    ap.add_argument("--fixtures", type=Path, default=ROOT / "fixtures", help="the cases to check")
    ap.add_argument("--out", type=Path, default=ROOT / "dist/guests", help="where the .cwasm is written")
    args = ap.parse_args()

    if not args.component.is_file():
        fail(f"no component at {args.component}")
    if not args.host.is_file():
        fail(f"no host binary at {args.host} (cargo build --release --bin ngs360-omics)")
    import boto3  # only now: `--help` and the checks above need no AWS library

    s3 = boto3.client("s3")
    versioning = s3.get_bucket_versioning(Bucket=args.bucket).get("Status")
    if versioning != "Enabled":
        fail(
            f"bucket {args.bucket} does not keep versions (versioning: {versioning or 'never enabled'}); "
            "rollback needs them: aws s3api put-bucket-versioning --bucket "
            f"{args.bucket} --versioning-configuration Status=Enabled"
        )

    print(run([args.host, "check", args.component, "--fixtures", args.fixtures]).rstrip().splitlines()[-1])
    args.out.mkdir(parents=True, exist_ok=True)
    cwasm = args.out / f"{args.component.stem}-{args.arch}.cwasm"
    run([args.host, "compile", args.component, "-o", cwasm, "--target", TARGETS[args.arch]])
    body = cwasm.read_bytes()
    sha256 = hashlib.sha256(body).hexdigest()
    host_version = run([args.host, "--version"]).split()[-1]

    key = args.key or f"guests/{args.component.stem}-{args.arch}.cwasm"
    versions = s3.list_object_versions(Bucket=args.bucket, Prefix=key).get("Versions", [])
    previous = next((v for v in versions if v["Key"] == key and v.get("IsLatest")), None)
    put = s3.put_object(
        Bucket=args.bucket,
        Key=key,
        Body=body,
        ServerSideEncryption="AES256",
        Metadata={
            "sha256": sha256,
            "host-version": host_version,
            "arch": args.arch,
            "source-sha256": hashlib.sha256(args.component.read_bytes()).hexdigest(),
        },
    )
    version = put.get("VersionId")
    if not version:
        fail(f"the upload to s3://{args.bucket}/{key} has no version id")

    print(f"published {cwasm.name} ({len(body) / 1e6:.1f} MB, host {host_version}, {args.arch})")
    print("Set these stack parameters (make cf-update with them in parameters.json):")
    print(f"  GuestComponentUri=s3://{args.bucket}/{key}?versionId={version}")
    print(f"  GuestComponentSha256={sha256}")
    if previous:
        head = s3.head_object(Bucket=args.bucket, Key=key, VersionId=previous["VersionId"])
        previous_sha = head.get("Metadata", {}).get("sha256", "(not recorded: aws s3api get-object, then sha256sum)")
        print("To roll back to the version this replaces:")
        print(f"  GuestComponentUri=s3://{args.bucket}/{key}?versionId={previous['VersionId']}")
        print(f"  GuestComponentSha256={previous_sha}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # an AWS error: one line, not a traceback
        if type(e).__module__.startswith(("botocore", "boto3")):
            fail(f"AWS: {e}")
        raise
