#!/usr/bin/env python3
"""`make rollback STAGE=...`: point every function's `live` alias of a stage back at the version
it served before the last deploy, at once, without a new build or a CloudFormation update.

How a deploy looks to this tool: SAM's `AutoPublishAlias: live` publishes a new numbered version
per function and CodeDeploy shifts the alias to it (at once outside prod, canary in prod). So:

* alias mid-shift (RoutingConfig holds the new version with a weight): the canary is cut off,
  the alias keeps only its primary (old) version. Any running CodeDeploy deployment of the
  stage's application is stopped first, so it can not shift the alias forward again.
* alias fully on version N: it is moved to the newest published version below N.

Functions are found by name prefix `ooni-<stage>-` (the template names them so), or named one
by one with --function. A function with no older version is reported and left alone. The next
`make deploy` publishes a new version and shifts the alias as usual; to stay on the old code,
deploy the old commit (see the README runbook).

Uses boto3 from the project venv (installed with aws-sam-cli by scripts/setup.sh); honours
AWS_ENDPOINT_URL, so the same code is tested against the local AWS emulator.
Exit status: 0 when every targeted function is on its rolled-back (or unchanged) version,
1 when any update failed, 2 on bad arguments or when no function matched.
"""

from __future__ import annotations

import argparse
import os
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ALIAS = "live"


def client(service: str):
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return boto3.client(service, region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def stage_functions(lam, stage: str) -> list[str]:
    prefix = f"ooni-{stage}-"
    names = []
    for page in lam.get_paginator("list_functions").paginate():
        names += [f["FunctionName"] for f in page["Functions"] if f["FunctionName"].startswith(prefix)]
    return sorted(names)


def published_versions(lam, name: str) -> list[int]:
    versions = []
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name):
        versions += [int(v["Version"]) for v in page["Versions"] if v["Version"].isdigit()]
    return sorted(versions)


def plan(lam, name: str) -> tuple[str, str | None, str]:
    """(current description, target version or None, reason) for one function."""
    alias = lam.get_alias(FunctionName=name, Name=ALIAS)
    current = alias["FunctionVersion"]
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    if weights:
        shifting = ", ".join(f"{v}@{w:.0%}" for v, w in weights.items())
        return f"{current} (+{shifting})", current, "cut off the canary"
    if not current.isdigit():
        return current, None, f"alias points at {current}, not a published version"
    older = [v for v in published_versions(lam, name) if v < int(current)]
    if not older:
        return current, None, "no older published version"
    return current, str(older[-1]), "previous version"


def stop_deployments(stage: str, dry_run: bool) -> None:
    """Stops in-progress CodeDeploy deployments of the stage's SAM application, if any."""
    cd = client("codedeploy")
    try:
        apps = [a for a in cd.list_applications().get("applications", []) if f"ooni-{stage}" in a]
        for app in apps:
            for group in cd.list_deployment_groups(applicationName=app).get("deploymentGroups", []):
                running = cd.list_deployments(
                    applicationName=app,
                    deploymentGroupName=group,
                    includeOnlyStatuses=["Created", "Queued", "InProgress", "Ready"],
                ).get("deployments", [])
                for dep in running:
                    print(f"stop deployment {dep} ({app}/{group})" + (" [dry run]" if dry_run else ""))
                    if not dry_run:
                        cd.stop_deployment(deploymentId=dep, autoRollbackEnabled=True)
    except (ClientError, BotoCoreError) as e:
        # Not fatal: the alias update below is what actually moves traffic.
        print(f"warning: could not list CodeDeploy deployments: {e}", file=sys.stderr)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", required=True, help="dev, test or prod")
    p.add_argument("--function", action="append", default=[], help="function name without prefix (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--no-codedeploy", action="store_true", help="do not look for running CodeDeploy deployments")
    args = p.parse_args(argv)
    if not args.stage.isidentifier():
        print(f"bad stage {args.stage!r}", file=sys.stderr)
        return 2

    lam = client("lambda")
    names = [f"ooni-{args.stage}-{f}" for f in args.function] or stage_functions(lam, args.stage)
    if not names:
        print(f"no function named ooni-{args.stage}-* in this account/region", file=sys.stderr)
        return 2
    if not args.no_codedeploy:
        stop_deployments(args.stage, args.dry_run)

    failed = 0
    for name in names:
        try:
            current, target, reason = plan(lam, name)
            if target is None:
                print(f"{name}: stays on {current} ({reason})")
                continue
            print(f"{name}: {current} -> {target} ({reason})" + (" [dry run]" if args.dry_run else ""))
            if not args.dry_run:
                lam.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=target, RoutingConfig={"AdditionalVersionWeights": {}})
        except (ClientError, BotoCoreError) as e:
            failed += 1
            print(f"{name}: FAILED: {e}", file=sys.stderr)
    print(f"rollback: {len(names) - failed} of {len(names)} functions done, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
